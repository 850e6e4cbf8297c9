import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import saved_model
from tests.helpers import serialization
from zoo.layers.memory_read import MemoryRead
from zoo.layers.memory_read import memory_attention

BATCH, SLOTS, DIM = 3, 5, 4


def data(batch=BATCH, slots=SLOTS, seed=0):
    rng = np.random.default_rng(seed)
    u, keys, values = (rng.normal(size=s).astype("float32") for s in ((batch, DIM), (batch, slots, DIM),
                                                                       (batch, slots, DIM)))
    mask = np.ones((batch, slots), bool)
    mask[0, -2:] = False
    mask[1, 1] = False
    return u, keys, values, mask


def numpy_read(u, keys, values, mask, linear):
    """p_i = softmax(uᵀ m_i) over the valid i (or uᵀ m_i), o = Σ_i p_i c_i."""
    o, p = np.zeros((len(u), values.shape[-1])), np.zeros(mask.shape)
    for b in range(len(u)):
        valid = np.nonzero(mask[b])[0]
        scores = keys[b, valid] @ u[b]
        p[b, valid] = scores if linear else np.exp(scores) / np.exp(scores).sum()
        o[b] = p[b] @ values[b]
    return o, p


@pytest.mark.jax
@pytest.mark.parametrize("linear", [False, True], ids=["softmax", "linear"])
def test_numpy_reference(linear):
    u, keys, values, mask = data()
    o, p = MemoryRead(linear=linear)(u, keys, values, slot_mask=mask)
    expected_o, expected_p = numpy_read(u, keys, values, mask, linear)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(p), expected_p, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(o), expected_o, atol=1e-5)


@pytest.mark.jax
def test_empty_memories_join_the_softmax_with_score_zero():
    u, keys, values, mask = data()
    empty = np.array([3.0, 0.0, 45.0], "float32")  # per example
    o, p = (keras.ops.convert_to_numpy(y) for y in MemoryRead()(u, keys, values, slot_mask=mask, empty_slots=empty))
    expected_p = np.zeros(mask.shape)
    for b in range(BATCH):
        scores = keys[b, mask[b]].astype(np.float64) @ u[b]
        expected_p[b, mask[b]] = np.exp(scores) / (np.exp(scores).sum() + empty[b])  # each empty memory: exp(0)
    np.testing.assert_allclose(p, expected_p, atol=1e-6)
    np.testing.assert_allclose(o, np.einsum("bm,bmd->bd", expected_p, values), atol=1e-5)
    assert p[0].sum() < 1 and abs(p[1].sum() - 1) < 1e-6  # the empty memories take the rest, reading nothing
    # Large scores stay finite (the shift), and a story of no sentence and no empty memory reads nothing.
    _, big = MemoryRead()(u, keys * 1e3, values, slot_mask=mask, empty_slots=empty)
    assert np.all(np.isfinite(keras.ops.convert_to_numpy(big)))
    o0, p0 = MemoryRead()(u, keys, values, slot_mask=np.zeros_like(mask), empty_slots=np.zeros(BATCH, "float32"))
    assert np.all(keras.ops.convert_to_numpy(o0) == 0) and np.all(keras.ops.convert_to_numpy(p0) == 0)
    # Linear start ignores them: no softmax to join.
    _, linear_p = MemoryRead(linear=True)(u, keys, values, slot_mask=mask, empty_slots=empty)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(linear_p), numpy_read(u, keys, values, mask, True)[1],
                               atol=1e-5)


@pytest.mark.parametrize("linear", [False, True], ids=["softmax", "linear"])
def test_call_argument_overrides_linear(linear):
    u, keys, values, mask = data()
    layer = MemoryRead(linear=not linear)
    for switch in (linear, keras.ops.convert_to_tensor(linear)):  # a Python bool or a scalar bool tensor
        _, p = layer(u, keys, values, slot_mask=mask, linear=switch)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(p), numpy_read(u, keys, values, mask, linear)[1],
                                   atol=1e-5)


@pytest.mark.jax
@pytest.mark.parametrize("linear", [False, True], ids=["softmax", "linear"])
def test_masked_slots_never_change_a_result(linear):
    u, keys, values, mask = data()
    o, p = (keras.ops.convert_to_numpy(y) for y in MemoryRead(linear=linear)(u, keys, values, slot_mask=mask))
    garbage_keys, garbage_values = keys.copy(), values.copy()
    garbage_keys[~mask], garbage_values[~mask] = 1e3, -1e3
    o2, p2 = (keras.ops.convert_to_numpy(y) for y in MemoryRead(linear=linear)(u, garbage_keys, garbage_values,
                                                                                   slot_mask=mask))
    np.testing.assert_array_equal(p2[~mask], 0.0)
    np.testing.assert_allclose(p2, p, atol=1e-6)
    np.testing.assert_allclose(o2, o, atol=1e-5)
    # A memory with no valid slot reads nothing (never NaN).
    o3, p3 = MemoryRead(linear=linear)(u, keys, values, slot_mask=np.zeros_like(mask))
    assert np.all(keras.ops.convert_to_numpy(o3) == 0) and np.all(keras.ops.convert_to_numpy(p3) == 0)


@pytest.mark.parametrize("linear", [False, True], ids=["softmax", "linear"])
def test_float64_gradients(linear):
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    u, keys, values, mask = (np.asarray(a, np.float64) if a.dtype != bool else a for a in data())
    rng = np.random.default_rng(1)
    projections = [tf.constant(rng.normal(size=s)) for s in ((BATCH, DIM), (BATCH, SLOTS))]

    layer = MemoryRead(linear=linear, dtype="float64")

    def scalar(u, keys, values):
        o, p = layer(u, keys, values, slot_mask=mask)
        return tf.reduce_sum(o * projections[0]) + tf.reduce_sum(p * projections[1])

    theoretical, numerical = tf.test.compute_gradient(scalar, [tf.constant(u), tf.constant(keys),
                                                               tf.constant(values)])
    for name, t, n in zip(["u", "keys", "values"], theoretical, numerical):
        assert np.any(t != 0), name
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6, err_msg=f"gradient with respect to {name}")


def test_attention_function_matches_the_layer_p():
    u, keys, values, mask = data()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(memory_attention(u, keys, mask)),
                               keras.ops.convert_to_numpy(MemoryRead()(u, keys, values, slot_mask=mask)[1]))


def functional(linear=False):
    u, keys, values = keras.Input((DIM,)), keras.Input((None, DIM)), keras.Input((None, DIM))
    mask = keras.Input((None,), dtype="bool")
    o, p = MemoryRead(linear=linear)(u, keys, values, slot_mask=mask)
    return keras.Model([u, keys, values, mask], [o, p])


def test_serialization_and_saved_model(tmp_path):
    serialization.assert_config_round_trip(MemoryRead(linear=True))
    with pytest.raises(ValueError, match="linear must be True or False, got 1"):
        MemoryRead(linear=1)
    model = functional(linear=True)
    x = list(data())
    expected = [keras.ops.convert_to_numpy(y) for y in model(x)]
    model.save(tmp_path / "read.keras")
    loaded = keras.saving.load_model(tmp_path / "read.keras")
    for actual, e in zip(loaded(x), expected):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(actual), e, atol=1e-6)
    # The SavedModel helper compares one output: the read vector o.
    o_only = keras.Model(model.inputs, model.outputs[0])
    saved_model.assert_saved_model_round_trip(o_only, [list(data(2, 5)), list(data(4, 7, seed=3))],
                                              str(tmp_path / "export"))
