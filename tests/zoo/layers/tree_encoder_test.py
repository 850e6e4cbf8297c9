import keras
import numpy as np
import pytest

from tests.helpers import backend
from tests.helpers import reference
from tests.helpers import saved_model
from tests.helpers import serialization
from tests.helpers.tree_batches import node
from tests.helpers.tree_batches import recursive_states
from tests.helpers.tree_batches import tree_batch
from tests.zoo.layers import binary_tree_lstm_composition_test as binary_test
from tests.zoo.layers import child_sum_tree_lstm_composition_test as child_sum_test
from tests.zoo.layers import tree_rnn_composition_test as tree_rnn_test
from zoo.layers.binary_tree_lstm_composition import BinaryTreeLSTMComposition
from zoo.layers.child_sum_tree_lstm_composition import ChildSumTreeLSTMComposition
from zoo.layers.tree_encoder import TreeEncoder
from zoo.layers.tree_rnn_composition import TreeRNNComposition

UNITS, VOCAB = 4, 10

# Binary trees (K = 2): balanced, a single leaf, left- and right-branching, and one with a unary node (6,).
BINARY_TREES = [
    ((1, 2), (3, (4, 5))),
    7,
    (((1, 2), 3), 4),
    ((6,), (2, 3)),
    (1, (2, (3, (4, (5, 6))))),
]
# Dependency-like trees (K = 3): any number of children, and words at internal nodes too.
DEPENDENCY_TREES = [
    node(1, node(2, 3, word=4), 5, word=6),
    8,
    node(node(node(1, word=2), word=3), 9, word=7),
    node(1, 2, 3, word=5),
    # 3 nodes of height 1 among 7: as many as `level_width` allows (7 // 2) when the tree is alone, unpadded.
    node(node(1, word=2), node(3, word=4), node(5, word=6), word=7),
]

# name: (composition class, its NumPy equations, input_dim, trees, K, internal_inputs)
CASES = {
    "tree_rnn": (TreeRNNComposition, tree_rnn_test.numpy_tree_rnn, UNITS, BINARY_TREES, 2, False),
    "binary_tree_lstm": (BinaryTreeLSTMComposition, binary_test.numpy_nary_tree_lstm, 3, BINARY_TREES, 2, False),
    "child_sum_binary": (ChildSumTreeLSTMComposition, child_sum_test.numpy_child_sum_tree_lstm, 3, BINARY_TREES, 2,
                         False),
    "child_sum_dependency": (ChildSumTreeLSTMComposition, child_sum_test.numpy_child_sum_tree_lstm, 3,
                             DEPENDENCY_TREES, 3, True),
}
MAX_HEIGHT = 5  # the deepest tree above, (1, (2, (3, (4, (5, 6))))), has height 5


def make_encoder(case, max_height=MAX_HEIGHT, seed=0, dtype=None, **kwargs):
    composition_class, _, input_dim, _, arity, internal_inputs = CASES[case]
    options = {"dtype": dtype} if dtype else {}
    encoder = TreeEncoder(composition_class(UNITS, **options), max_height, internal_inputs=internal_inputs,
                          **options, **kwargs)
    encoder.build((None, None, input_dim), (None, None, arity), (None, None))
    reference.randomize_weights(encoder, seed=seed)
    return encoder


def embedding(case, seed=0):
    return np.random.default_rng(seed).normal(size=(VOCAB, CASES[case][2]))


def batch_inputs(case, trees, nodes=None, seed=0, dtype="float32"):
    """(inputs, children, heights, the batch dict): x = the word's embedding where a node reads one, garbage at every
    other row (large values at internal nodes without input, NaN at padding), which must never matter."""
    _, _, input_dim, _, arity, internal_inputs = CASES[case]
    batch = tree_batch(trees, nodes, arity)
    reads = (batch["heights"] == 0) | (internal_inputs & (batch["heights"] > 0))
    garbage = np.random.default_rng(seed + 100).uniform(50, 100, size=(*batch["words"].shape, input_dim))
    garbage[batch["heights"] < 0] = np.nan
    inputs = np.where(reads[..., None], embedding(case)[batch["words"]], garbage).astype(dtype)
    return inputs, batch["children"], batch["heights"], batch


