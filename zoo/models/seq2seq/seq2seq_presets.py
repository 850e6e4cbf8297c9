"""Presets of Seq2Seq: plain architecture values, sized for the `dates` translation task (a few dozen characters in,
ten out); the task supplies `source_vocab_size` and `target_vocab_size` when it builds the model.

The three differ only in the attention, so that comparing them measures the attention alone: `seq2seq_plain` is the
lecture's fixed-vector encoder–decoder (the decoder sees the source only through the bridged final state).
"""

_COMMON = {
    "cell": "lstm", "units": 64, "encoder_layers": 1, "bidirectional": True, "embedding_dim": 32, "bridge": "dense",
    "dropout": 0.0,
}

SEQ2SEQ_PRESETS = {
    # Bahdanau et al. (2015): additive scores over a bidirectional encoder.
    "seq2seq_bahdanau": {**_COMMON, "attention": "bahdanau", "attention_options": {"units": 64},
                         "attention_layer_size": 64},
    # Luong et al. (2015): "general" scores, attentional vector a_t, input feeding.
    "seq2seq_luong": {**_COMMON, "attention": "luong", "attention_options": {"score": "general"},
                      "attention_layer_size": 64},
    # Sutskever et al. (2014), Cho et al. (2014): no attention.
    "seq2seq_plain": {**_COMMON, "attention": "none"},
}
