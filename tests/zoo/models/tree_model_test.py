import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import saved_model
from tests.helpers import serialization
from training.data import trees
from zoo.models.tree.tree_model import COMPOSITIONS
from zoo.models.tree.tree_model import TreeModel
from zoo.models.tree.tree_model import root_rows
from zoo.models.tree.tree_presets import TREE_PRESETS

VOCAB, CLASSES = 9, 3
TOKEN_IDS = {word: index + 1 for index, word in enumerate("abcdefgh")}
LINES = ("(1 (0 a) (2 (1 b) (0 c)))", "(2 (1 d) (0 (2 e) (1 (0 f) (2 g))))", "(0 h)", "(1 (2 a) (0 b) (1 c))")


def batch(lines=LINES, max_nodes=16, how="left", binary=True):
    parsed = [trees.parse_tree(line) for line in lines]
    if binary:
        parsed = [trees.binarize(tree, how=how) for tree in parsed]
    return parsed, trees.encode_batch(parsed, TOKEN_IDS, max_nodes=max_nodes, max_children=2 if binary else 3)


def model_inputs(encoded):
    return {key: encoded[key] for key in ("words", "children", "heights")}


def tree_model(composition="binary_tree_lstm", seed=0, **overrides):
    keras.utils.set_random_seed(seed)
    arguments = dict(vocab_size=VOCAB, num_classes=CLASSES, composition=composition, units=4,
                     embedding_dim=4 if composition == "tree_rnn" else 3, max_height=6) | overrides
    return TreeModel(**arguments)


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def recursive_logits(model, tree, arity):
    """The logits of `tree`'s root computed node by node: a Python recursion that applies the model's composition to
    one node at a time, its children's states computed first (the unbatched way of Tai et al.'s reference code)."""
    composition = model.encoder.composition
    table = numpy(model.embedding.embeddings)

    def states(node):
        if node.is_leaf:
            x = table[TOKEN_IDS[node.word]][None]
            children = [np.zeros((1, arity, composition.units), "float32") for _ in composition.state_size]
            mask = np.zeros((1, arity), bool)
        else:
            x = np.zeros((1, table.shape[1]), "float32")
            below = [states(child) for child in node.children]
            children = [np.zeros((1, arity, composition.units), "float32") for _ in composition.state_size]
            for slot, child_states in enumerate(below):
                for index, state in enumerate(child_states):
                    children[index][0, slot] = state[0]
            mask = np.arange(arity)[None] < len(below)
        return [numpy(s) for s in composition.compose(composition.project_inputs(x), children, children_mask=mask)]

    h = states(tree)[0]
    return h @ numpy(model.readout.kernel) + numpy(model.readout.bias)


@pytest.mark.parametrize("composition", sorted(COMPOSITIONS))
def test_root_logits_equal_a_node_by_node_recursion(composition):
    binary = composition != "child_sum_tree_lstm"
    parsed, encoded = batch(binary=binary)
    model = tree_model(composition)
    logits = numpy(model(model_inputs(encoded)))
    assert logits.shape == (len(LINES), 16, CLASSES)
    roots = numpy(root_rows(logits, encoded["roots"]))
    assert roots.shape == (len(LINES), CLASSES)
    for index, tree in enumerate(parsed):
        np.testing.assert_allclose(roots[index], recursive_logits(model, tree, 2 if binary else 3)[0], atol=1e-5)
    # More padding changes nothing at the real nodes.
    _, wider = batch(binary=binary, max_nodes=32)
    wide_logits = numpy(model(model_inputs(wider)))
    for index, tree in enumerate(parsed):
        count = len(trees.postorder(tree))
        np.testing.assert_allclose(wide_logits[index, :count], logits[index, :count], atol=1e-5)


