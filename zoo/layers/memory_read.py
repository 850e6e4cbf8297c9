"""MemoryRead: one hop of an End-to-End Memory Network, attention over the memory's sentences (Sukhbaatar, Szlam,
Weston & Fergus 2015, "End-To-End Memory Networks", §2.1)."""

import keras
from keras import ops

from zoo import arguments
from zoo.layers.attention_functions import masked_softmax


def memory_attention(u, keys, mask=None, linear=False, empty_slots=None):
    """p_i = softmax(uᵀ m_i) over the valid slots, or p_i = uᵀ m_i (linear start); 0 at masked slots.

    With `empty_slots`, that many empty memories per example join the softmax with score 0 (an empty memory's
    embedding is zero) and read nothing: p_i = exp(s_i) / (Σ_j valid exp(s_j) + empty_slots). The attention over
    the sentences then sums to less than 1 when no score stands out above 0, so how strongly the best sentence
    matches reaches the output (`o` shrinks), which a yes/no answer needs (see `zoo.models.MemN2N`'s
    `empty_memories`).

    Args:
        u: [batch, d], the controller state (the query's internal state).
        keys: [batch, memory_size, d], the input memory vectors m_i.
        mask: [batch, memory_size] bool, `True` at slots that hold a sentence; `None` means all do.
        linear: a Python bool, or a scalar bool tensor (a runtime switch: the same graph computes both).
        empty_slots: `None` (default: the softmax runs over the valid slots only), or the number of zero-score empty
            memories of each example, [batch] (or a scalar), >= 0.

    Returns:
        p [batch, memory_size].
    """
    scores = ops.einsum("bd,bmd->bm", u, keys)
    valid = ops.ones_like(scores) if mask is None else ops.cast(mask, scores.dtype)
    if empty_slots is None:
        softmax = masked_softmax(scores, mask)
    else:
        # Stable: shift by the largest score, the empty memories' 0 included.
        shift = ops.maximum(ops.max(ops.where(valid > 0, scores, ops.zeros_like(scores)), axis=-1, keepdims=True), 0.0)
        weights = ops.exp(ops.minimum(scores - shift, 0.0)) * valid
        empty = ops.reshape(ops.cast(empty_slots, scores.dtype), (-1, 1)) * ops.exp(-shift)
        # A story with no sentence and no empty memory reads p = 0, not NaN.
        softmax = weights / ops.maximum(ops.sum(weights, axis=-1, keepdims=True) + empty, keras.backend.epsilon())
    if isinstance(linear, bool):
        return scores * valid if linear else softmax
    return ops.where(ops.cast(linear, "bool"), scores * valid, softmax)


def memory_output(p, values):
    """o = Σ_i p_i c_i.

    Args:
        p: [batch, memory_size] the attention.
        values: [batch, memory_size, d] the output memory vectors c_i.

    Returns:
        o [batch, d].
    """
    return ops.einsum("bm,bmd->bd", p, values)


@keras.saving.register_keras_serializable(package="zoo")
class MemoryRead(keras.layers.Layer):
    """Reads a memory of sentences with one attention: p = softmax(uᵀ m_i), o = Σ_i p_i c_i.

    Equations (Sukhbaatar et al. 2015, §2.1; no weights: the memories are embedded by the model):

        p_i = softmax(uᵀ m_i)       over the slots that hold a sentence (0 at empty or padded slots)
        o   = Σ_i p_i c_i

    With linear start (§4.2) the softmax is removed: p_i = uᵀ m_i at valid slots, 0 elsewhere.

    Args:
        linear: whether the softmax is removed (default `False`); a call argument overrides it.

    Call arguments:
        u: [batch, d], the controller state.
        keys: [batch, memory_size, d], the input memories m_i (A-embedded sentences).
        values: [batch, memory_size, d], the output memories c_i (C-embedded sentences).
        slot_mask: [batch, memory_size] bool, `True` at slots that hold a sentence; `None` means all do.
        linear: optional Python bool or scalar bool tensor that replaces the constructor's `linear` for this call
            (the model passes its linear-start switch, a non-trainable variable, so toggling it needs no retrace).
        empty_slots: optional [batch] (or scalar) count of empty memories that join the softmax with score 0 and
            read nothing (`memory_attention`); `None` (default): the softmax covers the valid slots only.

    Returns:
        (o [batch, d], p [batch, memory_size]).

    Masking: a masked slot gets p_i = 0 and never changes o or the other p_j; a story with no valid slot reads o = 0.

    Example:
        ```python
        read = zoo.layers.MemoryRead()
        o, p = read(u, m, c, slot_mask=slot_mask)
        ```

    Reference: S. Sukhbaatar, A. Szlam, J. Weston, R. Fergus, "End-to-end memory networks", NeurIPS 2015.
    """

    def __init__(self, linear=False, **kwargs):
        super().__init__(**kwargs)
        self.linear = arguments.boolean("linear", linear)

    def call(self, u, keys, values, slot_mask=None, linear=None, empty_slots=None):
        p = memory_attention(u, keys, slot_mask, self.linear if linear is None else linear, empty_slots)
        return memory_output(p, values), p

    def compute_output_shape(self, u_shape, keys_shape, values_shape, slot_mask_shape=None, linear_shape=None,
                             empty_slots_shape=None):
        return (u_shape[0], values_shape[-1]), tuple(keys_shape[:2])

    def get_config(self):
        return {**super().get_config(), "linear": self.linear}
