"""LeakyRNN: leaky-integrator units over a sequence."""

import keras

from zoo.cells.leaky_cell import LeakyCell
from zoo.rnn.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class LeakyRNN(Recurrent):
    """Runs `zoo.cells.LeakyCell` over a sequence: s_t = (1 - alpha) s_{t-1} + alpha tanh(b + W s_{t-1} + U x_t).

    Args:
        units: positive int, size of s_t.
        Any argument of `zoo.cells.LeakyCell` (`alpha`, `trainable_alpha`, `activation`, `dropout`, ...) and of
        `keras.layers.RNN` (`return_sequences`, `return_state`, `go_backwards`, ...).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features].

    Example:
        ```python
        y = zoo.rnn.LeakyRNN(64, alpha=0.1, trainable_alpha=True)(np.zeros((8, 20, 3), "float32"))  # (8, 64)
        ```
    """

    cell_class = LeakyCell
    cell_name = "leaky_cell"
