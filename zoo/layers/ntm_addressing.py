"""Neural Turing Machine addressing and memory access (Graves, Wayne & Danihelka 2014, §3.1-§3.3, eqs. 2-9).

Pure functions of `keras.ops`, batched over heads: every head of a cell is addressed in one call. Shapes use
B for the batch, H for the heads, N for the memory locations, M for the width of a location and 2R+1 for the shift
offsets -R..R. Every function runs under XLA (static shapes; the shift is 2R+1 static rolls) and stays finite on a
zero memory and on weightings with exact zeros: the epsilons below sit where peers found NaNs (a zero norm in the
cosine, 0^γ in the sharpening).
"""

from keras import ops

COSINE_EPSILON = 1e-8
SHARPEN_EPSILON = 1e-8


def cosine_similarity(key, memory, epsilon=COSINE_EPSILON):
    """K(k, M_i) = k · M_i / sqrt(‖k‖² ‖M_i‖² + ε) (eq. 6 with ε under the root).

    With ε under the root the similarity is 0 (not NaN) for a zero key or a zero location, and so is its gradient's
    denominator: a memory that starts at zero, or at the small constant of Collier & Beel, stays finite.

    Args:
        key: [B, H, M], k per head.
        memory: [B, N, M], M_{t-1}.
        epsilon: float > 0.

    Returns:
        [B, H, N], K(k_h, M_i).
    """
    dot = ops.einsum("bhm,bnm->bhn", key, memory)
    key_norm2 = ops.sum(ops.square(key), axis=-1)[:, :, None]  # [B, H, 1]
    memory_norm2 = ops.sum(ops.square(memory), axis=-1)[:, None, :]  # [B, 1, N]
    return dot / ops.sqrt(key_norm2 * memory_norm2 + epsilon)


def content_addressing(key, strength, memory, epsilon=COSINE_EPSILON):
    """w^c_i = softmax_i(β K(k, M_i)) (eq. 5).

    Args:
        key: [B, H, M], k.
        strength: [B, H, 1], β >= 0 (the cell uses softplus).
        memory: [B, N, M], M_{t-1}.
        epsilon: the cosine's ε.

    Returns:
        [B, H, N], the content weighting w^c.
    """
    return ops.softmax(strength * cosine_similarity(key, memory, epsilon), axis=-1)


def interpolate(content_weighting, previous_weighting, gate):
    """w^g = g w^c + (1 - g) w_{t-1} (eq. 7).

    Args:
        content_weighting: [B, H, N], w^c.
        previous_weighting: [B, H, N], w_{t-1}.
        gate: [B, H, 1], g in [0, 1] (the cell uses a sigmoid).

    Returns:
        [B, H, N], w^g.
    """
    return gate * content_weighting + (1.0 - gate) * previous_weighting


def circular_shift(weighting, shift):
    """w~_i = Σ_{j=0}^{N-1} w^g_j s_{(i - j) mod N} (eq. 8), with s nonzero only on the offsets -R..R.

    Written as Σ_{k=-R}^{R} s_k roll(w^g, k)_i = Σ_k s_k w^g_{(i-k) mod N}: 2R+1 static rolls, no N x N matrix. A
    shift range with 2R+1 > N wraps around (offsets k and k ± N land on the same location), as the circular
    convolution does.

    Args:
        weighting: [B, H, N], w^g.
        shift: [B, H, 2R+1], s over the offsets -R..R, in that order (the cell uses a softmax).

    Returns:
        [B, H, N], w~.
    """
    offsets = shift.shape[-1]
    if offsets is None or offsets % 2 != 1:
        raise ValueError(f"shift must have a static, odd last dimension 2R+1, got shape {tuple(shift.shape)}")
    radius = offsets // 2
    shifted = 0.0
    for index in range(offsets):
        shifted = shifted + shift[:, :, index : index + 1] * ops.roll(weighting, index - radius, axis=-1)
    return shifted


def sharpen(weighting, sharpening, epsilon=SHARPEN_EPSILON):
    """w_i = (w~_i + ε)^γ / Σ_j (w~_j + ε)^γ (eq. 9 with ε inside the power).

    ε keeps the power's gradient with respect to γ (which has log w~) finite where w~ is exactly 0. The powers are
    taken after dividing by max_j (w~_j + ε), which leaves the quotient unchanged and keeps the largest term at 1, so
    a large γ cannot underflow the denominator to 0.

    Args:
        weighting: [B, H, N], w~ >= 0.
        sharpening: [B, H, 1], γ >= 1 (the cell uses 1 + softplus).
        epsilon: float > 0.

    Returns:
        [B, H, N], the final weighting w_t.
    """
    shifted = weighting + epsilon
    scaled = shifted / ops.max(shifted, axis=-1, keepdims=True)
    powered = ops.power(scaled, sharpening)
    return powered / ops.sum(powered, axis=-1, keepdims=True)


def address(key, strength, gate, shift, sharpening, previous_weighting, memory):
    """The whole pipeline of §3.3: content, interpolation, shift, sharpening (eqs. 5-9).

    Args:
        key [B, H, M], strength [B, H, 1], gate [B, H, 1], shift [B, H, 2R+1], sharpening [B, H, 1]: the activated
            head parameters k, β, g, s, γ.
        previous_weighting: [B, H, N], w_{t-1}.
        memory: [B, N, M], M_{t-1}.

    Returns:
        [B, H, N], w_t.
    """
    content = content_addressing(key, strength, memory)
    gated = interpolate(content, previous_weighting, gate)
    return sharpen(circular_shift(gated, shift), sharpening)


def read(memory, weighting):
    """r = Σ_i w_i M_i = w^T M (eq. 2), per head.

    Args:
        memory: [B, N, M].
        weighting: [B, H, N].

    Returns:
        [B, H, M], the read vectors.
    """
    return ops.einsum("bhn,bnm->bhm", weighting, memory)


def write(memory, weighting, erase, add):
    """Erase then add (eqs. 3-4), every write head at once:

        M~_t = M_{t-1} ∘ Π_h (1 - w_h e_h^T)          (erasures commute, so their order does not matter)
        M_t  = M~_t + Σ_h w_h a_h^T                   (and so do the additions)

    With one head this is M_t = M_{t-1} ∘ (1 - w e^T) + w a^T.

    Args:
        memory: [B, N, M], M_{t-1}.
        weighting: [B, H, N], the write weightings w_h.
        erase: [B, H, M], e_h in [0, 1] (the cell uses a sigmoid).
        add: [B, H, M], a_h.

    Returns:
        [B, N, M], M_t.
    """
    keep = ops.prod(1.0 - weighting[:, :, :, None] * erase[:, :, None, :], axis=1)  # [B, N, M]
    return memory * keep + ops.einsum("bhn,bhm->bnm", weighting, add)
