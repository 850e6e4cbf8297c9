"""AcousticModel: raw audio to per-frame logits (log-mel front end, SpecAugment, frame stacking, a labeller)."""
