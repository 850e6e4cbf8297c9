"""Presets of AcousticModel: plain data; the caller passes the output size that comes from the data (num_tags: the
labels plus CTC's blank, or the frame tags)."""

# SpecAugment's masks for utterances of one to three seconds (100 to 300 frames of 80 channels): the paper's
# LibriSpeech "basic" frequency masks, narrower time masks (its smaller policies lower T for short utterances).
_SPEC_AUGMENT = {"freq_masks": 2, "freq_mask_width": 15, "time_masks": 2, "time_mask_width": 10,
                 "time_mask_ratio": 0.05}

ACOUSTIC_MODEL_PRESETS = {
    # Trained with CTC (Graves et al. 2006): reads the whole utterance both ways, 30 ms per output frame.
    "ctc_acoustic_model": {"cell": "lstm", "units": 160, "num_layers": 2, "bidirectional": True, "stack": 3,
                           "dropout": 0.1, "spec_augment": _SPEC_AUGMENT},
    # The lecture's form: left to right, one tag per frame, the previous frame's tag fed back.
    "feedback_acoustic_model": {"cell": "lstm", "units": 224, "num_layers": 2, "stack": 3, "dropout": 0.1,
                                "feedback": True, "tag_embedding_dim": 16, "spec_augment": _SPEC_AUGMENT},
    # The same without the feedback: what feeding back the output adds.
    "plain_acoustic_model": {"cell": "lstm", "units": 224, "num_layers": 2, "stack": 3, "dropout": 0.1,
                             "spec_augment": _SPEC_AUGMENT},
}
