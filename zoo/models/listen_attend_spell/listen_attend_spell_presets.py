"""Presets of ListenAttendSpell: plain data; the caller passes target_vocab_size (the characters and the specials)."""

LISTEN_ATTEND_SPELL_PRESETS = {
    # Chan et al. (2016), scaled to short utterances: frames stacked four by four (40 ms per encoder step, where LAS's
    # pyramid reaches 80 ms), two bidirectional LSTM layers of 128, Bahdanau attention, SpecAugment.
    "las_acoustic_model": {"cell": "lstm", "units": 128, "encoder_layers": 2, "stack": 4, "attention": "bahdanau",
                           "attention_options": {"units": 128}, "attention_layer_size": 128, "embedding_dim": 64,
                           "dropout": 0.1,
                           "spec_augment": {"freq_masks": 2, "freq_mask_width": 15, "time_masks": 2,
                                            "time_mask_width": 10, "time_mask_ratio": 0.05}},
}
