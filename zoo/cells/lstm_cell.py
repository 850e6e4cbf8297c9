"""LSTMCell: long short-term memory (Hochreiter & Schmidhuber 1997) with the forget gate (Gers et al. 2000) and
optional peephole connections (Gers & Schmidhuber 2000) and optional chrono initialisation (Tallec & Ollivier 2018)."""

import keras
from keras import ops

from zoo import arguments
from zoo.cells import chrono
from zoo.cells.recurrent_cell import RecurrentCell


def lstm_step(z, c_prev, peephole_input, peephole_forget, peephole_output, activation, recurrent_activation):
    """One LSTM step from the fused pre-activations.

    Args:
        z: [batch, 4 * units], U x_t + W h_{t-1} + b for the gates in Keras's order (i, f, c, o).
        c_prev: [batch, units], c_{t-1}.
        peephole_input, peephole_forget, peephole_output: [units] or None, the diagonal peepholes V_i, V_f, V_o.
        activation: the cell non-linearity (tanh).      recurrent_activation: the gate non-linearity (sigmoid).

    Returns:
        (h_t [batch, units], c_t [batch, units]).
    """
    z_i, z_f, z_c, z_o = ops.split(z, 4, axis=-1)
    if peephole_input is not None:
        z_i = z_i + peephole_input * c_prev
        z_f = z_f + peephole_forget * c_prev
    i = recurrent_activation(z_i)
    f = recurrent_activation(z_f)
    c = f * c_prev + i * activation(z_c)
    if peephole_output is not None:
        z_o = z_o + peephole_output * c
    o = recurrent_activation(z_o)
    return o * activation(c), c


