"""seqzoo's training side: data, tasks and the training loop (no model definitions)."""
