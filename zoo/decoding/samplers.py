"""Samplers: how a decoder picks the next token from a step's logits. Greedy choice, temperature, banned tokens,
top-k filtering (Fan, Lewis & Dauphin 2018), top-p or nucleus filtering (Holtzman et al. 2020) and a seeded
categorical draw.

Every function is pure: no variables and no hidden random state. Each works on [batch, vocab] logits eagerly, under
`tf.function` with an unknown batch size, and under XLA. A filter does not drop a token. It sets the token's logit
to `FILTERED_LOGIT`, which `softmax` turns into a probability of exactly 0.

Why the draw does not use `keras.random`: under the TensorFlow backend, Keras 3.15's `keras.random.*` accepts a seed
only as a Python int or a `keras.random.SeedGenerator`. A tensor seed raises a `ValueError`. Inside a while loop, an
int seed gives the same numbers at every step. A `SeedGenerator` holds a variable and updates it on every draw, so
decoding becomes stateful, and the concurrent calls of an exported signature share that variable. So `sample` makes
its own random numbers. It draws Gumbel noise from a counter-based hash of (seed, row, token): the murmur3 32-bit
finaliser, a bijection with full avalanche, applied twice. This needs only integer `keras.ops`, accepts a tensor seed
and gives the same bits eagerly, in a graph, under XLA and in a SavedModel. It is fine for sampling, but it is not a
cryptographic generator.
"""

import numbers

import numpy as np
from keras import ops

from zoo import arguments

FILTERED_LOGIT = -1e9  # the logit of a filtered-out token: softmax gives it probability 0 (-inf in float16)

_MIX_MULTIPLIERS = (0x85EBCA6B, 0xC2B2AE35)  # murmur3's 32-bit finaliser
_GOLDEN = 0x9E3779B9  # 2^32 / golden ratio, odd: spreads consecutive counters over the 32-bit ring
_SEED_SALT = 0x5EED5EED


def greedy(logits):
    """The most likely token of each row: the argmax of `logits`. A tie goes to the lowest token id, on every device.

    Args:
        logits: [batch, vocab] float.

    Returns:
        int32 [batch].
    """
    vocab = ops.shape(logits)[-1]
    best = ops.max(logits, axis=-1, keepdims=True)
    ids = ops.arange(vocab, dtype="int32")
    return ops.min(ops.where(ops.equal(logits, best), ids, vocab), axis=-1)


def apply_temperature(logits, temperature):
    """Divides the logits by the temperature T. T < 1 sharpens softmax(logits / T) and T > 1 flattens it.

    Args:
        logits: [batch, vocab] float.
        temperature: a float > 0, or a float tensor of shape [], [batch] or [batch, 1].

    Returns:
        [batch, vocab], logits / T.
    """
    if not ops.is_tensor(temperature):
        temperature = positive_float("temperature", temperature)
    elif len(temperature.shape) == 1:
        temperature = ops.reshape(temperature, (-1, 1))
    return logits / ops.cast(temperature, logits.dtype)


def ban_tokens(logits, token_ids):
    """Sets the logits of the tokens in `token_ids` to `FILTERED_LOGIT` in every row, so no decoder chooses them.

    This is how a decoder keeps tokens that are not words out of what it writes: the padding and the beginning of
    sentence always, the unknown token unless the caller allows it. After it, `greedy` picks the best token that is
    not banned, `sample` never draws a banned token, and `top_k_filter` and `top_p_filter` rank the banned tokens
    last with probability 0. Apply it after `apply_temperature` (a very large temperature would otherwise lift
    `FILTERED_LOGIT` back among the real logits) and before the other filters. Beam search applies it to the step's
    scores before ranking the expansions.

    Args:
        logits: [..., vocab] float.
        token_ids: a list or tuple of ints in [0, vocab) (a Python value, fixed when the decoder is traced). Empty:
            the logits are returned unchanged. It may not hold every token of the vocabulary.

    Returns:
        [..., vocab], the other logits unchanged.

    Example:
        ```python
        logits = samplers.ban_tokens(logits, [pad_id, bos_id, unk_id])
        ```
    """
    token_ids = checked_token_ids("token_ids", token_ids)
    if not token_ids:
        return logits
    vocab = logits.shape[-1]
    if vocab is not None:
        outside = [i for i in token_ids if i >= vocab]
        if outside:
            raise ValueError(f"token_ids must be ids in [0, vocab={vocab}), got {outside[0]}")
        if len(token_ids) >= vocab:
            raise ValueError(f"token_ids would ban every token of the vocabulary ({vocab}); at least one must stay")
    ids = ops.arange(ops.shape(logits)[-1], dtype="int32")
    banned = ops.any(ops.equal(ids[:, None], ops.convert_to_tensor(np.asarray(token_ids, "int32"))[None, :]), axis=-1)
    return ops.where(banned, ops.cast(FILTERED_LOGIT, logits.dtype), logits)


