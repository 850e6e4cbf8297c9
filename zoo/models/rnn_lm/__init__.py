from zoo.models.rnn_lm.rnn_lm import RNNLM
