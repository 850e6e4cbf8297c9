"""NTMCell: the Neural Turing Machine (Graves, Wayne & Danihelka 2014) as a Keras cell, with the initialisation and
clipping of Collier & Beel (2018) that make it converge reliably."""

import keras
from keras import ops

from zoo import arguments
from zoo.cells.lstm_cell import LSTMCell
from zoo.layers import ntm_addressing

CONTROLLERS = ("lstm", "dense")
# Logit of location 0 in the initial weightings' bias (the others start at 0): every head starts softly focused on
# the first location, which breaks the symmetry of a constant memory (a uniform weighting on a constant memory stays
# uniform forever: content addressing, interpolation and shift all map uniform to uniform).
INITIAL_FOCUS_LOGIT = 5.0


def split_head_parameters(parameters, memory_width, shift_offsets):
    """The activated addressing parameters of §3.3 from the raw (clipped) parameter vectors of some heads.

    Args:
        parameters: [B, H, P] with P >= memory_width + shift_offsets + 3, laid out as
            [k (M) | β (1) | g (1) | s (2R+1) | γ (1) | anything after (e.g. a write head's e and a)].
        memory_width: M.      shift_offsets: 2R+1.

    Returns:
        (k = tanh [B, H, M], β = softplus [B, H, 1], g = sigmoid [B, H, 1], s = softmax [B, H, 2R+1],
        γ = 1 + softplus [B, H, 1]).
    """
    m, s = memory_width, shift_offsets
    key = ops.tanh(parameters[:, :, :m])
    strength = ops.softplus(parameters[:, :, m : m + 1])
    gate = ops.sigmoid(parameters[:, :, m + 1 : m + 2])
    shift = ops.softmax(parameters[:, :, m + 2 : m + 2 + s], axis=-1)
    sharpening = 1.0 + ops.softplus(parameters[:, :, m + 2 + s : m + 3 + s])
    return key, strength, gate, shift, sharpening