def top_k_filter(logits, k):
    """Keeps the k largest logits of each row and sets the others to `FILTERED_LOGIT`.

    Exactly min(k, vocab) tokens stay. When tokens tie at the k-th largest value, the lower token ids stay, the same
    choice as `ops.top_k`.

    Args:
        logits: [batch, vocab] float.
        k: a positive int, or an int tensor of shape [] or [batch]. A tensor k <= 0 keeps every token, so 0 can mean
            "off" in an exported signature. Any k >= vocab also keeps every token.

    Returns:
        [batch, vocab], the kept logits unchanged.
    """
    vocab = logits.shape[-1]
    if not ops.is_tensor(k):
        k = arguments.positive_int("k", k)
        if vocab is not None:
            if k >= vocab:
                return logits
            kth = ops.top_k(logits, k, sorted=True)[0][:, -1:]
            return _keep_largest(logits, kth, k)
    descending = _sort_descending(logits)
    n = _count_per_row(k, logits)
    n = ops.where(ops.logical_or(n <= 0, n > ops.shape(logits)[-1]), ops.shape(logits)[-1], n)
    kth = ops.take_along_axis(descending, n - 1, axis=-1)
    return _keep_largest(logits, kth, n)


def top_p_filter(logits, p):
    """Nucleus filtering: keeps the smallest set of most likely tokens whose probability mass is >= p.

    Sort the tokens by probability, highest first. A token stays when the mass of the tokens before it is < p. So the
    top token always stays, even for a tiny p, and p = 1 keeps every token. Ties are broken as in `top_k_filter`, so
    exactly the size of the nucleus stays. The others are set to `FILTERED_LOGIT`.

    Args:
        logits: [batch, vocab] float. The probabilities are softmax(logits), so apply the temperature first.
        p: a float in (0, 1], or a float tensor of shape [] or [batch]. A tensor p >= 1 keeps every token.

    Returns:
        [batch, vocab], the kept logits unchanged.
    """
    if not ops.is_tensor(p):
        p = probability_mass("p", p)
        if p == 1.0:
            return logits
    descending = _sort_descending(logits)
    probabilities = ops.softmax(ops.cast(descending, "float32"), axis=-1)
    mass = ops.cumsum(probabilities, axis=-1)
    mass_before = ops.concatenate([ops.zeros_like(mass[:, :1]), mass[:, :-1]], axis=-1)
    p = ops.cast(_broadcast_rows(p, logits), "float32")
    n = ops.sum(ops.cast(mass_before < p, "int32"), axis=-1, keepdims=True)
    n = ops.where(p >= 1.0, ops.shape(logits)[-1], n)
    kth = ops.take_along_axis(descending, n - 1, axis=-1)
    return _keep_largest(logits, kth, n)


def sample(logits, seed):
    """Draws one token per row from softmax(logits). The same logits and seed always give the same tokens.

    The draw uses the Gumbel-max trick: argmax(logits + g) with g = -log(-log(u)) is distributed as softmax(logits).
    `uniform` gives u, one value for each (row, token). A filtered logit (`FILTERED_LOGIT`) is never drawn.

    Args:
        logits: [batch, vocab] float, unnormalised log-probabilities.
        seed: a Python int, or an int tensor of shape [] or [2] (e.g. (user seed, decoding step), so that each step
            of a loop draws fresh numbers), taken modulo 2^32; or an int tensor [batch, 2], one (seed, step) per row.

    Returns:
        int32 [batch].
    """
    u = uniform(seed, ops.shape(logits))
    gumbel = -ops.log(-ops.log(u))
    return greedy(ops.cast(logits, "float32") + gumbel)


def uniform(seed, shape):
    """Counter-based uniform numbers in (0, 1): element (i, j) is a hash of (seed, i * columns + j), or, with one
    seed per row, of (seed_i, j).

    Args:
        seed: a Python int, or an int tensor of shape [] or [2], taken modulo 2^32; or an int tensor [rows, 2], one
            seed per row, so that a row's numbers do not depend on the other rows or on its position in the batch.
        shape: (rows, columns), ints or int32 scalar tensors.

    Returns:
        float32 [rows, columns]. The values are (m + 1/2) / 2^23 for 23 random bits m, so neither 0 nor 1 occurs.
        The counter is 32 bits, so a draw of more than 2^32 numbers repeats itself.
    """
    rows, columns = shape
    column_ids = ops.cast(ops.arange(columns, dtype="int32"), "uint32")[None, :]
    if ops.is_tensor(seed) and len(seed.shape) == 2:
        key = _row_keys(seed)[:, None]
        counter = column_ids
    else:
        key = _key(seed)
        row_ids = ops.cast(ops.arange(rows, dtype="int32"), "uint32")[:, None]
        counter = row_ids * ops.cast(columns, "uint32") + column_ids
    bits = _mix(ops.bitwise_xor(_mix(key + counter * _uint32(_GOLDEN)), key))
    mantissa = ops.cast(ops.right_shift(bits, _uint32(9)), "float32")
    return (mantissa + 0.5) * (2.0**-23)


