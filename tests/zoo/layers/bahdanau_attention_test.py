import numpy as np
import pytest

from tests.helpers.attention_contract import AttentionContract
from zoo.layers import BahdanauAttention

UNITS = 4


class TestBahdanauAttention(AttentionContract):
    layer_class = BahdanauAttention
    configs = ({"units": UNITS}, {"units": UNITS, "normalize": True})

    def expected_weights(self, config):
        weights = {"query_kernel": (self.query_dim, UNITS), "memory_kernel": (self.memory_dim, UNITS),
                   "attention_v": (UNITS,)}
        if config.get("normalize"):
            weights.update(attention_g=(), attention_b=(UNITS,))
        return weights

    def numpy_scores(self, config, w, query, memory):
        # e_ts = vᵀ tanh(W_q h_t + W_k h̄_s (+ b)), with v ← g v / ‖v‖ under weight normalisation.
        v, b = w["attention_v"], 0.0
        if config.get("normalize"):
            v, b = w["attention_g"] * v / np.linalg.norm(v), w["attention_b"]
        hidden = np.tanh((query @ w["query_kernel"])[:, None, :] + memory @ w["memory_kernel"] + b)
        return hidden @ v


def test_weight_normalisation_starts_at_the_addons_length():
    layer = BahdanauAttention(16, normalize=True)
    layer.build((None, 3), (None, None, 2))
    np.testing.assert_allclose(float(layer.attention_g.numpy()), np.sqrt(1 / 16), rtol=1e-6)
    np.testing.assert_array_equal(layer.attention_b.numpy(), 0.0)


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"units must be a positive int, got 0"):
        BahdanauAttention(0)
    with pytest.raises(ValueError, match=r"normalize must be True or False, got 'yes'"):
        BahdanauAttention(4, normalize="yes")
