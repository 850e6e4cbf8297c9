"""Decoding the outputs of acoustic models into label sequences: CTC's best path and beam search (A. Graves et al.
2006), and the collapse of per-frame word tags (begin / inside / silence) into words.

Labels are ints; padding in the results is -1. Everything is `keras.ops`, so it traces into a TF graph (the speech
export) and runs under JAX.
"""

from keras import ops


def ctc_greedy_decode(logits, lengths, blank=0):
    """CTC's best path: the argmax label of every frame, repeats merged, blanks removed.

    Args:
        logits: float [batch, frames, labels] (unnormalized: a softmax does not change the argmax).
        lengths: int [batch], each row's real frames.
        blank: int, the blank's index.

    Returns:
        (labels int32 [batch, frames] padded with -1, lengths int32 [batch]).
    """
    decoded, _ = ops.ctc_decode(logits, ops.cast(lengths, "int32"), strategy="greedy", mask_index=blank)
    return _with_lengths(decoded[0])


def ctc_beam_search_decode(logits, lengths, beam_width=16, blank=0):
    """CTC prefix beam search: the most probable label sequence among `beam_width` kept prefixes (summing the
    probability of every alignment of a prefix, which the best path does not).

    Returns:
        (labels int32 [batch, frames] padded with -1, lengths int32 [batch], log probability float32 [batch]).
    """
    decoded, scores = ops.ctc_decode(ops.log_softmax(ops.cast(logits, "float32"), axis=-1),
                                     ops.cast(lengths, "int32"), strategy="beam_search", beam_width=beam_width,
                                     top_paths=1, mask_index=blank)
    labels, label_lengths = _with_lengths(decoded[0])
    return labels, label_lengths, ops.cast(scores[:, 0], "float32")


def _with_lengths(labels):
    labels = ops.cast(labels, "int32")
    return labels, ops.sum(ops.cast(labels >= 0, "int32"), axis=1)


def collapse_word_tags(tags, lengths):
    """Words from per-frame tags: tag 0 is silence, 1 + 2 w begins word w, 2 + 2 w continues it. A word is read at
    every frame that begins one, and at a frame that continues a word the frame before was not in (so a missed
    begin still yields the word, and two words in a row need a begin between them).

    Args:
        tags: int [batch, frames].
        lengths: int [batch], each row's real frames.

    Returns:
        (words int32 [batch, frames] padded with -1, lengths int32 [batch]).
    """
    tags = ops.cast(tags, "int32")
    frames = ops.shape(tags)[1]
    real = ops.arange(frames)[None, :] < ops.cast(lengths, "int32")[:, None]
    word = ops.where(tags > 0, (tags - 1) // 2, -1)
    previous = ops.concatenate([ops.full((ops.shape(tags)[0], 1), -1, "int32"), word[:, :-1]], axis=1)
    begins = (tags > 0) & ((tags % 2) == 1)
    starts = real & (word >= 0) & (begins | (word != previous))
    # Move each row's word starts to its front, in order: a stable sort of the frames by "not a start".
    order = ops.argsort(ops.cast(ops.logical_not(starts), "int32") * frames + ops.arange(frames)[None, :], axis=1)
    ordered_words = ops.take_along_axis(word, order, axis=1)
    counts = ops.sum(ops.cast(starts, "int32"), axis=1)
    kept = ops.arange(frames)[None, :] < counts[:, None]
    return ops.where(kept, ordered_words, -1), counts