def numpy_recursion(case, encoder, trees):
    """Every node's states, tree by tree and node by node, from the paper's equations and the encoder's weights."""
    _, equations, input_dim, _, arity, internal_inputs = CASES[case]
    weights = reference.weights_by_name(encoder.composition)
    table = embedding(case)

    def x_of(word, is_leaf):
        return table[word] if is_leaf or internal_inputs else np.zeros(input_dim)

    def compose(x, children, mask):
        return equations({"units": UNITS}, weights, x, children, mask)

    states = len(encoder.composition.state_size)
    return [recursive_states(tree, x_of, compose, arity, UNITS, states) for tree in trees]


def run(encoder, inputs, children, heights):
    outputs = encoder(inputs, children, heights)
    return [keras.ops.convert_to_numpy(s) for s in (outputs if isinstance(outputs, list) else [outputs])]


# Under JAX the two cheapest cases (a tree RNN, a child-sum Tree-LSTM on binary trees); the binary Tree-LSTM's
# encoder is checked there by test_jit_compile (eager against XLA) and test_levels_above_max_height_stay_zero.
@pytest.mark.parametrize("case", backend.jax_for(sorted(CASES), ("child_sum_binary", "tree_rnn")))
def test_equals_node_by_node_recursion(case):
    trees = CASES[case][3]
    encoder = make_encoder(case, return_states=True)
    inputs, children, heights, batch = batch_inputs(case, trees)
    actual = run(encoder, inputs, children, heights)
    assert len(actual) == len(encoder.composition.state_size)
    for b, expected in enumerate(numpy_recursion(case, encoder, trees)):
        size = batch["sizes"][b]
        for index, (a, e) in enumerate(zip(actual, expected)):
            np.testing.assert_allclose(a[b, :size], e, atol=1e-5, err_msg=f"tree {b}, state {index}")
            np.testing.assert_array_equal(a[b, size:], 0.0, err_msg=f"tree {b}: padding nodes have states")
    # h alone by default; the first of the states.
    h = make_encoder(case)(inputs, children, heights)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(h), actual[0], atol=1e-6)


@pytest.mark.parametrize("case", sorted(CASES))
def test_padding_never_changes_a_result(case):
    # TensorFlow only: it calls the encoder on a new shape per tree, which JAX compiles op by op (25 s on 2 cores);
    # the JAX run checks padding through test_equals_node_by_node_recursion (its padded batch's zero padding states).
    trees = CASES[case][3]
    encoder = make_encoder(case, max_height=MAX_HEIGHT + 2, return_states=True)  # spare levels change nothing
    together = run(encoder, *batch_inputs(case, trees, nodes=16, seed=1)[:3])
    for b, tree in enumerate(trees):
        inputs, children, heights, batch = batch_inputs(case, [tree], seed=2)  # alone, unpadded
        alone = run(encoder, inputs, children, heights)
        for a, t in zip(alone, together):
            np.testing.assert_allclose(t[b, :batch["sizes"][0]], a[0], atol=1e-6, err_msg=f"tree {b}")
            np.testing.assert_array_equal(t[b, batch["sizes"][0]:], 0.0)
    # Padding nodes whose rows point at real nodes, and indices past N in empty slots, are ignored too.
    inputs, children, heights, batch = batch_inputs(case, trees, nodes=16, seed=1)
    children = children.copy()
    for b, size in enumerate(batch["sizes"]):
        children[b, size:] = np.arange(children.shape[-1]) % size
    children[children == -1] = 99
    for a, t in zip(run(encoder, inputs, children, heights), together):
        np.testing.assert_allclose(a, t, atol=1e-6)


@pytest.mark.jax
def test_levels_above_max_height_stay_zero():
    # The documented contract: the encoder composes heights 0..max_height; the pipeline buckets heights below it.
    encoder = make_encoder("binary_tree_lstm", max_height=2)
    inputs, children, heights, _ = batch_inputs("binary_tree_lstm", [((1, 2), (3, (4, 5)))])
    h = keras.ops.convert_to_numpy(encoder(inputs, children, heights))
    assert np.all(h[heights > 2] == 0) and np.all(np.abs(h[(heights >= 0) & (heights <= 2)]).sum(-1) > 0)


@pytest.mark.parametrize("case", ["tree_rnn", pytest.param("binary_tree_lstm", marks=pytest.mark.jax),
                                  "child_sum_dependency"])
