"""GRU: the zoo GRU cell over a sequence, on Keras's (and on GPU cuDNN's) fast path."""

import keras

from zoo.cells.gru_cell import GRUCell
from zoo.rnn.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class GRU(Recurrent, keras.layers.GRU):
    """Runs `zoo.cells.GRUCell` over a sequence.

    It is Keras's GRU loop around our cell: same weights, same results, same speed, and on a GPU the same cuDNN
    kernel when `reset_after=True` (`use_cudnn="auto"`).

    Args:
        units: positive int, size of h_t.
        use_cudnn: `"auto"`, `True` or `False`, as in Keras. `True` with `reset_after=False` is rejected.
        Any argument of `zoo.cells.GRUCell` (`reset_after`, `chrono_max_length`, activations, initializers, `dropout`, ...) and of
        `keras.layers.RNN` (`return_sequences`, `return_state`, `go_backwards`, `stateful`, `unroll`,
        `zero_output_for_mask`).

    Call arguments and masking: as `keras.layers.RNN`; inputs [batch, time, features].

    Example:
        ```python
        y = zoo.rnn.GRU(64, return_sequences=True)(np.zeros((8, 20, 3), "float32"))  # (8, 20, 64)
        ```
    """

    cell_class = GRUCell
    cell_name = "gru_cell"
    _cudnn_limit = "it computes only reset_after=True"

    def __init__(self, units, use_cudnn="auto", **kwargs):
        super().__init__(units, **kwargs)
        self.use_cudnn = self._use_cudnn(use_cudnn, kernel_computes_cell=self.cell.reset_after)

    def get_config(self):
        return {**super().get_config(), "use_cudnn": self.use_cudnn}
