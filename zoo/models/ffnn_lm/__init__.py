from zoo.models.ffnn_lm.ffnn_lm import FeedForwardLM
