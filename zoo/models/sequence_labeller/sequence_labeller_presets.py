"""Presets of SequenceLabeller: plain data; the caller passes the sizes that come from the data (vocab_size,
num_tags)."""

SEQUENCE_LABELLER_PRESETS = {
    # Reads the whole sentence both ways before tagging each step.
    "labeller": {"cell": "lstm", "units": 64, "embedding_dim": 64, "bidirectional": True},
    # Left to right, each step also sees the tag chosen at the step before (teacher-forced in training).
    "feedback_labeller": {
        "cell": "lstm",
        "units": 64,
        "embedding_dim": 64,
        "feedback": True,
        "tag_embedding_dim": 16,
    },
}
