"""RecurrentCell: the arguments, weights, dropout masks, state and config that every zoo cell shares.

Subclasses add their equations (`call`), their extra weights (`build`) and their extra arguments (`get_config`).
"""

import keras
from keras import ops

from zoo import arguments


def _keras_dropout_rnn_cell():
    """Keras's dropout mix-in for RNN cells.

    `keras.layers.RNN` (and `Bidirectional`, and the cuDNN paths of `LSTM`/`GRU`) draws one dropout mask per sequence
    and reuses it at every step, but only for cells that mix in Keras's `DropoutRNNCell`, a class Keras does not
    export. We take it from the bases of the public `keras.layers.LSTMCell` so that zoo cells get exactly Keras's
    per-sequence (variational) masks wherever they run. `tests/zoo/cells` checks that the mask is the same at every
    step, so a Keras release that changes this fails loudly.
    """
    for base in keras.layers.LSTMCell.__mro__:
        if base.__name__ == "DropoutRNNCell":
            return base
    raise ImportError(
        f"keras {keras.__version__}: keras.layers.LSTMCell no longer mixes in DropoutRNNCell; "
        "seqzoo supports keras>=3.15,<4"
    )


DropoutRNNCell = _keras_dropout_rnn_cell()


class RecurrentCell(keras.layers.Layer, DropoutRNNCell):
    """Base of the zoo cells: one step of a recurrence, `call(x_t, states) -> (output_t, new_states)`.

    Weights follow Keras's layout and names, row-vector convention (`x_t @ kernel`): `kernel` holds the input
    weights U of every gate side by side, `recurrent_kernel` the recurrent weights W, `bias` the biases b.

    Args:
        units: positive int, the size of the hidden state s_t.
        activation: the squashing non-linearity (default `"tanh"`).
        use_bias: whether the cell has biases (default `True`).
        kernel_initializer, recurrent_initializer, bias_initializer: initializers of U, W and b
            (defaults `"glorot_uniform"`, `"orthogonal"`, `"zeros"`, as in Keras).
        kernel_regularizer, recurrent_regularizer, bias_regularizer: optional regularizers.
        kernel_constraint, recurrent_constraint, bias_constraint: optional constraints.
        dropout: rate in [0, 1) of the dropout on x_t (one mask per sequence).
        recurrent_dropout: rate in [0, 1) of the dropout on the fed-back state (one mask per sequence).
        seed: seed of the dropout masks.
    """

    def __init__(
        self,
        units,
        activation="tanh",
        use_bias=True,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        recurrent_regularizer=None,
        bias_regularizer=None,
        kernel_constraint=None,
        recurrent_constraint=None,
        bias_constraint=None,
        dropout=0.0,
        recurrent_dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = arguments.positive_int("units", units)
        self.activation = arguments.activation("activation", activation)
        self.use_bias = arguments.boolean("use_bias", use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = keras.regularizers.get(recurrent_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)
        self.recurrent_constraint = keras.constraints.get(recurrent_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.dropout = arguments.rate("dropout", dropout)
        self.recurrent_dropout = arguments.rate("recurrent_dropout", recurrent_dropout)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed=seed)
        self.state_size = self.units
        self.output_size = self.units

    # Weight factories: one place for the names, initializers, regularizers and constraints of U, W and b.

    def add_kernel(self, input_dim, width):
        return self.add_weight(
            shape=(input_dim, width),
            name="kernel",
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def add_recurrent_kernel(self, state_dim, width):
        return self.add_weight(
            shape=(state_dim, width),
            name="recurrent_kernel",
            initializer=self.recurrent_initializer,
            regularizer=self.recurrent_regularizer,
            constraint=self.recurrent_constraint,
        )

    def add_bias(self, shape, initializer=None):
        if not self.use_bias:
            return None
        return self.add_weight(
            shape=shape,
            name="bias",
            initializer=initializer or self.bias_initializer,
            regularizer=self.bias_regularizer,
            constraint=self.bias_constraint,
        )

    def build(self, input_shape):
        self.input_dim = arguments.step_input_dim(self, input_shape)
        self.input_spec = keras.layers.InputSpec(shape=(None, self.input_dim))

    def apply_dropout(self, inputs, fed_back, training):
        """Applies the per-sequence masks: `dropout` to x_t, `recurrent_dropout` to the fed-back state."""
        if training and self.dropout > 0.0:
            inputs = inputs * self.get_dropout_mask(inputs)
        if training and self.recurrent_dropout > 0.0:
            fed_back = fed_back * self.get_recurrent_dropout_mask(fed_back)
        return inputs, fed_back

    def get_initial_state(self, batch_size=None):
        sizes = self.state_size if isinstance(self.state_size, (list, tuple)) else [self.state_size]
        return [ops.zeros((batch_size, size), dtype=self.compute_dtype) for size in sizes]

    def get_config(self):
        config = {
            "units": self.units,
            "activation": keras.activations.serialize(self.activation),
            "use_bias": self.use_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": keras.regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "recurrent_constraint": keras.constraints.serialize(self.recurrent_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "dropout": self.dropout,
            "recurrent_dropout": self.recurrent_dropout,
            "seed": self.seed,
        }
        return {**super().get_config(), **config}
