"""StackedRNN: one or more zoo recurrent layers and a dense read-out, the network of the lecture's sequence tasks."""

import keras
from keras import ops

from zoo import rnn
from zoo import arguments

RECURRENT_LAYERS = {
    "elman": rnn.ElmanRNN,
    "jordan": rnn.JordanRNN,
    "leaky": rnn.LeakyRNN,
    "lstm": rnn.LSTM,
    "gru": rnn.GRU,
}


@keras.saving.register_keras_serializable(package="zoo")
class StackedRNN(keras.Model):
    """A stack of recurrent layers read out by a dense layer, at the last step or at every step.

        h^(1)_t = cell_1(x_t, h^(1)_{t-1}),  h^(l)_t = cell_l(h^(l-1)_t, h^(l)_{t-1}),  y = g(W_y h^(L) + b_y)

    Args:
        cell: which recurrence: "elman", "jordan", "leaky", "lstm" or "gru".
        units: positive int, hidden size of every layer.
        num_layers: positive int, how many recurrent layers are stacked (default 1).
        output_units: positive int, size of y.
        output_activation: g (default `None`, linear): e.g. "sigmoid", "softmax", "tanh".
        per_step_outputs: read out every step ([batch, time, output_units]) instead of the last one
            ([batch, output_units]) (default `False`).
        bidirectional: wrap each layer in `keras.layers.Bidirectional` (default `False`).
        mask_padding: treat all-zero input steps as padding (mask them) (default `True`).
        cell_options: dict of further arguments for every recurrent layer (`dropout`, `peepholes`, `alpha`, ...).

    Call arguments:
        inputs: [batch, time, features]; with `mask_padding`, all-zero steps are skipped.

    Example:
        ```python
        model = zoo.models.get("lstm", units=32, output_units=1)
        y = model(np.zeros((8, 20, 2), "float32"))  # (8, 1)
        ```
    """

    def __init__(
        self,
        cell="lstm",
        units=64,
        num_layers=1,
        output_units=1,
        output_activation=None,
        per_step_outputs=False,
        bidirectional=False,
        mask_padding=True,
        cell_options=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.cell = arguments.one_of("cell", cell, tuple(RECURRENT_LAYERS))
        self.units = arguments.positive_int("units", units)
        self.num_layers = arguments.positive_int("num_layers", num_layers)
        self.output_units = arguments.positive_int("output_units", output_units)
        self.output_activation = output_activation
        self.per_step_outputs = arguments.boolean("per_step_outputs", per_step_outputs)
        self.bidirectional = arguments.boolean("bidirectional", bidirectional)
        self.mask_padding = arguments.boolean("mask_padding", mask_padding)
        self.cell_options = dict(cell_options or {})
        self.recurrent_layers = []
        for index in range(self.num_layers):
            sequences = self.per_step_outputs or index < self.num_layers - 1
            layer = RECURRENT_LAYERS[self.cell](
                self.units, return_sequences=sequences, name=f"{self.cell}_{index}", **self.cell_options
            )
            if self.bidirectional:
                layer = keras.layers.Bidirectional(layer, name=f"bidirectional_{index}")
            self.recurrent_layers.append(layer)
        self.readout = keras.layers.Dense(
            self.output_units, activation=arguments.activation("output_activation", output_activation), name="readout"
        )

    def call(self, inputs, training=False):
        mask = ops.any(ops.not_equal(inputs, 0.0), axis=-1) if self.mask_padding else None
        x = inputs
        for layer in self.recurrent_layers:
            x = layer(x, mask=mask, training=training)
        return self.readout(x)

    def get_config(self):
        return {
            **super().get_config(),
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "output_units": self.output_units,
            "output_activation": self.output_activation,
            "per_step_outputs": self.per_step_outputs,
            "bidirectional": self.bidirectional,
            "mask_padding": self.mask_padding,
            "cell_options": self.cell_options,
        }
