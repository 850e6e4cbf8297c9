"""ElmanCell: the hidden-state recurrence of Elman (1990), "Finding structure in time"."""

import keras
from keras import ops

from zoo.cells.recurrent_cell import RecurrentCell


def elman_step(x, s_prev, kernel, recurrent_kernel, bias, activation):
    """One Elman step, s_t = activation(b + W s_{t-1} + U x_t).

    Args:
        x: [batch, input_dim], the input x_t.
        s_prev: [batch, units], the previous hidden state s_{t-1}.
        kernel: [input_dim, units], U.
        recurrent_kernel: [units, units], W.
        bias: [units] or None, b.
        activation: the non-linearity.

    Returns:
        [batch, units], s_t.
    """
    a = ops.matmul(x, kernel) + ops.matmul(s_prev, recurrent_kernel)
    if bias is not None:
        a = a + bias
    return activation(a)


@keras.saving.register_keras_serializable(package="zoo")
class ElmanCell(RecurrentCell):
    """Elman's simple recurrent cell: the hidden state feeds back into the hidden layer.

    Equations (weights in brackets; row vectors, so `U x_t` is computed as `x_t @ kernel`):

        a_t = b + W s_{t-1} + U x_t        U: `kernel` [input_dim, units], W: `recurrent_kernel` [units, units],
                                           b: `bias` [units]
        s_t = tanh(a_t)                    the output is the state: o_t = s_t

    Given the same weights it equals `keras.layers.SimpleRNNCell` (same weight names and shapes).

    Args:
        units: positive int, size of s_t.
        activation: non-linearity (default `"tanh"`).
        The remaining arguments (`use_bias`, initializers, regularizers, constraints, `dropout`,
        `recurrent_dropout`, `seed`) are those of `zoo.cells.RecurrentCell`, with Keras's defaults.

    Call arguments:
        inputs: [batch, input_dim], x_t.
        states: `[s_{t-1}]`, one tensor [batch, units].
        training: whether dropout is active.

    State:
        `[s_t]`, [batch, units]; `output_size == state_size == units`.

    Masking: inside `keras.layers.RNN`, a masked step keeps s_{t-1} and repeats the last output.

    Example:
        ```python
        layer = keras.layers.RNN(zoo.cells.ElmanCell(64), return_sequences=True)
        y = layer(np.zeros((8, 20, 3), "float32"))  # (8, 20, 64)
        ```

    Reference: J. L. Elman, "Finding structure in time", Cognitive Science 14(2), 1990.
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_kernel(self.input_dim, self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units, self.units)
        self.bias = self.add_bias((self.units,))

    def call(self, inputs, states, training=False):
        x, s_prev = self.apply_dropout(inputs, states[0], training)
        s = elman_step(x, s_prev, self.kernel, self.recurrent_kernel, self.bias, self.activation)
        return s, [s]
