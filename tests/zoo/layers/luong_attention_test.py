import numpy as np
import pytest

from tests.helpers.attention_contract import MEMORY_DIM
from tests.helpers.attention_contract import AttentionContract
from zoo.layers import LuongAttention

UNITS = 4


class TestLuongAttention(AttentionContract):
    layer_class = LuongAttention
    configs = (
        {"score": "general"},
        {"score": "general", "scale": True},
        {"score": "concat", "units": UNITS},
        {"score": "concat", "units": UNITS, "scale": True},
    )

    def expected_weights(self, config):
        weights = {
            "general": {"memory_kernel": (self.memory_dim, self.query_dim)},
            "concat": {"query_kernel": (self.query_dim, UNITS), "memory_kernel": (self.memory_dim, UNITS),
                       "attention_v": (UNITS,)},
            "dot": {},
        }[config["score"]]
        return {**weights, **({"attention_g": ()} if config.get("scale") else {})}

    def numpy_scores(self, config, w, query, memory):
        score = config["score"]
        if score == "dot":  # e_ts = h_tᵀ h̄_s
            scores = np.einsum("bq,bsq->bs", query, memory)
        elif score == "general":  # e_ts = h_tᵀ W_a h̄_s
            scores = np.einsum("bq,bsm,mq->bs", query, memory, w["memory_kernel"])
        else:  # e_ts = vᵀ tanh(W_a [h_t; h̄_s])
            stacked = np.concatenate([w["query_kernel"], w["memory_kernel"]], axis=0)  # W_a on [h_t; h̄_s]
            pairs = np.concatenate(
                [np.broadcast_to(query[:, None, :], memory.shape[:2] + query.shape[-1:]), memory], axis=-1
            )
            scores = np.tanh(pairs @ stacked) @ w["attention_v"]
        if config.get("scale"):
            scores = w["attention_g"] * scores
        return scores


class TestLuongDotAttention(TestLuongAttention):
    # The "dot" score needs query_dim == memory_dim.
    query_dim = MEMORY_DIM
    configs = ({"score": "dot"}, {"score": "dot", "scale": True})


def test_scale_starts_at_one():
    layer = LuongAttention("dot", scale=True)
    layer.build((None, 3), (None, None, 3))
    assert float(layer.attention_g.numpy()) == 1.0


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"score must be one of 'dot', 'general', 'concat', got 'additive'"):
        LuongAttention("additive")
    with pytest.raises(ValueError, match=r"units \(of the 'concat' score\) must be a positive int, got None"):
        LuongAttention("concat")
    with pytest.raises(ValueError, match=r"units is the hidden size of the 'concat' score only; got units=4"):
        LuongAttention("general", units=4)
    with pytest.raises(ValueError, match=r"'dot' score needs query_dim == memory_dim, got query_dim=3 and memory_dim=5"):
        LuongAttention("dot").build((None, 3), (None, None, 5))
