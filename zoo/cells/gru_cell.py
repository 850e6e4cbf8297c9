"""GRUCell: the gated recurrent unit of Cho et al. (2014), with optional chrono initialisation (Tallec & Ollivier
2018)."""

import keras
from keras import ops

from zoo import arguments
from zoo.cells import chrono
from zoo.cells.recurrent_cell import RecurrentCell


def gru_step(x_proj, h_prev, h_fed_back, recurrent_kernel, recurrent_bias, reset_after, activation, gate):
    """One GRU step from the input projection.

    Args:
        x_proj: [batch, 3 * units], U x_t + b (input bias) for the gates in Keras's order (z, r, h).
        h_prev: [batch, units], h_{t-1} in the interpolation.
        h_fed_back: [batch, units], h_{t-1} in the matrix products (masked by recurrent dropout when active).
        recurrent_kernel: [units, 3 * units], W_z, W_r, W_h side by side.
        recurrent_bias: [3 * units] or None, the recurrent bias (only with `reset_after`).
        reset_after: apply r_t after the product W_h h_{t-1} (cuDNN's form) instead of before it (Cho's form).
        activation: the candidate non-linearity (tanh).      gate: the gate non-linearity (sigmoid).

    Returns:
        [batch, units], h_t.
    """
    units = recurrent_kernel.shape[0]
    x_z, x_r, x_h = ops.split(x_proj, 3, axis=-1)
    if reset_after:
        inner = ops.matmul(h_fed_back, recurrent_kernel)
        if recurrent_bias is not None:
            inner = inner + recurrent_bias
        h_z, h_r, h_h = ops.split(inner, 3, axis=-1)
    else:
        h_z, h_r = ops.split(ops.matmul(h_fed_back, recurrent_kernel[:, : 2 * units]), 2, axis=-1)
    z = gate(x_z + h_z)
    r = gate(x_r + h_r)
    if reset_after:
        candidate = activation(x_h + r * h_h)
    else:
        candidate = activation(x_h + ops.matmul(r * h_fed_back, recurrent_kernel[:, 2 * units :]))
    return z * h_prev + (1.0 - z) * candidate


