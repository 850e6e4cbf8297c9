"""The NTM addressing functions against NumPy references written from Graves et al. (2014), eqs. 2-9."""

import keras
import numpy as np
import pytest

from tests.helpers import backend
from zoo.layers import ntm_addressing

# Also run under Keras's JAX backend (tests/zoo/jax_backend_test.py); the float64 gradient checks are TensorFlow only.
pytestmark = pytest.mark.jax

B, H, N, M = 2, 3, 7, 4


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# NumPy references: one location and one head at a time, as the paper writes them.


def numpy_cosine(key, memory, epsilon=ntm_addressing.COSINE_EPSILON):
    out = np.zeros((key.shape[0], key.shape[1], memory.shape[1]))
    for b in range(key.shape[0]):
        for h in range(key.shape[1]):
            for i in range(memory.shape[1]):
                k, m_i = key[b, h], memory[b, i]
                out[b, h, i] = k @ m_i / np.sqrt((k @ k) * (m_i @ m_i) + epsilon)
    return out


def numpy_content(key, strength, memory):
    return _softmax(strength * numpy_cosine(key, memory))


def numpy_interpolate(content, previous, gate):
    return gate * content + (1 - gate) * previous


def numpy_shift(weighting, shift):
    """w~_i = Σ_j w_j s_{(i-j) mod N}, s spread over the N locations from its offsets -R..R."""
    n, radius = weighting.shape[-1], shift.shape[-1] // 2
    out = np.zeros_like(weighting)
    for b in range(weighting.shape[0]):
        for h in range(weighting.shape[1]):
            kernel = np.zeros(n)
            for index, offset in enumerate(range(-radius, radius + 1)):
                kernel[offset % n] += shift[b, h, index]
            for i in range(n):
                out[b, h, i] = sum(weighting[b, h, j] * kernel[(i - j) % n] for j in range(n))
    return out


def numpy_sharpen(weighting, sharpening, epsilon=ntm_addressing.SHARPEN_EPSILON):
    powered = (weighting + epsilon) ** sharpening
    return powered / powered.sum(axis=-1, keepdims=True)


def numpy_read(memory, weighting):
    return np.stack([[weighting[b, h] @ memory[b] for h in range(weighting.shape[1])] for b in range(len(memory))])


def numpy_write(memory, weighting, erase, add):
    out = memory.copy()
    for b in range(memory.shape[0]):
        for i in range(memory.shape[1]):
            for h in range(weighting.shape[1]):
                out[b, i] = out[b, i] * (1 - weighting[b, h, i] * erase[b, h])
            for h in range(weighting.shape[1]):
                out[b, i] = out[b, i] + weighting[b, h, i] * add[b, h]
    return out


def _args(seed=0, radius=1, dtype="float32"):
    """Activated head parameters, a previous weighting and a memory, as the cell produces them."""
    rng = np.random.default_rng(seed)
    values = {
        "key": np.tanh(rng.normal(size=(B, H, M))),
        "strength": np.log1p(np.exp(rng.normal(size=(B, H, 1)) * 2)),
        "gate": 1 / (1 + np.exp(-rng.normal(size=(B, H, 1)))),
        "shift": _softmax(rng.normal(size=(B, H, 2 * radius + 1))),
        "sharpening": 1 + np.log1p(np.exp(rng.normal(size=(B, H, 1)))),
        # No weight near 0, so that finite differences stay where the sharpening's powers are smooth.
        "previous_weighting": _softmax(rng.normal(size=(B, H, N)) * 0.5),
        "content_weighting": _softmax(rng.normal(size=(B, H, N))),
        "memory": rng.normal(size=(B, N, M)),
        "erase": 1 / (1 + np.exp(-rng.normal(size=(B, H, M)))),
        "add": np.tanh(rng.normal(size=(B, H, M))),
    }
    return {name: value.astype(dtype) for name, value in values.items()}


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_cosine_similarity():
    a = _args()
    expected = numpy_cosine(a["key"].astype("float64"), a["memory"].astype("float64"))
    np.testing.assert_allclose(_np(ntm_addressing.cosine_similarity(a["key"], a["memory"])), expected, atol=1e-5)
    # Without ε it is the cosine: bounded by 1, and 1 for a key equal to a location.
    a["key"][0, 0] = 3 * a["memory"][0, 2]
    cosine = _np(ntm_addressing.cosine_similarity(a["key"], a["memory"]))
    assert np.all(np.abs(cosine) <= 1 + 1e-6)
    np.testing.assert_allclose(cosine[0, 0, 2], 1.0, atol=1e-5)


