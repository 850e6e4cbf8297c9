"""AttentionWrapperCell: a zoo cell with attention over an encoder's states and input feeding (Luong et al. 2015),
the successor of TensorFlow Addons' `AttentionWrapper` for Keras 3."""

import keras
from keras import ops

from zoo import arguments
from zoo.cells.recurrent_cell import DropoutRNNCell

BRIDGES = ("zeros", "copy", "dense")

# Where the states sit: the last output first, then the wrapped cell's states, then the attention states, counted
# from the end of the list.
OUTPUT_INDEX = 0
ATTENTION_INDEX = -6
ALIGNMENT_INDEX = -5
COVERAGE_INDEX = -4
MEMORY_INDEX = -3
KEYS_INDEX = -2
MEMORY_MASK_INDEX = -1


def latest_alignment(states):
    """The alignment α_t [batch, S] of the last step, from the wrapper's state list."""
    return states[ALIGNMENT_INDEX]


def coverage(states):
    """The coverage Σ_{t' <= t} α_t' [batch, S] (the sum of every alignment so far), from the wrapper's state list."""
    return states[COVERAGE_INDEX]


def attentional_vector(context, query, attention_kernel, activation):
    """a_t = activation([c_t; h_t] W_c).

    Args:
        context: [batch, memory_dim], c_t.        query: [batch, query_dim], h_t.
        attention_kernel: [memory_dim + query_dim, attention_layer_size], W_c.
        activation: the non-linearity (tanh).

    Returns:
        [batch, attention_layer_size], a_t.
    """
    return activation(ops.matmul(ops.concatenate([context, query], axis=-1), attention_kernel))