@keras.saving.register_keras_serializable(package="zoo")
class NTMCell(keras.layers.Layer):
    """Neural Turing Machine: a controller (LSTM or feed-forward) that reads and writes an N x M memory through
    differentiable heads.

    One step (Graves et al. 2014, §3; weights in brackets; row vectors; R read heads, W write heads, 2R_s+1 shifts):

        h_t, c_t   = controller([x_t; r^1_{t-1}; ...; r^R_{t-1}], c_{t-1})   controller: `kernel`,
                     an LSTM (`zoo.cells.LSTMCell`, forget bias 1)              `recurrent_kernel` (LSTM), `bias`
                     or h_t = tanh([x_t; r_{t-1}] U + b)
        ξ_t        = clip(h_t W_ξ + b_ξ, ±clip_value)                         W_ξ: `head_kernel`, b_ξ: `head_bias`
        per head, from its slice of ξ_t:
            k = tanh(·), β = softplus(·), g = sigmoid(·), s = softmax(·) over -R_s..R_s, γ = 1 + softplus(·)
            write heads also: e = sigmoid(·) (erase), a = tanh(·) (add)
        w_t        = sharpen(shift(g w^c + (1-g) w_{t-1}, s), γ),  w^c = softmax(β K(k, M_{t-1}))    (eqs. 5-9)
        r^h_t      = w^h_t M_{t-1}                              every head addresses and reads M_{t-1}
        M_t        = M_{t-1} ∘ Π_h (1 - w^h_t e_h^T) + Σ_h w^h_t a_h^T   over the write heads            (eqs. 3-4)
        y_t        = clip([h_t; r^1_t; ...; r^R_t] W_y + b_y, ±clip_value)
                                                                  W_y: `output_kernel`, b_y: `output_bias`

        K(k, M_i) = k·M_i / sqrt(‖k‖²‖M_i‖² + ε): see `zoo.layers.ntm_addressing` for every function and its ε.

    Weight shapes (I = input_dim, C = controller_units, Q = M + 2R_s + 4):
        `kernel` [I + R M, 4C] (LSTM) or [I + R M, C] (dense); `recurrent_kernel` [C, 4C] (LSTM only); `bias`;
        `head_kernel` [C, R Q + W (Q + 2M)], `head_bias` [R Q + W (Q + 2M)], laid out head after head, read heads
        first, each as [k | β | g | s | γ] (+ [e | a] for a write head);
        `output_kernel` [C + R M, output_size], `output_bias` [output_size];
        `initial_read` [R M]: r_0 = tanh(`initial_read`) (learned, starts at 0);
        `initial_weighting` [R + W, N]: w_0 = softmax(`initial_weighting`) per head (learned, read heads first; starts
        with logit 5 on location 0 and 0 elsewhere, a soft focus on the first location).

    What keeps it finite (Collier & Beel 2018, and the NaNs peers reported): the memory starts at the constant 1e-6
    (not learned, not random); ξ_t and y_t are clipped to ±20; γ >= 1 and β >= 0 by construction; ε in the cosine and the
    sharpening. Clip gradients by global norm (50 in Collier & Beel) in the optimizer: that is the task's business.

    The output y_t is linear (logits): a sigmoid for the bit tasks belongs to the model or the loss
    (`from_logits=True`).

    Args:
        output_size: positive int, the size of y_t.
        memory_size: positive int, N, the number of memory locations (default 128, as the paper).
        memory_width: positive int, M, the size of a location (default 20, as the paper).
        controller: `"lstm"` (default) or `"dense"` (feed-forward, tanh).
        controller_units: positive int, C (default 100, as Collier & Beel).
        read_heads: positive int, R (default 1).
        write_heads: positive int, W (default 1).
        shift_range: positive int, R_s: the shift covers offsets -R_s..R_s (default 1).
        clip_value: positive float or None: the bound of ξ_t and y_t (default 20.0; None disables the clipping).
        memory_init: float, the constant every memory entry starts at (default 1e-6).
        kernel_initializer: initializer of the controller, head and output kernels (default `"glorot_uniform"`).

    Call arguments:
        inputs: [batch, input_dim], x_t.
        states: the list under State.
        training: passed to the controller.

    State (all flat, as `keras.layers.RNN` needs; `unpack_state` gives them their shapes):
        the output y_t [batch, output_size] (first, as Keras's JAX backend expects for masking; y_0 = 0),
        the controller's states (`[h, c]`, each [batch, C], for `"lstm"`; none for `"dense"`),
        read vectors [batch, R M], read weightings [batch, R N], write weightings [batch, W N], memory [batch, N M]
        (row-major: location i is entries i M .. (i+1) M - 1).

    Masking: inside `keras.layers.RNN`, a masked step keeps every state (memory included) and repeats the output.

    Example:
        ```python
        cell = zoo.cells.NTMCell(output_size=8, memory_size=32, memory_width=8, controller_units=64)
        logits = keras.layers.RNN(cell, return_sequences=True)(np.zeros((4, 10, 9), "float32"))  # (4, 10, 8)
        ```

    References: A. Graves, G. Wayne, I. Danihelka, "Neural Turing Machines", arXiv:1410.5401, 2014;
    M. Collier, J. Beel, "Implementing Neural Turing Machines", ICANN 2018 (arXiv:1807.08518).
    """

    def __init__(
        self,
        output_size,
        memory_size=128,
        memory_width=20,
        controller="lstm",
        controller_units=100,
        read_heads=1,
        write_heads=1,
        shift_range=1,
        clip_value=20.0,
        memory_init=1e-6,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.ntm_output_size = arguments.positive_int("output_size", output_size)
        self.memory_size = arguments.positive_int("memory_size", memory_size)
        self.memory_width = arguments.positive_int("memory_width", memory_width)
        self.controller_type = arguments.one_of("controller", controller, CONTROLLERS)
        self.controller_units = arguments.positive_int("controller_units", controller_units)
        self.read_heads = arguments.positive_int("read_heads", read_heads)
        self.write_heads = arguments.positive_int("write_heads", write_heads)
        self.shift_range = arguments.positive_int("shift_range", shift_range)
        if clip_value is not None and (isinstance(clip_value, bool) or not isinstance(clip_value, (int, float))
                                       or not clip_value > 0):
            raise ValueError(f"clip_value must be a positive float or None, got {clip_value!r}")
        self.clip_value = None if clip_value is None else float(clip_value)
        if isinstance(memory_init, bool) or not isinstance(memory_init, (int, float)):
            raise ValueError(f"memory_init must be a float (the constant the memory starts at), got {memory_init!r}")
        self.memory_init = float(memory_init)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        units = self.controller_units
        if self.controller_type == "lstm":
            self.controller = LSTMCell(units, kernel_initializer=self.kernel_initializer, name="controller",
                                       dtype=self.dtype_policy)
            self.controller_state_sizes = [units, units]
        else:
            self.controller = keras.layers.Dense(units, activation="tanh", kernel_initializer=self.kernel_initializer,
                                                 name="controller", dtype=self.dtype_policy)
            self.controller_state_sizes = []
        self.shift_offsets = 2 * self.shift_range + 1
        self.read_parameters = self.memory_width + self.shift_offsets + 3  # Q: k, β, g, s, γ
        self.write_parameters = self.read_parameters + 2 * self.memory_width  # Q + e, a
        n, m = self.memory_size, self.memory_width
        # y_{t-1} comes first: Keras's JAX backend repeats the first state as the output of a masked step.
        self.state_size = [
            self.ntm_output_size,
            *self.controller_state_sizes,
            self.read_heads * m,
            self.read_heads * n,
            self.write_heads * n,
            n * m,
        ]
        self.output_size = self.ntm_output_size

    def build(self, input_shape):
        self.input_dim = arguments.step_input_dim(self, input_shape)
        self.input_spec = keras.layers.InputSpec(shape=(None, self.input_dim))
        reads = self.read_heads * self.memory_width
        self.controller.build((None, self.input_dim + reads))
        parameters = self.read_heads * self.read_parameters + self.write_heads * self.write_parameters
        self.head_kernel = self.add_weight(
            shape=(self.controller_units, parameters), name="head_kernel", initializer=self.kernel_initializer
        )
        self.head_bias = self.add_weight(shape=(parameters,), name="head_bias", initializer="zeros")
        self.output_kernel = self.add_weight(
            shape=(self.controller_units + reads, self.ntm_output_size), name="output_kernel",
            initializer=self.kernel_initializer,
        )
        self.output_bias = self.add_weight(shape=(self.ntm_output_size,), name="output_bias", initializer="zeros")
        self.initial_read = self.add_weight(shape=(reads,), name="initial_read", initializer="zeros")
        heads, n = self.read_heads + self.write_heads, self.memory_size

        def focus(shape, dtype=None):
            return ops.concatenate(
                [ops.full((heads, 1), INITIAL_FOCUS_LOGIT, dtype=dtype), ops.zeros((heads, n - 1), dtype=dtype)],
                axis=1,
            )

        self.initial_weighting = self.add_weight(shape=(heads, n), name="initial_weighting", initializer=focus)

    def _clip(self, x):
        return x if self.clip_value is None else ops.clip(x, -self.clip_value, self.clip_value)

    def call(self, inputs, states, training=False):
        n, m, r, w = self.memory_size, self.memory_width, self.read_heads, self.write_heads
        k = 1 + len(self.controller_state_sizes)
        controller_states = list(states[1:k])
        reads, read_weightings, write_weightings, memory = states[k:]
        memory = ops.reshape(memory, (-1, n, m))
        previous = ops.concatenate(
            [ops.reshape(read_weightings, (-1, r, n)), ops.reshape(write_weightings, (-1, w, n))], axis=1
        )

        controller_input = ops.concatenate([inputs, reads], axis=-1)
        if self.controller_type == "lstm":
            h, controller_states = self.controller(controller_input, controller_states, training=training)
        else:
            h = self.controller(controller_input)
        xi = self._clip(ops.matmul(h, self.head_kernel) + self.head_bias)
        # The addressing's epsilons (1e-8) vanish in float16: under mixed precision the heads work in float32 and
        # only the states they return are cast back to the compute dtype.
        dtype = self.compute_dtype
        work = "float32" if dtype in ("float16", "bfloat16") else dtype
        xi, memory, previous = (ops.cast(t, work) for t in (xi, memory, previous))

        read_part = ops.reshape(xi[:, : r * self.read_parameters], (-1, r, self.read_parameters))
        write_part = ops.reshape(xi[:, r * self.read_parameters :], (-1, w, self.write_parameters))
        common = ops.concatenate([read_part, write_part[:, :, : self.read_parameters]], axis=1)
        key, strength, gate, shift, sharpening = split_head_parameters(common, m, self.shift_offsets)
        weightings = ntm_addressing.address(key, strength, gate, shift, sharpening, previous, memory)
        new_read_weightings, new_write_weightings = weightings[:, :r], weightings[:, r:]

        new_reads = ntm_addressing.read(memory, new_read_weightings)
        q = self.read_parameters
        erase = ops.sigmoid(write_part[:, :, q : q + m])
        add = ops.tanh(write_part[:, :, q + m : q + 2 * m])
        new_memory = ntm_addressing.write(memory, new_write_weightings, erase, add)

        new_reads, new_memory, weightings = (ops.cast(t, dtype) for t in (new_reads, new_memory, weightings))
        new_read_weightings, new_write_weightings = weightings[:, :r], weightings[:, r:]
        flat_reads = ops.reshape(new_reads, (-1, r * m))
        output = self._clip(
            ops.matmul(ops.concatenate([h, flat_reads], axis=-1), self.output_kernel) + self.output_bias
        )
        return output, [
            output,
            *controller_states,
            flat_reads,
            ops.reshape(new_read_weightings, (-1, r * n)),
            ops.reshape(new_write_weightings, (-1, w * n)),
            ops.reshape(new_memory, (-1, n * m)),
        ]

    def get_initial_state(self, batch_size=None):
        """The state before the first step: y_0 = 0, the controller's zeros, r_0 = tanh(`initial_read`),
        w_0 = softmax(`initial_weighting`) for every head, and the memory filled with `memory_init`.

        Needs the built cell (the initial reads and weightings are weights).
        """
        if not self.built:
            raise ValueError(
                "NTMCell.get_initial_state needs a built cell (its initial reads and weightings are learned "
                "weights); call the cell, wrap it in keras.layers.RNN, or build it with (batch, input_dim) first"
            )
        dtype = self.compute_dtype
        n, m, r = self.memory_size, self.memory_width, self.read_heads
        controller_states = [ops.zeros((batch_size, size), dtype=dtype) for size in self.controller_state_sizes]
        weightings = ops.cast(ops.softmax(ops.convert_to_tensor(self.initial_weighting), axis=-1), dtype)
        reads = ops.cast(ops.tanh(ops.convert_to_tensor(self.initial_read)), dtype)
        zeros = ops.zeros((batch_size, 1), dtype=dtype)
        return [
            ops.zeros((batch_size, self.ntm_output_size), dtype=dtype),
            *controller_states,
            zeros + reads[None, :],
            zeros + ops.reshape(weightings[:r], (1, r * n)),
            zeros + ops.reshape(weightings[r:], (1, self.write_heads * n)),
            ops.full((batch_size, n * m), self.memory_init, dtype=dtype),
        ]

    def unpack_state(self, states):
        """The cell's flat states with their shapes: {"output": [B, output_size], "controller": [...],
        "reads": [B, R, M],
        "read_weightings": [B, R, N], "write_weightings": [B, W, N], "memory": [B, N, M]} (for figures)."""
        n, m = self.memory_size, self.memory_width
        k = 1 + len(self.controller_state_sizes)
        reads, read_weightings, write_weightings, memory = states[k:]
        return {
            "output": states[0],
            "controller": list(states[1:k]),
            "reads": ops.reshape(reads, (-1, self.read_heads, m)),
            "read_weightings": ops.reshape(read_weightings, (-1, self.read_heads, n)),
            "write_weightings": ops.reshape(write_weightings, (-1, self.write_heads, n)),
            "memory": ops.reshape(memory, (-1, n, m)),
        }

    def get_config(self):
        return {
            **super().get_config(),
            "output_size": self.ntm_output_size,
            "memory_size": self.memory_size,
            "memory_width": self.memory_width,
            "controller": self.controller_type,
            "controller_units": self.controller_units,
            "read_heads": self.read_heads,
            "write_heads": self.write_heads,
            "shift_range": self.shift_range,
            "clip_value": self.clip_value,
            "memory_init": self.memory_init,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