def test_content_addressing():
    a = _args()
    expected = numpy_content(*(a[k].astype("float64") for k in ("key", "strength", "memory")))
    actual = _np(ntm_addressing.content_addressing(a["key"], a["strength"], a["memory"]))
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    np.testing.assert_allclose(actual.sum(axis=-1), 1.0, atol=1e-5)


def test_interpolate():
    a = _args()
    content = a["content_weighting"]
    expected = numpy_interpolate(content, a["previous_weighting"], a["gate"])
    np.testing.assert_allclose(
        _np(ntm_addressing.interpolate(content, a["previous_weighting"], a["gate"])), expected, atol=1e-6
    )


@pytest.mark.parametrize("radius", [1, 2, 4], ids=["R1", "R2", "R4_wraps"])  # 2*4+1 = 9 > N = 7 wraps around
def test_circular_shift(radius):
    a = _args(radius=radius)
    expected = numpy_shift(a["previous_weighting"].astype("float64"), a["shift"].astype("float64"))
    actual = _np(ntm_addressing.circular_shift(a["previous_weighting"], a["shift"]))
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    np.testing.assert_allclose(actual.sum(axis=-1), 1.0, atol=1e-5)
    # A one-hot shift to offset +1 moves the focus one location forward, wrapping from N-1 to 0.
    one_hot = np.zeros((1, 1, 2 * radius + 1), "float32")
    one_hot[..., radius + 1] = 1
    focus = np.zeros((1, 1, N), "float32")
    focus[..., N - 1] = 1
    np.testing.assert_array_equal(_np(ntm_addressing.circular_shift(focus, one_hot))[0, 0], np.eye(N)[0])


def test_circular_shift_needs_an_odd_static_offset_count():
    with pytest.raises(ValueError, match=r"shift must have a static, odd last dimension 2R\+1, got shape \(2, 3, 4\)"):
        ntm_addressing.circular_shift(np.zeros((2, 3, N), "float32"), np.zeros((2, 3, 4), "float32"))


def test_sharpen():
    a = _args()
    expected = numpy_sharpen(a["previous_weighting"].astype("float64"), a["sharpening"].astype("float64"))
    actual = _np(ntm_addressing.sharpen(a["previous_weighting"], a["sharpening"]))
    np.testing.assert_allclose(actual, expected, atol=1e-6)
    # γ = 1 leaves a weighting as it was (up to ε); a larger γ concentrates it on its peak.
    w = a["previous_weighting"]
    np.testing.assert_allclose(_np(ntm_addressing.sharpen(w, np.ones((B, H, 1), "float32"))), w, atol=1e-6)
    sharp = _np(ntm_addressing.sharpen(w, np.full((B, H, 1), 50.0, "float32")))
    assert np.all(sharp.max(axis=-1) > w.max(axis=-1))
    np.testing.assert_array_equal(sharp.argmax(axis=-1), w.argmax(axis=-1))


def test_read_and_write():
    a = _args()
    np.testing.assert_allclose(
        _np(ntm_addressing.read(a["memory"], a["previous_weighting"])),
        numpy_read(a["memory"], a["previous_weighting"]), atol=1e-5,
    )
    expected = numpy_write(*(a[k].astype("float64") for k in ("memory", "previous_weighting", "erase", "add")))
    actual = _np(ntm_addressing.write(a["memory"], a["previous_weighting"], a["erase"], a["add"]))
    np.testing.assert_allclose(actual, expected, atol=1e-5)
    # One head, full focus on location 2, full erase: location 2 becomes a, the others are untouched.
    w = np.zeros((B, 1, N), "float32")
    w[:, :, 2] = 1
    one = _np(ntm_addressing.write(a["memory"], w, np.ones((B, 1, M), "float32"), a["add"][:, :1]))
    np.testing.assert_allclose(one[:, 2], a["add"][:, 0], atol=1e-6)
    np.testing.assert_array_equal(np.delete(one, 2, axis=1), np.delete(a["memory"], 2, axis=1))


