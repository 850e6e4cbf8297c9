import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers.attention_contract import numpy_attention
from tests.helpers.attention_contract import numpy_masked_softmax
from tests.helpers.attention_contract import source_mask
from zoo.layers import attention_functions

pytestmark = pytest.mark.jax


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_sequence_mask():
    np.testing.assert_array_equal(
        _np(attention_functions.sequence_mask(np.array([0, 2, 4]), 4)),
        [[False] * 4, [True, True, False, False], [True] * 4],
    )


def test_masked_softmax_against_numpy():
    scores = np.random.default_rng(0).normal(scale=3.0, size=(4, 5)).astype("float32")
    mask = source_mask()
    alignment = _np(attention_functions.masked_softmax(scores, mask))
    np.testing.assert_allclose(alignment, numpy_masked_softmax(scores, mask), atol=1e-6)
    assert np.all(alignment[~mask] == 0.0)
    np.testing.assert_array_equal(alignment[3], 0.0)  # no valid position: zeros, not NaN
    # Large scores at masked positions change nothing.
    np.testing.assert_allclose(
        _np(attention_functions.masked_softmax(np.where(mask, scores, 1e30).astype("float32"), mask)), alignment,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        _np(attention_functions.masked_softmax(scores)), numpy_masked_softmax(scores, np.ones_like(mask)), atol=1e-6
    )


def test_masked_softmax_of_a_fully_masked_row_has_finite_gradients():
    scores = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    mask = source_mask()
    (gradient,) = backend.gradients(
        lambda s: keras.ops.sum(attention_functions.masked_softmax(s, mask) * np.arange(5.0, dtype="float32")),
        [scores],
    )
    assert np.all(np.isfinite(gradient))
    np.testing.assert_array_equal(gradient[~mask], 0.0)


def test_context_vector_and_scores_against_numpy():
    rng = np.random.default_rng(1)
    query, memory = rng.normal(size=(2, 3)).astype("float32"), rng.normal(size=(2, 4, 3)).astype("float32")
    alignment = numpy_masked_softmax(rng.normal(size=(2, 4)), np.ones((2, 4), bool)).astype("float32")
    np.testing.assert_allclose(
        _np(attention_functions.context_vector(alignment, memory)), numpy_attention(np.log(alignment), memory,
                                                                                    np.ones((2, 4), bool))[0],
        atol=1e-5,
    )
    np.testing.assert_allclose(
        _np(attention_functions.multiplicative_score(query, memory)), np.einsum("bq,bsq->bs", query, memory), atol=1e-5
    )
    v, b = rng.normal(size=3).astype("float32"), rng.normal(size=3).astype("float32")
    np.testing.assert_allclose(
        _np(attention_functions.additive_score(query, memory, v, b)),
        np.tanh(query[:, None] + memory + b) @ v, atol=1e-5,
    )
    np.testing.assert_allclose(
        _np(attention_functions.weight_normalized(v, np.float32(2.0))), 2.0 * v / np.linalg.norm(v), rtol=1e-5
    )


def test_every_step_at_once_equals_each_step():
    # Queries of T steps [batch, T, q] give, at each step t, what the step's own query [batch, q] gives.
    rng = np.random.default_rng(2)
    batch, time, source, dim = 4, 3, 5, 3
    queries = rng.normal(size=(batch, time, dim)).astype("float32")
    memory = rng.normal(size=(batch, source, dim)).astype("float32")
    v, b = rng.normal(size=dim).astype("float32"), rng.normal(size=dim).astype("float32")
    mask = source_mask()  # [4, 5], a row with no valid position included
    steps = {
        "multiplicative": lambda q: attention_functions.multiplicative_score(q, memory),
        "additive": lambda q: attention_functions.additive_score(q, memory, v, b),
        "additive, no bias": lambda q: attention_functions.additive_score(q, memory, v),
    }
    for name, score in steps.items():
        scores = _np(score(queries))
        assert scores.shape == (batch, time, source), name
        for t in range(time):
            np.testing.assert_allclose(scores[:, t], _np(score(queries[:, t])), atol=1e-6, err_msg=name)
        alignment = _np(attention_functions.masked_softmax(scores, mask))
        context = _np(attention_functions.context_vector(alignment, memory))
        assert context.shape == (batch, time, dim), name
        for t in range(time):
            step_alignment = attention_functions.masked_softmax(scores[:, t], mask)
            np.testing.assert_allclose(alignment[:, t], _np(step_alignment), atol=1e-6, err_msg=name)
            np.testing.assert_allclose(context[:, t], _np(attention_functions.context_vector(step_alignment, memory)),
                                       atol=1e-6, err_msg=name)
        np.testing.assert_array_equal(alignment[~mask[:, None, :].repeat(time, 1)], 0.0)
