"""JordanCell: the output recurrence of Jordan (1986), "Serial order: a parallel distributed processing approach"."""

import keras
from keras import ops

from zoo import arguments
from zoo.cells.elman_cell import elman_step
from zoo.cells.recurrent_cell import RecurrentCell


def jordan_step(x, o_prev, kernel, recurrent_kernel, bias, output_kernel, output_bias, activation, output_activation):
    """One Jordan step: the previous *output* o_{t-1}, not the hidden state, feeds the hidden layer.

    Args:
        x: [batch, input_dim], x_t.
        o_prev: [batch, output_units], o_{t-1}.
        kernel: [input_dim, units], U.      recurrent_kernel: [output_units, units], W.      bias: [units] or None, b.
        output_kernel: [units, output_units], V.      output_bias: [output_units] or None, c.
        activation: the hidden non-linearity.      output_activation: applied to c + V s_t before it is fed back.

    Returns:
        (s_t [batch, units], o_t [batch, output_units]).
    """
    s = elman_step(x, o_prev, kernel, recurrent_kernel, bias, activation)
    o = ops.matmul(s, output_kernel)
    if output_bias is not None:
        o = o + output_bias
    return s, output_activation(o)


@keras.saving.register_keras_serializable(package="zoo")
class JordanCell(RecurrentCell):
    """Jordan's recurrent cell: the network's previous output feeds back into its hidden layer.

    Equations (weights in brackets; row vectors):

        a_t = b + W o_{t-1} + U x_t        U: `kernel` [input_dim, units], W: `recurrent_kernel` [output_units, units],
                                           b: `bias` [units]
        s_t = tanh(a_t)
        o_t = g(c + V s_t)                 V: `output_kernel` [units, output_units], c: `output_bias` [output_units],
                                           g: `output_activation` (linear by default)

    The state carried from step to step is o_{t-1}: what the hidden layer sees of the past is only what the
    network has already output, which is why Jordan networks are "teacher-forceable" and why they remember less
    than Elman networks of the same size.

    Args:
        units: positive int, size of the hidden layer s_t.
        output_units: positive int, size of o_t and of the state (default: `units`).
        activation: hidden non-linearity (default `"tanh"`).
        output_activation: g, applied to the output before it is fed back (default `None`, linear).
        output_initializer: initializer of V (default `"glorot_uniform"`); c uses `bias_initializer`.
        The remaining arguments are those of `zoo.cells.RecurrentCell`; `recurrent_dropout` masks o_{t-1}.

    Call arguments:
        inputs: [batch, input_dim], x_t.
        states: `[o_{t-1}]`, one tensor [batch, output_units].
        training: whether dropout is active.

    State:
        `[o_t]`, [batch, output_units]; `output_size == state_size == output_units`.

    Masking: inside `keras.layers.RNN`, a masked step keeps o_{t-1} and repeats the last output.

    Example:
        ```python
        layer = keras.layers.RNN(zoo.cells.JordanCell(32, output_units=4), return_sequences=True)
        y = layer(np.zeros((8, 20, 3), "float32"))  # (8, 20, 4)
        ```

    Reference: M. I. Jordan, "Serial order: a parallel distributed processing approach", ICS Report 8604, 1986.
    """

    def __init__(self, units, output_units=None, output_activation=None, output_initializer="glorot_uniform", **kwargs):
        super().__init__(units, **kwargs)
        self.output_units = self.units if output_units is None else arguments.positive_int("output_units", output_units)
        self.output_activation = arguments.activation("output_activation", output_activation)
        self.output_initializer = keras.initializers.get(output_initializer)
        self.state_size = self.output_units
        self.output_size = self.output_units

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_kernel(self.input_dim, self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.output_units, self.units)
        self.bias = self.add_bias((self.units,))
        self.output_kernel = self.add_weight(
            shape=(self.units, self.output_units),
            name="output_kernel",
            initializer=self.output_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )
        self.output_bias = None
        if self.use_bias:
            self.output_bias = self.add_weight(
                shape=(self.output_units,),
                name="output_bias",
                initializer=self.bias_initializer,
                regularizer=self.bias_regularizer,
                constraint=self.bias_constraint,
            )

    def call(self, inputs, states, training=False):
        x, o_prev = self.apply_dropout(inputs, states[0], training)
        _, o = jordan_step(
            x,
            o_prev,
            self.kernel,
            self.recurrent_kernel,
            self.bias,
            self.output_kernel,
            self.output_bias,
            self.activation,
            self.output_activation,
        )
        return o, [o]

    def get_config(self):
        return {
            **super().get_config(),
            "output_units": self.output_units,
            "output_activation": keras.activations.serialize(self.output_activation),
            "output_initializer": keras.initializers.serialize(self.output_initializer),
        }