def test_address_is_the_pipeline():
    a = _args()
    f64 = {k: v.astype("float64") for k, v in a.items()}
    expected = numpy_sharpen(
        numpy_shift(
            numpy_interpolate(numpy_content(f64["key"], f64["strength"], f64["memory"]), f64["previous_weighting"],
                              f64["gate"]),
            f64["shift"],
        ),
        f64["sharpening"],
    )
    names = ("key", "strength", "gate", "shift", "sharpening", "previous_weighting", "memory")
    np.testing.assert_allclose(_np(ntm_addressing.address(*(a[k] for k in names))), expected, atol=1e-5)
    compiled = backend.xla_compiled(ntm_addressing.address)(*(a[k] for k in names))
    np.testing.assert_allclose(compiled, expected, atol=1e-5)


def test_zero_memory_and_zero_weights_stay_finite():
    # A zero memory (and zero key) gives K = 0, a uniform content weighting, and finite gradients; exact zeros in
    # the weighting give a finite sharpening and finite gradients with respect to γ (the log of w~ is taken at w~+ε).
    a = _args()
    names = ("key", "strength", "gate", "shift", "sharpening", "previous_weighting", "memory")
    a["memory"] = np.zeros_like(a["memory"])
    a["key"][0, 0] = 0.0
    a["previous_weighting"] = np.zeros_like(a["previous_weighting"])
    a["previous_weighting"][..., 0] = 1.0  # one-hot: zeros everywhere else
    a["gate"] = np.zeros_like(a["gate"])  # keep the one-hot weighting through the interpolation
    a["sharpening"] = np.full_like(a["sharpening"], 21.0)  # the largest γ under the ±20 clip
    content = _np(ntm_addressing.content_addressing(a["key"], a["strength"], a["memory"]))
    np.testing.assert_allclose(content, 1.0 / N, atol=1e-7)

    def scalar(*args):
        w = ntm_addressing.address(*args)
        r = ntm_addressing.read(args[-1], w)
        memory = ntm_addressing.write(args[-1], w, keras.ops.sigmoid(args[0]), args[0])
        return keras.ops.sum(w * w) + keras.ops.sum(r) + keras.ops.sum(memory * memory)

    # Even an all-zero w~ (which the pipeline never gives, but a caller might) sharpens to uniform, not 0/0.
    zeros = np.zeros((B, H, N), "float32")
    np.testing.assert_allclose(_np(ntm_addressing.sharpen(zeros, a["sharpening"])), 1.0 / N, atol=1e-6)

    values = [a[k] for k in names]
    assert np.isfinite(_np(scalar(*values)))
    for name, g in zip(names, backend.gradients(scalar, values)):
        assert np.all(np.isfinite(g)), f"gradient with respect to {name} is not finite"


@pytest.mark.parametrize(
    "function, names",
    [
        (ntm_addressing.cosine_similarity, ("key", "memory")),
        (ntm_addressing.content_addressing, ("key", "strength", "memory")),
        (ntm_addressing.interpolate, ("content_weighting", "previous_weighting", "gate")),
        (ntm_addressing.circular_shift, ("previous_weighting", "shift")),
        (ntm_addressing.sharpen, ("previous_weighting", "sharpening")),
        (ntm_addressing.address, ("key", "strength", "gate", "shift", "sharpening", "previous_weighting", "memory")),
        (ntm_addressing.read, ("memory", "previous_weighting")),
        (ntm_addressing.write, ("memory", "previous_weighting", "erase", "add")),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_gradients_float64(function, names):
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    a = _args(dtype="float64")
    projection = tf.constant(np.random.default_rng(7).normal(size=function(*(a[k] for k in names)).shape))

    def scalar(*args):
        return tf.reduce_sum(function(*args) * projection)

    theoretical, numerical = tf.test.compute_gradient(scalar, [tf.constant(a[k]) for k in names])
    for name, t, n in zip(names, theoretical, numerical):
        assert np.any(t != 0), f"{function.__name__}: gradient with respect to {name} is identically zero"
        # rtol 1e-4: the central differences' own error, O(δ²) with δ = 1/1024 times the third derivative, reaches
        # 2e-5 relative on the powers of the sharpening; a wrong or missing term is off by far more.
        np.testing.assert_allclose(t, n, rtol=1e-4, atol=1e-6, err_msg=f"{function.__name__}: gradient wrt {name}")