def inverse_cdf_sample(logits, u):
    """Draws one token per row from softmax(logits) with one given uniform number per row, by inverting the
    cumulative distribution: the token is the first v whose cumulative probability P(0) + ... + P(v) exceeds u.

    Unlike `sample`, the randomness comes in as `u`, so a loop can take numbers drawn before it (scheduled sampling
    draws every step's numbers up front: `zoo.models.Seq2Seq`). A u at or above the last cumulative probability (it
    may fall just below 1 in float32) gives the last token.

    Args:
        logits: [batch, vocab] float, unnormalised log-probabilities.
        u: [batch] float in [0, 1).

    Returns:
        int32 [batch].
    """
    cumulative = ops.cumsum(ops.softmax(ops.cast(logits, "float32"), axis=-1), axis=-1)
    below = ops.sum(ops.cast(cumulative <= ops.cast(u, "float32")[:, None], "int32"), axis=-1)
    return ops.minimum(below, ops.shape(logits)[-1] - 1)


def positive_float(name, value):
    """Returns `value` as a float if it is a real number > 0 (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"{name} must be a float > 0, got {value!r}")
    return float(value)


def probability_mass(name, value):
    """Returns `value` as a float if it is a real number in (0, 1] (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 < value <= 1.0:
        raise ValueError(f"{name} must be in (0, 1], got {value!r}")
    return float(value)


def checked_token_ids(name, value):
    """Returns `value`, a list or tuple of non-negative ints (bools are rejected), as a sorted tuple of distinct ids."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{name} must be a list or tuple of token ids (non-negative ints), got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, numbers.Integral) or item < 0:
            raise ValueError(f"{name} must hold non-negative int token ids, got {item!r} in {value!r}")
    return tuple(sorted({int(item) for item in value}))


def _sort_descending(logits):
    return -ops.sort(-logits, axis=-1)


def _broadcast_rows(value, logits):
    """A scalar or [batch] value as [batch, 1]."""
    value = ops.reshape(value, (-1, 1))
    return ops.broadcast_to(value, (ops.shape(logits)[0], 1))


def _count_per_row(k, logits):
    return _broadcast_rows(ops.cast(k, "int32"), logits)


def _keep_largest(logits, kth, n):
    """Keeps, in each row, the n logits largest under the order (value descending, token id ascending).

    Args:
        logits: [batch, vocab].   kth: [batch, 1], the n-th largest value.   n: int or int32 [batch, 1], >= 1.
    """
    above = logits > kth
    tied = ops.equal(logits, kth)
    room = n - ops.sum(ops.cast(above, "int32"), axis=-1, keepdims=True)
    keep = ops.logical_or(above, ops.logical_and(tied, ops.cumsum(ops.cast(tied, "int32"), axis=-1) <= room))
    return ops.where(keep, logits, ops.cast(FILTERED_LOGIT, logits.dtype))


def _uint32(value):
    return ops.convert_to_tensor(np.uint32(value))


def _mix(x):
    """murmur3's 32-bit finaliser: a bijection of uint32 in which every input bit flips each output bit with
    probability about 1/2."""
    x = ops.bitwise_xor(x, ops.right_shift(x, _uint32(16)))
    x = x * _uint32(_MIX_MULTIPLIERS[0])
    x = ops.bitwise_xor(x, ops.right_shift(x, _uint32(13)))
    x = x * _uint32(_MIX_MULTIPLIERS[1])
    return ops.bitwise_xor(x, ops.right_shift(x, _uint32(16)))


def _row_keys(seeds):
    """uint32 [rows] keys from per-row seeds [rows, 2], as `_key` makes one from a seed of shape [2]."""
    words = ops.cast(seeds, "uint32")
    return _mix(ops.bitwise_xor(_mix(ops.bitwise_xor(words[:, 0], _uint32(_SEED_SALT))), words[:, 1]))


def _key(seed):
    """A uint32 scalar key from a seed of shape [] or [2]. Different seeds give different keys (each stage is a
    bijection)."""
    if not ops.is_tensor(seed):
        if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
            raise ValueError(f"seed must be an int or an int tensor, got {seed!r}")
        seed = np.uint32(int(seed) % 2**32)
    words = ops.reshape(ops.cast(ops.convert_to_tensor(seed), "uint32"), (-1,))
    if words.shape[0] not in (1, 2):
        raise ValueError(f"seed must have shape [] or [2], got shape {tuple(words.shape)}")
    key = _mix(ops.bitwise_xor(words[0], _uint32(_SEED_SALT)))
    if words.shape[0] == 2:
        key = _mix(ops.bitwise_xor(key, words[1]))
    return key