@keras.saving.register_keras_serializable(package="zoo")
class GRUCell(RecurrentCell):
    """Gated recurrent unit: an update gate interpolates between the old state and a reset-gated candidate.

    Equations (weights in brackets; row vectors; gates side by side in Keras's order z, r, h):

        z_t = sigmoid(W_z h_{t-1} + U_z x_t + b_z)          update gate
        r_t = sigmoid(W_r h_{t-1} + U_r x_t + b_r)          reset gate
        h~_t = tanh(U_h x_t + W_h (r_t * h_{t-1}) + b_h)    candidate (reset_after=False, Cho et al. 2014)
        h~_t = tanh(U_h x_t + r_t * (W_h h_{t-1} + b'_h) + b_h)   candidate (reset_after=True, cuDNN's form)
        h_t = z_t * h_{t-1} + (1 - z_t) * h~_t

        U_{z,r,h}: `kernel` [input_dim, 3 * units]      W_{z,r,h}: `recurrent_kernel` [units, 3 * units]
        b: `bias`, [3 * units]; with reset_after, [2, 3 * units]: row 0 the input biases b, row 1 the recurrent
        biases b' (b'_z and b'_r simply add to b_z and b_r).

    z_t here weighs the *old* state, as in Keras and in Goodfellow et al.'s "Deep Learning" (its u_t); Cho et al.
    write the same gate as 1 - z_t. Given the same weights the cell equals `keras.layers.GRUCell` for both
    values of `reset_after`.

    Chrono initialisation (`chrono_max_length=T_max`; Tallec & Ollivier 2018, §4): the gate that keeps the previous
    state is z_t (it weighs h_{t-1} in h_t = z_t * h_{t-1} + ...), so its bias gets, per unit j,

        b_z[j] = +log(u_j),  u_j ~ U(1, T_max - 1)        (with reset_after, b'_z = 0, so b_z + b'_z = log(u_j))

    and b_r, b_h (and b'_r, b'_h) come from `bias_initializer`. (In Cho et al.'s notation, where the gate is 1 - z_t,
    the same bias is -log(u_j).) The reason is the gate's characteristic time: with zero input and state the gate
    is z = sigmoid(log u) = u / (1 + u), so unit j keeps that fraction of its state per step and forgets in
    1 / (1 - z) = 1 + u_j steps, spread over [2, T_max]; 1 - z, the weight of the candidate, is the write gate tied
    to it (the LSTM's b_i = -b_f). The default (all biases 0) keeps half the state per step in every unit, which is
    why a default GRU fails to latch a class over 50 steps and more (docs/results/long_term.md). Only the initial
    biases change: the equations, and the parity with `keras.layers.GRUCell`, are the same.

    Args:
        units: positive int, size of h_t.
        reset_after: where the reset gate acts (default `True`, Keras's default and the cuDNN-compatible form).
        activation: candidate non-linearity (default `"tanh"`).
        recurrent_activation: gate non-linearity (default `"sigmoid"`).
        chrono_max_length: T_max, an int >= 2, the longest dependency expected: chrono initialisation of b_z (above);
            `None` (the default) keeps `bias_initializer` for every bias. Needs `use_bias=True`. The draws follow
            Keras's global seed (`keras.utils.set_random_seed`).
        The remaining arguments are those of `zoo.cells.RecurrentCell`; `recurrent_dropout` masks h_{t-1} where
        it enters the matrix products (the interpolation uses the unmasked state).

    Call arguments:
        inputs: [batch, input_dim], x_t.
        states: `[h_{t-1}]`, one tensor [batch, units].
        training: whether dropout is active.

    State:
        `[h_t]`, [batch, units]; `output_size == state_size == units`.

    Masking: inside `keras.layers.RNN`, a masked step keeps h_{t-1} and repeats the last output.

    Example:
        ```python
        layer = keras.layers.RNN(zoo.cells.GRUCell(64), return_sequences=True)
        y = layer(np.zeros((8, 20, 3), "float32"))  # (8, 20, 64)
        ```

    Reference: K. Cho, B. van Merrienboer, C. Gulcehre, D. Bahdanau, F. Bougares, H. Schwenk, Y. Bengio, "Learning
    phrase representations using RNN encoder-decoder for statistical machine translation", EMNLP 2014;
    C. Tallec, Y. Ollivier, "Can recurrent neural networks warp time?", ICLR 2018.
    """

    def __init__(self, units, reset_after=True, recurrent_activation="sigmoid", chrono_max_length=None, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = arguments.boolean("reset_after", reset_after)
        self.recurrent_activation = arguments.activation("recurrent_activation", recurrent_activation)
        self.chrono_max_length = chrono.check_max_length(self, chrono_max_length)
        # Made here, once: its seed comes from Keras's global seed at construction, as the kernel initializers' do.
        self._chrono_initializer = (
            None if self.chrono_max_length is None else chrono.log_uniform_initializer(self.chrono_max_length)
        )

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_kernel(self.input_dim, 3 * self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units, 3 * self.units)
        self.bias = self.add_bias(
            (2, 3 * self.units) if self.reset_after else (3 * self.units,), initializer=self._bias_initializer()
        )

    def _bias_initializer(self):
        if self._chrono_initializer is None:
            return None
        units, reset_after = self.units, self.reset_after
        bias_initializer, chrono_initializer = self.bias_initializer, self._chrono_initializer

        def initializer(shape, dtype=None):
            b_z = chrono_initializer((units,), dtype=dtype)
            b_rh = bias_initializer((2 * units,), dtype=dtype)
            if not reset_after:
                return ops.concatenate([b_z, b_rh])
            # Row 1, the recurrent biases: b'_z = 0, so that the update gate's whole bias b_z + b'_z is log(u).
            recurrent_b_rh = bias_initializer((2 * units,), dtype=dtype)
            recurrent_b_z = ops.zeros((units,), dtype=dtype)
            return ops.stack([ops.concatenate([b_z, b_rh]), ops.concatenate([recurrent_b_z, recurrent_b_rh])])

        return initializer

    def call(self, inputs, states, training=False):
        h_prev = states[0]
        x, h_fed_back = self.apply_dropout(inputs, h_prev, training)
        x_proj = ops.matmul(x, self.kernel)
        recurrent_bias = None
        if self.bias is not None:
            input_bias = self.bias[0] if self.reset_after else self.bias
            recurrent_bias = self.bias[1] if self.reset_after else None
            x_proj = x_proj + input_bias
        h = gru_step(
            x_proj,
            h_prev,
            h_fed_back,
            self.recurrent_kernel,
            recurrent_bias,
            self.reset_after,
            self.activation,
            self.recurrent_activation,
        )
        return h, [h]

    def get_config(self):
        return {
            **super().get_config(),
            "reset_after": self.reset_after,
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "chrono_max_length": self.chrono_max_length,
        }
