"""Data: deterministic generators split without overlap, and the tf.data pipelines that batch them."""