@keras.saving.register_keras_serializable(package="zoo")
class AttentionWrapperCell(keras.layers.Layer, DropoutRNNCell):
    """A recurrent cell that reads an encoder's states through an attention mechanism at every step.

    Equations (Luong et al. 2015 with input feeding; row vectors; weights in brackets):

        x'_t          = [x_t; a_{t-1}]                    input feeding (x'_t = x_t with `input_feeding=False`)
        h_t, s_t      = cell(x'_t, s_{t-1})               any zoo cell (or Keras cell); h_t its output
        c_t, α_t      = attention(h_t, k, h̄, mask)        `attention_mechanism`, keys k = project_memory(h̄)
        a_t           = tanh([c_t; h_t] W_c)              attentional vector; W_c: `attention_kernel`
                                                           [memory_size + cell output size, attention_layer_size]
        coverage_t    = coverage_{t-1} + α_t
        output        = a_t   (h_t when `attention_layer_size=None`, and then a_t = c_t is what is fed back)

    The query is the wrapped cell's new output h_t for either mechanism (as in Luong et al. and TensorFlow Addons'
    `AttentionWrapper`); Bahdanau et al. score with the previous state s_{t-1} and feed c_t into the step, which
    input feeding of a_{t-1} = c_{t-1} (no attention layer) approximates one step later.

    Without a mechanism (`attention_mechanism=None`) the cell is the wrapped cell plus the bridge (the no-attention
    encoder–decoder): a_t has size 0, the alignment and coverage stay 0, the output is h_t.

    Args:
        cell: the wrapped cell (a zoo cell, or any cell with `state_size`, `output_size` and `get_initial_state`).
        attention_mechanism: a `zoo.layers.BahdanauAttention` or `zoo.layers.LuongAttention`, or `None`.
        memory_size: positive int, the feature size of the memory (the encoder outputs), needed to build the weights.
        attention_layer_size: positive int or `None` (default): the size of a_t; `None` means no attention layer.
        input_feeding: whether a_{t-1} is concatenated to x_t (default `True`; needs a mechanism).
        bridge: how `get_initial_state` makes the wrapped cell's initial state from the encoder's final state(s):
            `"zeros"` (default, ignores them), `"copy"` (they must match the cell's `state_size`), `"dense"`
            (s_0 = [e_1; ...; e_n] W_b + b_b, split into the cell's states; W_b: `bridge_kernel`
            [encoder_state_size, Σ state sizes], b_b: `bridge_bias`).
        encoder_state_size: positive int, the total size of the concatenated encoder final states (`"dense"` only).
        kernel_initializer: initializer of W_c and W_b (default `"glorot_uniform"`).

    Call arguments:
        inputs: [batch, input_dim], x_t (the embedded previous target token).
        states: the state list below.
        training: whether the wrapped cell's dropout is active.

    State (a flat list of rank-2 tensors, batch first; n = the number of the wrapped cell's states):

        states[OUTPUT_INDEX]        = states[0]     the last output [batch, output_size] (0 before the first step)
        states[1:1 + n]                             the wrapped cell's states, e.g. [h, c] of an LSTM
        states[ATTENTION_INDEX]     = states[-6]    a_t [batch, A] (A = attention_layer_size, or memory_size without
                                                    an attention layer, or 0 without a mechanism)
        states[ALIGNMENT_INDEX]     = states[-5]    α_t [batch, S], the latest alignment (0 before the first step)
        states[COVERAGE_INDEX]      = states[-4]    Σ_t α_t [batch, S], the coverage (for a coverage penalty)
        states[MEMORY_INDEX]        = states[-3]    h̄ [batch, S * memory_size], the memory, flattened, unchanged
        states[KEYS_INDEX]          = states[-2]    k [batch, S * key_size], the keys (computed once), flattened
        states[MEMORY_MASK_INDEX]   = states[-1]    [batch, S] 0/1 floats, 1 at valid source positions, unchanged

    `zoo.layers.latest_alignment(states)` and `zoo.layers.coverage(states)` read the two per-step quantities;
    `cell.memory(states)` and `cell.keys(states)` unflatten the memory and the keys. Every state has the batch first,
    so a beam search that tiles and reorders every state tensor by beam reorders the memory, keys and mask too.

    Why this layout: Keras 3's `RNN` has no `constants`, so the memory travels in the state. Its masked loop keeps a
    state at a masked step with the step mask broadcast from the right, which works for rank-2 states only under
    JAX (so the memory and keys are flattened), and under JAX it repeats `states[0]` as the output of a masked step
    (so the last output comes first). The source length is dynamic, so `state_size` gives `None` for the states
    whose size depends on it; `keras.layers.RNN(..., return_state=True)` called on symbolic inputs of a functional
    model therefore reports those states' shapes wrongly (eager and traced calls are exact). `unroll=True` needs a
    static source length under TensorFlow.

    Masking: inside `keras.layers.RNN`, a masked target step keeps every state (coverage included) and repeats the
    last output; masked source positions get weight 0 (a row with no valid position gets a zero context).

    Example:
        ```python
        cell = zoo.layers.AttentionWrapperCell(
            zoo.cells.LSTMCell(32), zoo.layers.LuongAttention("general"), memory_size=64, attention_layer_size=32,
            bridge="dense", encoder_state_size=128)
        decoder = keras.layers.RNN(cell, return_sequences=True)
        state = cell.get_initial_state(memory=encoder_outputs, memory_mask=source_mask, encoder_state=[h, c])
        outputs = decoder(target_embeddings, initial_state=state, mask=target_mask)  # (B, T, 32)
        ```

    References: M.-T. Luong, H. Pham, C. D. Manning, "Effective approaches to attention-based neural machine
    translation", EMNLP 2015; D. Bahdanau, K. Cho, Y. Bengio, "Neural machine translation by jointly learning to
    align and translate", ICLR 2015; Z. Tu et al., "Modeling coverage for neural machine translation", ACL 2016.
    """

    def __init__(
        self, cell, attention_mechanism, memory_size, attention_layer_size=None, input_feeding=True, bridge="zeros",
        encoder_state_size=None, kernel_initializer="glorot_uniform", **kwargs,
    ):
        super().__init__(**kwargs)
        for attribute in ("state_size", "output_size", "call"):
            if not hasattr(cell, attribute):
                raise ValueError(f"cell must be a recurrent cell with {attribute}, got {cell!r}")
        self.cell = cell
        if attention_mechanism is not None and not all(
            hasattr(attention_mechanism, name) for name in ("project_memory", "attend")
        ):
            raise ValueError(
                "attention_mechanism must be a zoo.layers attention mechanism (with project_memory and attend) or "
                f"None, got {attention_mechanism!r}"
            )
        self.attention_mechanism = attention_mechanism
        self.memory_size = arguments.positive_int("memory_size", memory_size)
        self.attention_layer_size = (
            None if attention_layer_size is None else arguments.positive_int("attention_layer_size", attention_layer_size)
        )
        self.input_feeding = arguments.boolean("input_feeding", input_feeding)
        if attention_mechanism is None and (self.input_feeding or self.attention_layer_size is not None):
            raise ValueError(
                "without an attention_mechanism there is nothing to feed or to project: expected input_feeding=False "
                f"and attention_layer_size=None, got input_feeding={input_feeding!r}, "
                f"attention_layer_size={attention_layer_size!r}"
            )
        self.bridge = arguments.one_of("bridge", bridge, BRIDGES)
        if self.bridge == "dense":
            self.encoder_state_size = arguments.positive_int("encoder_state_size (of the 'dense' bridge)",
                                                             encoder_state_size)
        elif encoder_state_size is not None:
            raise ValueError(f"encoder_state_size is for bridge='dense' only; got {encoder_state_size!r} with "
                             f"bridge={bridge!r}; expected None")
        else:
            self.encoder_state_size = None
        self.kernel_initializer = keras.initializers.get(kernel_initializer)

        self.cell_state_sizes = list(cell.state_size) if isinstance(cell.state_size, (list, tuple)) else [
            cell.state_size]
        if attention_mechanism is None:
            self.attention_size = 0
        else:
            self.attention_size = self.attention_layer_size or self.memory_size
        self.output_size = self.attention_layer_size or cell.output_size
        # The S-sized and rank-3 states have no static size (see "State" above).
        self.state_size = [self.output_size, *self.cell_state_sizes, self.attention_size, None, None, None, None, None]
        self._attention_built = False

    def _build_attention(self):
        """The weights that do not depend on the step input: the mechanism, W_c and the bridge."""
        if self._attention_built:
            return
        query_dim = self.cell.output_size
        if self.attention_mechanism is not None and not self.attention_mechanism.built:
            self.attention_mechanism.build((None, query_dim), (None, None, self.memory_size))
        self.attention_kernel = None
        if self.attention_layer_size is not None:
            self.attention_kernel = self.add_weight(
                shape=(self.memory_size + query_dim, self.attention_layer_size), name="attention_kernel",
                initializer=self.kernel_initializer,
            )
        self.bridge_kernel = self.bridge_bias = None
        if self.bridge == "dense":
            self.bridge_kernel = self.add_weight(
                shape=(self.encoder_state_size, sum(self.cell_state_sizes)), name="bridge_kernel",
                initializer=self.kernel_initializer,
            )
            self.bridge_bias = self.add_weight(
                shape=(sum(self.cell_state_sizes),), name="bridge_bias", initializer="zeros"
            )
        self._attention_built = True

    def build(self, input_shape):
        self.input_dim = arguments.step_input_dim(self, input_shape)
        self._build_attention()
        cell_input_shape = (input_shape[0], self.input_dim + (self.attention_size if self.input_feeding else 0))
        if isinstance(self.cell, keras.layers.Layer) and not self.cell.built:
            self.cell.build(cell_input_shape)

    def memory(self, states):
        """The memory h̄ [batch, S, memory_size] from the state list."""
        flat = states[MEMORY_INDEX]
        return ops.reshape(flat, (ops.shape(flat)[0], -1, self.memory_size))

    def keys(self, states):
        """The keys k [batch, S, key_size] from the state list."""
        flat = states[KEYS_INDEX]
        key_size = self.memory_size if self.attention_mechanism is None else self.attention_mechanism.key_size
        return ops.reshape(flat, (ops.shape(flat)[0], -1, key_size))

    def call(self, inputs, states, training=False):
        states = list(states)
        n = len(self.cell_state_sizes)
        cell_states = states[1:1 + n]
        attention, _, coverage_so_far, memory_flat, keys_flat, memory_mask = states[1 + n:]
        cell_inputs = ops.concatenate([inputs, attention], axis=-1) if self.input_feeding else inputs
        output, new_cell_states = self.cell(cell_inputs, cell_states, training=training)
        new_cell_states = list(new_cell_states) if isinstance(new_cell_states, (list, tuple)) else [new_cell_states]
        carried = [memory_flat, keys_flat, memory_mask]
        if self.attention_mechanism is None:
            return output, [output, *new_cell_states, attention, states[ALIGNMENT_INDEX], coverage_so_far, *carried]
        context, alignment = self.attention_mechanism.attend(output, self.keys(states), self.memory(states),
                                                             memory_mask)
        if self.attention_kernel is not None:
            attention = attentional_vector(context, output, self.attention_kernel, ops.tanh)
            output = attention
        else:
            attention = context
        return output, [output, *new_cell_states, attention, alignment, coverage_so_far + alignment, *carried]

    def get_initial_state(self, batch_size=None, memory=None, memory_mask=None, encoder_state=None):
        """The state list of the first step, from the encoder's outputs and (for a bridge) its final state(s).

        Args:
            batch_size: ignored (the batch size is the memory's); present for `keras.layers.RNN`, which calls
                `get_initial_state(batch_size)` when no `initial_state` is given: that fails here, since the state
                holds the memory.
            memory: [batch, S, memory_size], the encoder outputs h̄.
            memory_mask: optional [batch, S] bool or 0/1, `True` at valid source positions (`zoo.layers.sequence_mask`
                from the source lengths); `None` means every position is valid.
            encoder_state: a tensor or a list of [batch, d_i] tensors, the encoder's final state(s): for `"copy"`
                one per state of the wrapped cell with its size, for `"dense"` any whose sizes sum to
                `encoder_state_size`; ignored by `"zeros"`.

        Returns:
            the state list documented in the class docstring.
        """
        if memory is None:
            raise ValueError(
                "AttentionWrapperCell's state holds the encoder outputs: pass initial_state="
                "cell.get_initial_state(memory=encoder_outputs, memory_mask=..., encoder_state=...) to the RNN "
                "(or to the first step), got no memory"
            )
        self._build_attention()
        dtype = self.compute_dtype
        memory = ops.cast(memory, dtype)
        if len(memory.shape) != 3 or memory.shape[-1] != self.memory_size:
            raise ValueError(
                f"memory must have shape (batch, source_time, memory_size={self.memory_size}), got {memory.shape}"
            )
        batch, source_time = ops.shape(memory)[0], ops.shape(memory)[1]
        cell_states = self._bridge(encoder_state, batch)
        if memory_mask is None:
            memory_mask = ops.ones((batch, source_time), dtype=dtype)
        else:
            memory_mask = ops.cast(memory_mask, dtype)
        keys = memory if self.attention_mechanism is None else self.attention_mechanism.project_memory(memory)
        zeros = ops.zeros((batch, source_time), dtype=dtype)
        return [
            ops.zeros((batch, self.output_size), dtype=dtype), *cell_states,
            ops.zeros((batch, self.attention_size), dtype=dtype), zeros, zeros,
            ops.reshape(memory, (batch, -1)), ops.reshape(keys, (batch, -1)), memory_mask,
        ]

    def _bridge(self, encoder_state, batch):
        dtype = self.compute_dtype
        if self.bridge == "zeros":
            if hasattr(self.cell, "get_initial_state"):
                states = self.cell.get_initial_state(batch_size=batch)
                return list(states) if isinstance(states, (list, tuple)) else [states]
            return [ops.zeros((batch, size), dtype=dtype) for size in self.cell_state_sizes]
        if encoder_state is None:
            raise ValueError(f"bridge={self.bridge!r} makes the initial state from the encoder's final state: "
                             "expected encoder_state, got None")
        encoder_states = list(encoder_state) if isinstance(encoder_state, (list, tuple)) else [encoder_state]
        encoder_states = [ops.cast(s, dtype) for s in encoder_states]
        sizes = [s.shape[-1] for s in encoder_states]
        if self.bridge == "copy":
            if sizes != self.cell_state_sizes:
                raise ValueError(
                    f"bridge='copy' needs encoder states of sizes {self.cell_state_sizes} (the cell's state_size), "
                    f"got sizes {sizes}; use bridge='dense' to project them"
                )
            return encoder_states
        if sum(sizes) != self.encoder_state_size:
            raise ValueError(
                f"bridge='dense' was built for encoder states of total size encoder_state_size="
                f"{self.encoder_state_size}, got sizes {sizes}"
            )
        projected = ops.matmul(ops.concatenate(encoder_states, axis=-1), self.bridge_kernel) + self.bridge_bias
        splits, total = [], 0
        for size in self.cell_state_sizes[:-1]:
            total += size
            splits.append(total)
        return list(ops.split(projected, splits, axis=-1)) if splits else [projected]

    # Keras's RNN draws one dropout mask per sequence for cells that mix in its DropoutRNNCell, calling these on the
    # outermost cell with the first step's input and states[0]: they hand the wrapped cell its own step input (with
    # the fed-back a_{t-1}) and a tensor shaped like its first state.

    def get_dropout_mask(self, step_input):
        if not isinstance(self.cell, DropoutRNNCell):
            return None
        if self.input_feeding:
            feed = ops.zeros((ops.shape(step_input)[0], self.attention_size), dtype=step_input.dtype)
            step_input = ops.concatenate([step_input, feed], axis=-1)
        return self.cell.get_dropout_mask(step_input)

    def get_recurrent_dropout_mask(self, step_input):
        if not isinstance(self.cell, DropoutRNNCell):
            return None
        first_state = ops.zeros((ops.shape(step_input)[0], self.cell_state_sizes[0]), dtype=step_input.dtype)
        return self.cell.get_recurrent_dropout_mask(first_state)

    def reset_dropout_mask(self):
        if isinstance(self.cell, DropoutRNNCell):
            self.cell.reset_dropout_mask()

    def reset_recurrent_dropout_mask(self):
        if isinstance(self.cell, DropoutRNNCell):
            self.cell.reset_recurrent_dropout_mask()

    def get_config(self):
        return {
            **super().get_config(),
            "cell": keras.saving.serialize_keras_object(self.cell),
            "attention_mechanism": (
                None if self.attention_mechanism is None
                else keras.saving.serialize_keras_object(self.attention_mechanism)
            ),
            "memory_size": self.memory_size,
            "attention_layer_size": self.attention_layer_size,
            "input_feeding": self.input_feeding,
            "bridge": self.bridge,
            "encoder_state_size": self.encoder_state_size,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["cell"] = keras.saving.deserialize_keras_object(config["cell"], custom_objects=custom_objects)
        if config["attention_mechanism"] is not None:
            config["attention_mechanism"] = keras.saving.deserialize_keras_object(
                config["attention_mechanism"], custom_objects=custom_objects
            )
        return cls(**config)
