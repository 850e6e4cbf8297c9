"""JordanRNN: the Jordan (output) recurrence over a sequence."""

import keras

from zoo.cells.jordan_cell import JordanCell
from zoo.rnn.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class JordanRNN(Recurrent):
    """Runs `zoo.cells.JordanCell` over a sequence: the previous output o_{t-1} feeds the hidden layer.

    Args:
        units: positive int, size of the hidden layer s_t.
        Any argument of `zoo.cells.JordanCell` (`output_units`, `output_activation`, `activation`, `dropout`, ...)
        and of `keras.layers.RNN` (`return_sequences`, `return_state`, `go_backwards`, ...).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features]; outputs have
    `output_units` features.

    Example:
        ```python
        y = zoo.rnn.JordanRNN(32, output_units=4, return_sequences=True)(np.zeros((8, 20, 3), "float32"))
        ```
    """

    cell_class = JordanCell
    cell_name = "jordan_cell"