def test_an_empty_batch_gives_empty_states(case):
    # A server's empty request: B = 0 trees of N nodes (N static), eagerly and compiled by XLA.
    encoder = make_encoder(case, return_states=True)
    inputs, children, heights, _ = batch_inputs(case, [((1, 2), 3)], nodes=8)
    empty = [value[:0] for value in (inputs, children, heights)]
    compiled = backend.xla_compiled(lambda x, c, h: encoder(x, c, h), encoder.variables)(*empty)
    for outputs in (run(encoder, *empty), compiled):
        assert [np.shape(o) for o in outputs] == [(0, 8, UNITS)] * len(encoder.composition.state_size)


# Under JAX for one composition only: each case costs the JAX pass about 10 s on 2 cores (compilation).
@pytest.mark.parametrize("case", ["tree_rnn", pytest.param("binary_tree_lstm", marks=pytest.mark.jax),
                                  "child_sum_dependency"])
def test_jit_compile(case):
    encoder = make_encoder(case, return_states=True)
    inputs, children, heights, _ = batch_inputs(case, CASES[case][3], nodes=13)
    eager = run(encoder, inputs, children, heights)
    arity = children.shape[-1]
    compiled = backend.xla_compiled(
        lambda x, c, h: encoder(x, c, h), encoder.variables,
        [((None, None, inputs.shape[-1]), "float32"), ((None, None, arity), "int32"), ((None, None), "int32")],
    )(inputs, children, heights)
    for c, e in zip(compiled, eager):
        np.testing.assert_allclose(c, e, atol=1e-5)


def functional(case, max_height=MAX_HEIGHT):
    _, _, input_dim, _, arity, _ = CASES[case]
    inputs = keras.Input((None, input_dim), name="inputs")
    children = keras.Input((None, arity), dtype="int32", name="children")
    heights = keras.Input((None,), dtype="int32", name="heights")
    encoder = make_encoder(case, max_height=max_height)
    return keras.Model([inputs, children, heights], encoder(inputs, children, heights))


@pytest.mark.parametrize("case", ["tree_rnn", "binary_tree_lstm"])
def test_a_training_step_under_xla_equals_the_step_uncompiled(case):
    inputs, children, heights, _ = batch_inputs(case, CASES[case][3])
    targets = np.random.default_rng(3).normal(size=(*heights.shape, UNITS)).astype("float32")
    losses, changes = [], []
    for jit in (False, True):
        keras.utils.set_random_seed(0)
        model = functional(case)
        before = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse", jit_compile=jit)
        losses.append(model.train_on_batch([inputs, children, heights], targets))
        changes.append([not np.allclose(keras.ops.convert_to_numpy(w), b)
                        for w, b in zip(model.trainable_weights, before)])
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-5)
    assert all(changes[0]) and all(changes[1]), f"a weight got no update: {changes}"


def test_gradients_float64():
    backend.skip_unless_tensorflow("The float64 gradient check (tf.test.compute_gradient)")
    import tensorflow as tf

    case = "binary_tree_lstm"
    trees = [((1, 2), (3,)), 4]
    encoder = make_encoder(case, max_height=2, dtype="float64", return_states=True)
    inputs, children, heights, _ = batch_inputs(case, trees, nodes=6, dtype="float64")
    inputs = np.where(heights[..., None] == 0, inputs, 0.0)  # no NaN in the finite differences: x is read at leaves
    rng = np.random.default_rng(1)
    projections = [tf.constant(rng.normal(size=(*heights.shape, UNITS))) for _ in range(2)]

    def scalar(x, *weights):
        outputs, _ = encoder.stateless_call(list(weights), [], x, children, heights)
        return sum(tf.reduce_sum(y * p) for y, p in zip(outputs, projections))

    weights = [tf.constant(keras.ops.convert_to_numpy(v)) for v in encoder.trainable_variables]
    theoretical, numerical = tf.test.compute_gradient(scalar, [tf.constant(inputs), *weights])
    names = ["inputs"] + [v.name for v in encoder.trainable_variables]
    for name, t, n in zip(names, theoretical, numerical):
        assert np.any(t != 0), f"gradient with respect to {name} is identically zero"
        np.testing.assert_allclose(t, n, rtol=1e-5, atol=1e-6, err_msg=f"gradient with respect to {name}")