def test_a_tree_taller_than_max_height_is_not_composed_to_the_root():
    """What max_height means: the tree of height 3 is cut off with max_height=2 (its root keeps a zero state, so its
    logits are the read-out bias), which is why the pipeline must keep taller trees out."""
    parsed, encoded = batch()
    model = tree_model(max_height=2)
    roots = numpy(root_rows(model(model_inputs(encoded)), encoded["roots"]))
    np.testing.assert_allclose(roots[1], numpy(model.readout.bias), atol=1e-6)
    assert trees.heights(parsed[1])[-1] == 3 and trees.heights(parsed[0])[-1] == 2
    np.testing.assert_allclose(roots[0], recursive_logits(model, parsed[0], 2)[0], atol=1e-5)


def test_dropout_acts_only_in_training():
    _, encoded = batch()
    model = tree_model(dropout=0.5)
    inputs = model_inputs(encoded)
    np.testing.assert_allclose(numpy(model(inputs)), numpy(model(inputs)), atol=0)
    assert not np.allclose(numpy(model(inputs, training=True)), numpy(model(inputs)), atol=1e-4)


def test_presets_build_and_config_round_trip():
    _, encoded = batch()
    for name, preset in TREE_PRESETS.items():
        assert not {"vocab_size", "num_classes"} & set(preset), f"{name} holds sizes that come from the data"
        model = TreeModel(vocab_size=VOCAB, num_classes=CLASSES, max_height=6, **preset)
        serialization.assert_config_round_trip(model)
        assert numpy(model(model_inputs(encoded))).shape == (len(LINES), 16, CLASSES)
    assert TREE_PRESETS["tree_lstm"]["units"] == 150  # Tai et al. 2015, sentiment


def test_keras_file_round_trip(tmp_path):
    _, encoded = batch()
    model = tree_model("child_sum_tree_lstm")
    serialization.assert_keras_file_round_trip(model, model_inputs(encoded), str(tmp_path / "m.keras"), atol=1e-6)


def test_saved_model_with_a_dict_signature_in_both_loaders(tmp_path):
    model = tree_model()
    _, small = batch(LINES[:2], max_nodes=8)
    _, large = batch(max_nodes=16)
    model(model_inputs(small))
    signature = {
        "words": tf.TensorSpec([None, None], tf.int32, name="words"),
        "children": tf.TensorSpec([None, None, 2], tf.int32, name="children"),
        "heights": tf.TensorSpec([None, None], tf.int32, name="heights"),
    }
    path = str(tmp_path / "tree")
    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint("serve", lambda inputs: model(inputs), input_signature=[signature])
    archive.write_out(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    for encoded in (small, large):
        inputs = model_inputs(encoded)
        expected = numpy(model(inputs))
        np.testing.assert_allclose(reloaded.serve(inputs).numpy(), expected, atol=1e-5)
        (logits,) = saved_model.load_with_session(path, inputs).values()
        np.testing.assert_allclose(logits, expected, atol=1e-5)


def test_jit_compiled_call_matches():
    _, encoded = batch()
    model = tree_model()
    inputs = {key: tf.constant(value) for key, value in model_inputs(encoded).items()}
    compiled = tf.function(lambda x: model(x), jit_compile=True)
    np.testing.assert_allclose(compiled(inputs).numpy(), numpy(model(inputs)), atol=1e-5)


def test_bad_arguments_and_calls():
    with pytest.raises(ValueError, match=r"composition must be one of .*got 'lstm'"):
        TreeModel(VOCAB, CLASSES, composition="lstm")
    with pytest.raises(ValueError, match=r"max_height must be a non-negative int, got -1"):
        TreeModel(VOCAB, CLASSES, max_height=-1)
    with pytest.raises(ValueError, match=r"embedding_dim must equal units=4 \(or be None\), got embedding_dim=3"):
        TreeModel(VOCAB, CLASSES, composition="tree_rnn", units=4, embedding_dim=3)
    with pytest.raises(ValueError, match=r"num_classes must be a positive int, got 0"):
        TreeModel(VOCAB, 0)
    _, encoded = batch()
    with pytest.raises(ValueError, match=r"takes a dict with the keys \['words', 'children', 'heights'\].*\['words'\]"):
        tree_model()({"words": encoded["words"]})
