"""ElmanRNN: the Elman recurrence over a sequence."""

import keras

from zoo.cells.elman_cell import ElmanCell
from zoo.rnn.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class ElmanRNN(Recurrent):
    """Runs `zoo.cells.ElmanCell` over a sequence: s_t = tanh(b + W s_{t-1} + U x_t).

    Equals `keras.layers.SimpleRNN` given the same weights.

    Args:
        units: positive int, size of s_t.
        Any argument of `zoo.cells.ElmanCell` (`activation`, `use_bias`, initializers, `dropout`, ...) and of
        `keras.layers.RNN` (`return_sequences`, `return_state`, `go_backwards`, `stateful`, `unroll`,
        `zero_output_for_mask`).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features].

    Example:
        ```python
        y = zoo.rnn.ElmanRNN(64, return_sequences=True)(np.zeros((8, 20, 3), "float32"))  # (8, 20, 64)
        ```
    """

    cell_class = ElmanCell
    cell_name = "elman_cell"
