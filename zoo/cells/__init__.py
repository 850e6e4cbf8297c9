"""The lecture's recurrences as Keras 3 cells: one step each, usable in `keras.layers.RNN`, `Bidirectional`, stacked."""

from zoo.cells.elman_cell import ElmanCell
from zoo.cells.gru_cell import GRUCell
from zoo.cells.jordan_cell import JordanCell
from zoo.cells.leaky_cell import LeakyCell
from zoo.cells.lstm_cell import LSTMCell
from zoo.cells.ntm_cell import NTMCell
from zoo.cells.recurrent_cell import RecurrentCell

__all__ = ["ElmanCell", "GRUCell", "JordanCell", "LeakyCell", "LSTMCell", "NTMCell", "RecurrentCell"]
