"""Sequence layers: each zoo cell run over time, with the usual Keras RNN arguments."""

from zoo.rnn.elman_rnn import ElmanRNN
from zoo.rnn.gru import GRU
from zoo.rnn.jordan_rnn import JordanRNN
from zoo.rnn.leaky_rnn import LeakyRNN
from zoo.rnn.lstm import LSTM
from zoo.rnn.recurrent import Recurrent

__all__ = ["ElmanRNN", "GRU", "JordanRNN", "LeakyRNN", "LSTM", "Recurrent"]