@keras.saving.register_keras_serializable(package="zoo")
class LSTMCell(RecurrentCell):
    """Long short-term memory cell, with optional diagonal peepholes from the memory cell to the gates.

    Equations (weights in brackets; row vectors; the four gates sit side by side in Keras's order i, f, c, o, so
    U_i is `kernel[:, :units]`, U_f is `kernel[:, units:2*units]`, and so on):

        i_t = sigmoid(W_i h_{t-1} + U_i x_t + V_i c_{t-1} + b_i)     input gate
        f_t = sigmoid(W_f h_{t-1} + U_f x_t + V_f c_{t-1} + b_f)     forget gate
        c~_t = tanh(U_c x_t + W_c h_{t-1} + b_c)                      candidate
        c_t = f_t * c_{t-1} + i_t * c~_t                              memory cell
        o_t = sigmoid(W_o h_{t-1} + U_o x_t + V_o c_t + b_o)          output gate (peeks at the *new* cell)
        h_t = o_t * tanh(c_t)

        U_{i,f,c,o}: `kernel` [input_dim, 4 * units]      W_{i,f,c,o}: `recurrent_kernel` [units, 4 * units]
        b_{i,f,c,o}: `bias` [4 * units]                    V_i, V_f, V_o: `peephole_input`, `peephole_forget`,
                                                           `peephole_output`, each [units] (diagonal matrices)

    With `peepholes=False` (the default) the V terms vanish and the cell equals `keras.layers.LSTMCell` given the
    same weights: same gate order, weight names and shapes.

    Chrono initialisation (`chrono_max_length=T_max`; Tallec & Ollivier 2018, §4) draws, per unit j,

        b_f[j] = log(u_j),  u_j ~ U(1, T_max - 1),        b_i = -b_f

    and leaves b_c, b_o to `bias_initializer`. The reason is the gates' characteristic times: with zero input and
    state, c_t = f * c_{t-1} with f = sigmoid(b_f) = u / (1 + u), so unit j forgets in 1 / (1 - f) = 1 + u_j steps,
    spread over [2, T_max], and its input gate sigmoid(-b_f) = 1 - f writes in proportion. The default
    (`unit_forget_bias`, b_f = 1) forgets in about 3.7 steps in every unit, which is why a default LSTM fails to
    latch a class over 50 steps and more (docs/results/long_term.md). Only the initial biases change: the
    equations, and the parity with `keras.layers.LSTMCell`, are the same.

    Args:
        units: positive int, size of h_t and c_t.
        peepholes: whether the gates see the memory cell through V_i, V_f, V_o (default `False`).
        unit_forget_bias: start b_f at 1 so the cell remembers by default (Jozefowicz et al. 2015; default `True`).
            Ignored when `chrono_max_length` is set.
        chrono_max_length: T_max, an int >= 2, the longest dependency expected: chrono initialisation of b_f and b_i
            (above); `None` (the default) keeps the initialisation of `unit_forget_bias` and `bias_initializer`.
            Needs `use_bias=True`. The draws follow Keras's global seed (`keras.utils.set_random_seed`).
        activation: the cell non-linearity (default `"tanh"`).
        recurrent_activation: the gate non-linearity (default `"sigmoid"`).
        peephole_initializer: initializer of V (default `"glorot_uniform"`, as TensorFlow 1's peephole LSTM).
        The remaining arguments are those of `zoo.cells.RecurrentCell`; `recurrent_dropout` masks h_{t-1}.

    Call arguments:
        inputs: [batch, input_dim], x_t.
        states: `[h_{t-1}, c_{t-1}]`, each [batch, units].
        training: whether dropout is active.

    State:
        `[h_t, c_t]`, each [batch, units]; `output_size == units` (the output is h_t).

    Masking: inside `keras.layers.RNN`, a masked step keeps (h_{t-1}, c_{t-1}) and repeats the last output.

    Example:
        ```python
        layer = keras.layers.RNN(zoo.cells.LSTMCell(64, peepholes=True), return_sequences=True)
        y = layer(np.zeros((8, 20, 3), "float32"))  # (8, 20, 64)
        ```

    References: S. Hochreiter, J. Schmidhuber, "Long short-term memory", Neural Computation 9(8), 1997;
    F. A. Gers, J. Schmidhuber, F. Cummins, "Learning to forget", Neural Computation 12(10), 2000;
    F. A. Gers, J. Schmidhuber, "Recurrent nets that time and count", IJCNN 2000;
    C. Tallec, Y. Ollivier, "Can recurrent neural networks warp time?", ICLR 2018.
    """

    def __init__(
        self,
        units,
        peepholes=False,
        unit_forget_bias=True,
        recurrent_activation="sigmoid",
        peephole_initializer="glorot_uniform",
        chrono_max_length=None,
        **kwargs,
    ):
        super().__init__(units, **kwargs)
        self.peepholes = arguments.boolean("peepholes", peepholes)
        self.unit_forget_bias = arguments.boolean("unit_forget_bias", unit_forget_bias)
        self.chrono_max_length = chrono.check_max_length(self, chrono_max_length)
        # Made here, once: its seed comes from Keras's global seed at construction, as the kernel initializers' do.
        self._chrono_initializer = (
            None if self.chrono_max_length is None else chrono.log_uniform_initializer(self.chrono_max_length)
        )
        self.recurrent_activation = arguments.activation("recurrent_activation", recurrent_activation)
        self.peephole_initializer = keras.initializers.get(peephole_initializer)
        self.state_size = [self.units, self.units]
        self.output_size = self.units

    def build(self, input_shape):
        super().build(input_shape)
        self.kernel = self.add_kernel(self.input_dim, 4 * self.units)
        self.recurrent_kernel = self.add_recurrent_kernel(self.units, 4 * self.units)
        self.bias = self.add_bias((4 * self.units,), initializer=self._bias_initializer())
        self.peephole_input = self.peephole_forget = self.peephole_output = None
        if self.peepholes:
            self.peephole_input = self._add_peephole("peephole_input")
            self.peephole_forget = self._add_peephole("peephole_forget")
            self.peephole_output = self._add_peephole("peephole_output")

    def _bias_initializer(self):
        units, bias_initializer = self.units, self.bias_initializer
        if self._chrono_initializer is not None:
            chrono_initializer = self._chrono_initializer

            def initializer(shape, dtype=None):
                b_f = chrono_initializer((units,), dtype=dtype)
                b_co = bias_initializer((2 * units,), dtype=dtype)
                return ops.concatenate([-b_f, b_f, b_co])

            return initializer
        if not self.unit_forget_bias:
            return None

        def initializer(shape, dtype=None):
            b_i = bias_initializer((units,), dtype=dtype)
            b_f = keras.initializers.Ones()((units,), dtype=dtype)
            b_co = bias_initializer((2 * units,), dtype=dtype)
            return ops.concatenate([b_i, b_f, b_co])

        return initializer

    def _add_peephole(self, name):
        return self.add_weight(
            shape=(self.units,),
            name=name,
            initializer=self.peephole_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )

    def call(self, inputs, states, training=False):
        h_prev, c_prev = states[0], states[1]
        x, h_fed_back = self.apply_dropout(inputs, h_prev, training)
        z = ops.matmul(x, self.kernel) + ops.matmul(h_fed_back, self.recurrent_kernel)
        if self.bias is not None:
            z = z + self.bias
        h, c = lstm_step(
            z,
            c_prev,
            self.peephole_input,
            self.peephole_forget,
            self.peephole_output,
            self.activation,
            self.recurrent_activation,
        )
        return h, [h, c]

    def get_config(self):
        return {
            **super().get_config(),
            "peepholes": self.peepholes,
            "unit_forget_bias": self.unit_forget_bias,
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
            "chrono_max_length": self.chrono_max_length,
        }
