"""The attention equations as pure functions: scores, the masked normalisation, the context vector.

Notation (Bahdanau et al. 2015; Luong et al. 2015): a decoder query h_t [batch, query_dim], the encoder's hidden states
h̄_s stacked as the memory [batch, source_time, memory_dim], keys k_s = f(h̄_s) computed from the memory once per
sequence, scores e_ts, alignment α_ts = softmax_s(e_ts) over the valid source positions, context c_t = Σ_s α_ts h̄_s.

Every function reads one decoder step (a query [batch, query_dim]) or every step at once (queries [batch, T,
query_dim], when they do not depend on earlier contexts: attention without input feeding); the results then get a
time axis after the batch (scores and alignments [batch, T, S], contexts [batch, T, memory_dim]). The single-step
computation is the same in both cases.
"""

import keras
import numpy as np
from keras import ops


def sequence_mask(lengths, max_length):
    """The boolean mask of the first `lengths[b]` positions of each row.

    Args:
        lengths: [batch] ints, the source lengths.
        max_length: int or scalar tensor, the padded source length S.

    Returns:
        [batch, S] bool, `mask[b, s] = s < lengths[b]`.
    """
    positions = ops.arange(max_length, dtype="int32")
    return ops.less(ops.expand_dims(positions, 0), ops.expand_dims(ops.cast(lengths, "int32"), 1))


def masked_softmax(scores, mask=None):
    """α_ts = exp(e_ts) / Σ_{s' valid} exp(e_ts') over the valid positions; 0 at every masked position.

    A row with no valid position gets all zeros (never NaN): masked scores are replaced by the dtype's lowest value
    before the softmax (a finite constant, so the softmax of such a row is uniform) and the result is multiplied by
    the mask.

    Args:
        scores: [batch, S], the scores e_t, or [batch, T, S] for T steps.
        mask: [batch, S] bool (or 0/1 floats), `True` where the source position is valid; `None` means all valid.

    Returns:
        the alignment α_t, shaped like `scores`.
    """
    if mask is None:
        return ops.softmax(scores, axis=-1)
    valid = ops.cast(mask, "bool")
    if len(scores.shape) == 3:
        valid = ops.expand_dims(valid, 1)  # the same source positions at every step
    lowest = float(np.finfo(keras.backend.standardize_dtype(scores.dtype)).min)
    alignment = ops.softmax(ops.where(valid, scores, ops.full_like(scores, lowest)), axis=-1)
    return alignment * ops.cast(valid, alignment.dtype)


def context_vector(alignment, memory):
    """c_t = Σ_s α_ts h̄_s.

    Args:
        alignment: [batch, S], or [batch, T, S] for T steps.
        memory: [batch, S, memory_dim].

    Returns:
        [batch, memory_dim], or [batch, T, memory_dim].
    """
    if len(alignment.shape) == 3:
        return ops.matmul(alignment, memory)
    return ops.squeeze(ops.matmul(ops.expand_dims(alignment, 1), memory), 1)


def additive_score(processed_query, keys, v, bias=None):
    """e_ts = vᵀ tanh(W_q h_t + W_k h̄_s (+ b)), from the projected query and the pre-computed keys.

    Args:
        processed_query: [batch, units], W_q h_t, or [batch, T, units] for T steps.
        keys: [batch, S, units], W_k h̄_s.
        v: [units], the score vector (already weight-normalised if so configured).
        bias: optional [units], the bias b inside the tanh.

    Returns:
        [batch, S], the scores, or [batch, T, S].
    """
    if len(processed_query.shape) == 3:
        hidden = ops.expand_dims(keys, 1) + ops.expand_dims(processed_query, 2)  # [batch, T, S, units]
    else:
        hidden = keys + ops.expand_dims(processed_query, 1)
    if bias is not None:
        hidden = hidden + bias
    return ops.sum(v * ops.tanh(hidden), axis=-1)


def weight_normalized(v, g):
    """Weight normalisation (Salimans & Kingma 2016): g · v / ‖v‖.

    Args:
        v: [units], the direction.        g: scalar, the length.

    Returns:
        [units].
    """
    return g * v * ops.rsqrt(ops.sum(ops.square(v)))


def multiplicative_score(query, keys):
    """e_ts = h_tᵀ k_s: the "dot" score (keys = h̄_s) and the "general" score (keys = W_a h̄_s, pre-computed).

    Args:
        query: [batch, query_dim], or [batch, T, query_dim] for T steps.
        keys: [batch, S, query_dim].

    Returns:
        [batch, S], the scores, or [batch, T, S].
    """
    if len(query.shape) == 3:
        return ops.matmul(query, ops.transpose(keys, (0, 2, 1)))
    return ops.squeeze(ops.matmul(keys, ops.expand_dims(query, -1)), -1)
