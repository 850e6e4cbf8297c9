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


def checked_window(state, size, before_start, batch_size=None):
    """The window of a `(window,)` state passed to a language model's call as `initial_state`, checked.

    Args:
        state: what the caller passed: the layout of the model's `initial_state(batch_size)`.
        size: n, the window's length.
        before_start: what marks positions before the start of the text, for the error message (e.g. "pad_id=0").
        batch_size: the batch size of the call's tokens, where it is known when tracing (None where it is not).

    Returns:
        [batch, n] int32.

    Raises:
        ValueError: naming the expected layout, when `state` is not a tuple of one [batch, n] tensor.
    """
    layout = (
        f"(window,): one int32 tensor [batch, {size}], the last {size} tokens read, oldest first, {before_start} "
        f"before the start, as `initial_state(batch_size)` gives it"
    )
    if not isinstance(state, (tuple, list)):
        shape = getattr(state, "shape", None)
        got = f"a {type(state).__name__}" + ("" if shape is None else f" of shape {tuple(shape)}")
        raise ValueError(f"initial_state must be a tuple {layout}; got {got}")
    if len(state) != 1:
        raise ValueError(f"initial_state must hold 1 tensor, {layout}; got {len(state)}")
    shape = tuple(state[0].shape)
    if len(shape) != 2 or (shape[1] is not None and shape[1] != size):
        raise ValueError(f"initial_state[0] must be [batch, {size}] ({layout}); got shape {shape}")
    if batch_size is not None and shape[0] is not None and shape[0] != batch_size:
        raise ValueError(
            f"initial_state[0] must have the tokens' batch size, {batch_size}, as its first dimension; "
            f"got shape {shape}"
        )
    return ops.cast(state[0], "int32")


def last_window(sequence, size, mask=None):
    """The window of the last n tokens up to each row's last real token.

    Args:
        sequence: [batch, n + T] int: the window before a call's tokens, then its tokens.
        size: n, a Python int.
        mask: None, or bool [batch, T]: False at the padded positions, which only follow each row's real tokens.

    Returns:
        [batch, n] int: sequence[:, L : L + n], L each row's number of real tokens (T without a mask), so a row
        without real tokens keeps the window it came with.
    """
    if mask is None:
        return sequence[:, -size:]
    real = ops.sum(ops.cast(mask, "int32"), axis=1, keepdims=True)  # [batch, 1]
    return ops.take_along_axis(sequence, real + ops.arange(size, dtype="int32")[None, :], axis=1)
