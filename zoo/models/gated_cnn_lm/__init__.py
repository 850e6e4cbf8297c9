from zoo.models.gated_cnn_lm.gated_cnn_lm import GatedCNNLM
