"""LSTM: the zoo LSTM cell over a sequence, on Keras's (and on GPU cuDNN's) fast path when it has no peepholes."""

import keras

from zoo.cells.lstm_cell import LSTMCell
from zoo.rnn.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class LSTM(Recurrent, keras.layers.LSTM):
    """Runs `zoo.cells.LSTMCell` over a sequence, with or without peepholes.

    Without peepholes it *is* Keras's LSTM loop around our cell: same weights, same results, same speed, and on a
    GPU the same cuDNN kernel (`use_cudnn="auto"`). With peepholes the generic loop runs (cuDNN has no peepholes).

    Args:
        units: positive int, size of h_t and c_t.
        use_cudnn: `"auto"` (cuDNN when possible), `True` (require it) or `False` (never), as in Keras. `True` with
            `peepholes=True` is rejected.
        Any argument of `zoo.cells.LSTMCell` (`peepholes`, `unit_forget_bias`, `chrono_max_length`, activations, initializers,
        `dropout`, `recurrent_dropout`, ...) and of `keras.layers.RNN` (`return_sequences`, `return_state`,
        `go_backwards`, `stateful`, `unroll`, `zero_output_for_mask`).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features]; states [h, c]. On the cuDNN
    path masks must be right-padded, as for `keras.layers.LSTM`.

    Example:
        ```python
        y = zoo.rnn.LSTM(64, peepholes=True, return_sequences=True)(np.zeros((8, 20, 3), "float32"))
        ```
    """

    cell_class = LSTMCell
    cell_name = "lstm_cell"
    _cudnn_limit = "it has no peephole connections"

    def __init__(self, units, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.use_cudnn = self._use_cudnn(use_cudnn, kernel_computes_cell=not self.cell.peepholes)

    def get_config(self):
        return {**super().get_config(), "use_cudnn": self.use_cudnn}
