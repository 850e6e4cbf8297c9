"""What the language models' decoding states share: a window of the most recent tokens."""

from keras import ops


def slide_window(window, tokens):
    """Drops the oldest token of each window and appends the newest.

    Args:
        window: [batch, n] int, oldest token first.      tokens: [batch] int.

    Returns:
        [batch, n] int.
    """
    return ops.concatenate([window[:, 1:], ops.expand_dims(ops.cast(tokens, window.dtype), 1)], axis=1)
