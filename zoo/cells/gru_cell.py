"""GRUCell: the gated recurrent unit of Cho et al. (2014)."""

import keras
from keras import ops

from zoo import arguments
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

    Args:
        units: positive int, size of h_t.
        reset_after: where the reset gate acts (default `True`, Keras's default and the cuDNN-compatible form).
        activation: candidate non-linearity (default `"tanh"`).
        recurrent_activation: gate non-linearity (default `"sigmoid"`).
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
    phrase representations using RNN encoder-decoder for statistical machine translation", EMNLP 2014.
    """

    def __init__(self, units, reset_after=True, recurrent_activation="sigmoid", **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = arguments.boolean("reset_after", reset_after)
        self.recurrent_activation = arguments.activation("recurrent_activation", recurrent_activation)

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_kernel(self.input_dim, 3 * self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units, 3 * self.units)
        self.bias = self.add_bias((2, 3 * self.units) if self.reset_after else (3 * self.units,))

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
        }