def test_config_and_keras_file_round_trip(tmp_path):
    for case in CASES:
        encoder = make_encoder(case, return_states=True)
        serialization.assert_config_round_trip(encoder)
        clone = TreeEncoder.from_config(encoder.get_config())
        assert type(clone.composition) is type(encoder.composition)
        assert clone.composition.get_config() == encoder.composition.get_config()
    case = "child_sum_dependency"
    inputs, children, heights, _ = batch_inputs(case, CASES[case][3])
    serialization.assert_keras_file_round_trip(functional(case), [inputs, children, heights],
                                               str(tmp_path / "encoder.keras"))


@pytest.mark.parametrize("case", ["tree_rnn", "binary_tree_lstm", "child_sum_dependency"])
def test_saved_model_round_trip(case, tmp_path):
    trees = CASES[case][3]
    batches = [batch_inputs(case, trees, nodes=15, seed=1)[:3], batch_inputs(case, trees[:2], nodes=9, seed=2)[:3]]
    saved_model.assert_saved_model_round_trip(functional(case), [list(b) for b in batches], str(tmp_path / "export"))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"composition must be a zoo.layers.TreeComposition .* got <Dense"):
        TreeEncoder(keras.layers.Dense(3), 2)
    for height in (-1, 2.5, True, "3"):
        with pytest.raises(ValueError, match=rf"max_height must be a non-negative int, got {height!r}"):
            TreeEncoder(TreeRNNComposition(UNITS), height)
    with pytest.raises(ValueError, match=r"internal_inputs=True needs a composition that reads x at internal nodes; "
                                         r"TreeRNNComposition reads x at leaves only"):
        TreeEncoder(TreeRNNComposition(UNITS), 2, internal_inputs=True)
    with pytest.raises(ValueError, match=r"return_states must be True or False, got 1"):
        TreeEncoder(TreeRNNComposition(UNITS), 2, return_states=1)


def test_bad_shapes():
    def encoder():
        return TreeEncoder(BinaryTreeLSTMComposition(UNITS), 3)

    with pytest.raises(ValueError, match=r"TreeEncoder expects inputs of shape \(batch, N, input_dim\).*got shape "
                                         r"\(None, 3\)"):
        encoder().build((None, 3), (None, None, 2), (None, None))
    with pytest.raises(ValueError, match=r"TreeEncoder expects children of shape \(batch, N, K\).*got shape "
                                         r"\(None, 5\)"):
        encoder().build((None, 5, 3), (None, 5), (None, 5))
    with pytest.raises(ValueError, match=r"TreeEncoder expects heights of shape \(batch, N\), got shape"):
        encoder().build((None, 5, 3), (None, 5, 2), (None, 5, 1))
    with pytest.raises(ValueError, match=r"same N, got inputs of shape \(2, 5, 3\) and children of shape "
                                         r"\(2, 6, 2\)"):
        encoder()(np.zeros((2, 5, 3), "float32"), np.zeros((2, 6, 2), "int32"), np.zeros((2, 5), "int32"))
    with pytest.raises(ValueError, match=r"same batch, got inputs of shape \(2, 5, 3\) and heights of shape"):
        encoder()(np.zeros((2, 5, 3), "float32"), np.zeros((2, 5, 2), "int32"), np.zeros((3, 5), "int32"))
    with pytest.raises(ValueError, match=r"TreeEncoder expects children as integers .* got dtype float32"):
        encoder()(np.zeros((2, 5, 3), "float32"), np.zeros((2, 5, 2), "float32"), np.zeros((2, 5), "int32"))
    built = BinaryTreeLSTMComposition(UNITS)
    built.build((None, 3), [(None, 2, UNITS)] * 2)
    with pytest.raises(ValueError, match=r"a composition built for input_dim=3 and K=2, but inputs of shape "
                                         r"\(None, 5, 3\) and children of shape \(None, 5, 3\)"):
        TreeEncoder(built, 3).build((None, 5, 3), (None, 5, 3), (None, 5))
    with pytest.raises(ValueError, match=r"inputs must have units=4 features, got input_dim=3"):
        TreeEncoder(TreeRNNComposition(UNITS), 3)(np.zeros((2, 5, 3), "float32"), np.zeros((2, 5, 2), "int32"),
                                                  np.zeros((2, 5), "int32"))
