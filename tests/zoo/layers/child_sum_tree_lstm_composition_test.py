import numpy as np
import pytest

from tests.helpers import reference
from tests.helpers.tree_composition_contract import TreeCompositionContract
from zoo.layers.child_sum_tree_lstm_composition import ChildSumTreeLSTMComposition

UNITS = 4


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_child_sum_tree_lstm(config, weights, x, children_states, mask):
    """Tai et al. 2015, eq. 2-8, node by node, summing over each node's present children only."""
    children_h, children_c = children_states
    nodes, arity, units = children_h.shape
    W, U, b = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    W_i, W_f, W_u, W_o = (W[:, g * units:(g + 1) * units] for g in range(4))
    U_i, U_f, U_u, U_o = (U[:, g * units:(g + 1) * units] for g in range(4))
    b_i, b_f, b_u, b_o = (b[g * units:(g + 1) * units] for g in range(4))
    h, c = np.zeros((nodes, units)), np.zeros((nodes, units))
    for n in range(nodes):
        kids = [k for k in range(arity) if mask[n, k]]
        h_tilde = sum((children_h[n, k] for k in kids), np.zeros(units))
        i = sigmoid(x[n] @ W_i + h_tilde @ U_i + b_i)
        o = sigmoid(x[n] @ W_o + h_tilde @ U_o + b_o)
        u = np.tanh(x[n] @ W_u + h_tilde @ U_u + b_u)
        c[n] = i * u
        for k in kids:
            f_k = sigmoid(x[n] @ W_f + children_h[n, k] @ U_f + b_f)
            c[n] += f_k * children_c[n, k]
        h[n] = o * np.tanh(c[n])
    return [h, c]


class TestChildSumTreeLSTMComposition(TreeCompositionContract):
    layer_class = ChildSumTreeLSTMComposition
    configs = ({"units": UNITS}, {"units": UNITS, "unit_forget_bias": False})
    input_dim = 3
    arity = 3

    def expected_weights(self, config):
        return {"kernel": (self.input_dim, 4 * UNITS), "bias": (4 * UNITS,), "recurrent_kernel": (UNITS, 4 * UNITS)}

    def numpy_compose(self, config, weights, x, children_states, mask):
        return numpy_child_sum_tree_lstm(config, weights, x, children_states, mask)

    @pytest.mark.jax
    def test_order_invariant_over_children(self):
        layer = self.make()
        x, children, mask = self.data()
        expected = self.call(layer, x, children, mask)
        for permutation in ([2, 0, 1], [1, 2, 0], [2, 1, 0]):
            permuted = self.call(layer, x, [s[:, permutation] for s in children], mask[:, permutation])
            for a, e in zip(permuted, expected):
                np.testing.assert_allclose(a, e, atol=1e-6)

    @pytest.mark.jax
    def test_any_number_of_child_slots_with_the_same_weights(self):
        # A node's result does not depend on how many empty slots follow its children.
        layer = self.make()
        x, children, mask = self.data()
        expected = self.call(layer, x, children, mask)
        wider = [np.concatenate([s, np.full_like(s[:, :2], 5.0)], axis=1) for s in children]
        wide_mask = np.concatenate([mask, np.zeros_like(mask[:, :2])], axis=1)
        wide = ChildSumTreeLSTMComposition(UNITS)
        wide.build((None, self.input_dim), [(None, 5, UNITS)] * 2)
        reference.copy_weights_by_name(layer, wide)
        for a, e in zip(self.call(wide, x, wider, wide_mask), expected):
            np.testing.assert_allclose(a, e, atol=1e-6)
