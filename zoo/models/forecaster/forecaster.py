"""Forecaster: a recurrent encoder of a multivariate series and a dense read-out of the next `horizon` steps, the
lecture's case 1 (sequence in, one output) for a real-valued series, predicting the change from the last value."""

import keras
from keras import ops

from zoo import arguments
from zoo.models.stacked_rnn.stacked_rnn import RECURRENT_LAYERS


def residual_forecast(delta, last_value):
    """The forecast from the read-out's changes: every future step is the last observed value plus its change.

    Args:
        delta: [batch, horizon * features], the read-out, step-major (step 1's features first).
        last_value: [batch, features], x_T.

    Returns:
        [batch, horizon, features], x^_{T+k} = x_T + delta_k.
    """
    features = ops.shape(last_value)[-1]
    return ops.reshape(delta, (ops.shape(delta)[0], -1, features)) + ops.expand_dims(last_value, 1)


@keras.saving.register_keras_serializable(package="zoo")
class Forecaster(keras.Model):
    """Forecasts the next `horizon` steps of a series of `features` variables from its last T steps.

    Equations (weights in brackets; row vectors):

        h^(1)_t = cell_1(x_t, h^(1)_{t-1}),  h^(l)_t = cell_l(h^(l-1)_t, h^(l)_{t-1})     (each cell's own weights)
        d = h^(L)_T W_d + b_d              W_d: `readout/kernel` [units, horizon * features], b_d: `readout/bias`
        x^_{T+k} = x_T + d_k               d_k = d[(k-1) * features : k * features], k = 1 .. horizon

    The read-out predicts the *change* from the last observed value, so with W_d = 0 and b_d = 0 the model is
    exactly the naive last-value forecast x^_{T+k} = x_T. The read-out starts at zero (`kernel_initializer` and
    `bias_initializer` "zeros"): an untrained forecaster is the naive baseline and training only has to learn what
    it gets wrong.

    Args:
        features: positive int, F, the number of variables in and out.
        horizon: positive int, how many future steps are forecast.
        cell: the recurrence: "elman", "jordan", "leaky", "lstm" or "gru" (default "lstm").
        units: positive int, hidden size of every recurrent layer (default 32).
        num_layers: positive int, how many recurrent layers are stacked (default 1).
        dropout: rate in [0, 1) of the dropout on the outputs of every recurrent layer (default 0.0).
        cell_options: dict of further arguments for every recurrent layer (`recurrent_dropout`, `peepholes`, ...).

    Call arguments:
        inputs: float [batch, T, F], the last T observed steps (scaled; see `training.data.series.Scaler`). No step
            is masked: zero is an ordinary value of a scaled series.
        training: whether dropout is active.

    Returns [batch, horizon, F], the forecast x^_{T+1} .. x^_{T+horizon}.

    Example:
        ```python
        model = zoo.models.get("forecaster", features=2, horizon=6)
        y = model(np.zeros((8, 48, 2), "float32"))  # (8, 6, 2)
        ```

    Reference: the lecture, "sequence to one output"; the naive last-value forecast is the baseline of
    R. J. Hyndman, G. Athanasopoulos, "Forecasting: principles and practice", ch. 5.2.
    """

    def __init__(
        self,
        features,
        horizon,
        cell="lstm",
        units=32,
        num_layers=1,
        dropout=0.0,
        cell_options=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.features = arguments.positive_int("features", features)
        self.horizon = arguments.positive_int("horizon", horizon)
        self.cell = arguments.one_of("cell", cell, tuple(RECURRENT_LAYERS))
        self.units = arguments.positive_int("units", units)
        self.num_layers = arguments.positive_int("num_layers", num_layers)
        self.dropout = arguments.rate("dropout", dropout)
        self.cell_options = arguments.options("cell_options", cell_options)
        self.recurrent_layers = [
            RECURRENT_LAYERS[self.cell](
                self.units,
                return_sequences=index < self.num_layers - 1,
                name=f"{self.cell}_{index}",
                **self.cell_options,
            )
            for index in range(self.num_layers)
        ]
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.readout = keras.layers.Dense(
            self.horizon * self.features, kernel_initializer="zeros", bias_initializer="zeros", name="readout"
        )

    def build(self, input_shape):
        shape = tuple(input_shape)
        if len(shape) != 3 or shape[-1] != self.features:
            raise ValueError(
                f"Forecaster(features={self.features}) expects inputs of shape (batch, time, {self.features}), "
                f"got shape {shape}"
            )
        features = self.features
        for layer in self.recurrent_layers:
            layer.build((None, None, features))
            features = layer.compute_output_shape((None, None, features))[-1]
        self.readout.build((None, features))

    def call(self, inputs, training=False):
        x = inputs
        for layer in self.recurrent_layers:
            x = layer(x, training=training)
            x = self.dropout_layer(x, training=training)
        return residual_forecast(self.readout(x), inputs[:, -1, :])

    def get_config(self):
        return {
            **super().get_config(),
            "features": self.features,
            "horizon": self.horizon,
            "cell": self.cell,
            "units": self.units,
            "num_layers": self.num_layers,
            "dropout": self.dropout,
            "cell_options": self.cell_options,
        }
