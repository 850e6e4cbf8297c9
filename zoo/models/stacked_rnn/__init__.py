from zoo.models.stacked_rnn.stacked_rnn import StackedRNN
