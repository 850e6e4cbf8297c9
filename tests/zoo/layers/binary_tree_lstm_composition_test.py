import numpy as np
import pytest

from tests.helpers.tree_composition_contract import TreeCompositionContract
from zoo.layers.binary_tree_lstm_composition import BinaryTreeLSTMComposition

UNITS = 4


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def numpy_nary_tree_lstm(config, weights, x, children_states, mask):
    """Tai et al. 2015, eq. 9-14, node by node, with U^(.)_l and U^(f)_{kl} cut out of the weights by hand."""
    children_h, children_c = children_states
    nodes, arity, units = children_h.shape
    W, U, b = weights["kernel"], weights["recurrent_kernel"], weights["bias"]
    W_i, W_f, W_u, W_o = (W[:, g * units:(g + 1) * units] for g in range(4))
    b_i, b_f, b_u, b_o = (b[g * units:(g + 1) * units] for g in range(4))

    def U_block(l, column_block):  # noqa: N802 - the paper's name
        return U[l * units:(l + 1) * units, column_block * units:(column_block + 1) * units]

    h, c = np.zeros((nodes, units)), np.zeros((nodes, units))
    for n in range(nodes):
        h_l = [children_h[n, l] if mask[n, l] else np.zeros(units) for l in range(arity)]
        c_l = [children_c[n, l] if mask[n, l] else np.zeros(units) for l in range(arity)]
        i = sigmoid(x[n] @ W_i + sum(h_l[l] @ U_block(l, 0) for l in range(arity)) + b_i)
        f = [sigmoid(x[n] @ W_f + sum(h_l[l] @ U_block(l, 1 + k) for l in range(arity)) + b_f) for k in range(arity)]
        u = np.tanh(x[n] @ W_u + sum(h_l[l] @ U_block(l, arity + 1) for l in range(arity)) + b_u)
        o = sigmoid(x[n] @ W_o + sum(h_l[l] @ U_block(l, arity + 2) for l in range(arity)) + b_o)
        c[n] = i * u + sum(f[k] * c_l[k] for k in range(arity))
        h[n] = o * np.tanh(c[n])
    return [h, c]


class TestBinaryTreeLSTMComposition(TreeCompositionContract):
    layer_class = BinaryTreeLSTMComposition
    configs = ({"units": UNITS}, {"units": UNITS, "unit_forget_bias": False})
    input_dim = 3
    arity = 2

    def expected_weights(self, config):
        return {
            "kernel": (self.input_dim, 4 * UNITS), "bias": (4 * UNITS,),
            "recurrent_kernel": (self.arity * UNITS, (self.arity + 3) * UNITS),
        }

    def numpy_compose(self, config, weights, x, children_states, mask):
        return numpy_nary_tree_lstm(config, weights, x, children_states, mask)

    @pytest.mark.jax
    def test_child_positions_have_their_own_weights(self):
        # Unlike the Child-Sum form, swapping the two children changes the result.
        layer = self.make()
        x, (h, c), _ = self.data()
        full = np.ones((len(x), 2), bool)
        straight = self.call(layer, x, [h, c], full)
        swapped = self.call(layer, x, [h[:, ::-1], c[:, ::-1]], full)
        assert not np.allclose(straight[0], swapped[0])

    @pytest.mark.jax
    def test_three_child_slots(self):
        config = {"units": UNITS}
        layer = BinaryTreeLSTMComposition(**config)
        layer.build((None, self.input_dim), [(None, 3, UNITS)] * 2)
        assert tuple(layer.recurrent_kernel.shape) == (3 * UNITS, 6 * UNITS)
        rng = np.random.default_rng(3)
        x = rng.normal(size=(5, self.input_dim)).astype("float32")
        mask = np.array([[1, 1, 1], [1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 0]], bool)
        children = [np.where(mask[..., None], rng.normal(size=(5, 3, UNITS)), 0).astype("float32") for _ in "hc"]
        from tests.helpers import reference

        reference.randomize_weights(layer)
        expected = numpy_nary_tree_lstm(config, reference.weights_by_name(layer), x, children, mask)
        for a, e in zip(self.call(layer, x, children, mask), expected):
            np.testing.assert_allclose(a, e, atol=1e-5)

    @pytest.mark.jax
    def test_forget_bias_starts_at_one(self):
        layer = BinaryTreeLSTMComposition(UNITS)
        layer.build((None, 3), [(None, 2, UNITS)] * 2)
        bias = np.asarray(layer.bias)
        np.testing.assert_array_equal(bias[UNITS:2 * UNITS], 1.0)
        np.testing.assert_array_equal(np.delete(bias, np.s_[UNITS:2 * UNITS]), 0.0)
