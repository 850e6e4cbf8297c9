import io

import numpy as np
import pytest
import tensorflow as tf

from tests.training.tasks import runs
from training.data import listops
from training.data import trees
from training.tasks.listops import TOKEN_IDS
from training.trainer import Trainer

# Small data: shallow training lists, test lists one to two levels deeper.
SMALL = {"train_size": 256, "validation_size": 32, "test_size": 32, "max_depth": 3, "max_length": 30,
         "test_min_depth": 3, "test_max_depth": 4, "test_max_length": 60, "batch_size": 8, "sort_window": 4}


def make_config(preset="tree_lstm", **overrides):
    return runs.make_config("listops", preset, **{**SMALL, **overrides})


def arrays(batch):
    return tf.nest.map_structure(lambda t: t.numpy(), batch)


def test_splits_are_seeded_disjoint_and_the_test_lists_deeper():
    task, config = make_config()
    examples = task.examples(config)
    assert [len(examples[s]) for s in ("train", "validation", "test")] == [256, 32, 32]
    depths = {split: [listops.depth(e.tree) for e in items] for split, items in examples.items()}
    assert max(depths["train"]) <= 3 and min(depths["test"]) >= 3 and max(depths["test"]) == 4
    assert np.mean(np.array(depths["train"]) < 3) > 0.5  # most training lists are shallower than every test list
    expressions = {split: {e.expression for e in items} for split, items in examples.items()}
    assert not expressions["train"] & expressions["test"] and not expressions["validation"] & expressions["test"]
    assert not expressions["train"] & expressions["validation"]
    assert all(listops.evaluate(e.expression) == e.value for items in examples.values() for e in items)
    again = make_config()[0].examples(make_config()[1])
    assert [e.expression for e in again["train"]] == [e.expression for e in examples["train"]]
    other = task.examples(make_config(seed=1)[1])
    assert [e.expression for e in other["train"]] != [e.expression for e in examples["train"]]


@pytest.mark.parametrize("preset, arity", [("tree_lstm", 2), ("tree_rnn", 2), ("child_sum", 6)])
def test_evaluation_batches_are_the_trees_in_order_padded_to_a_bucket(preset, arity):
    task, config = make_config(preset)
    examples = task.examples(config)["test"]
    seen = 0
    for inputs, (labels, roots), weights in map(arrays, task.dataset(config, "test", 8, pad_to_multiple=16)):
        batch, nodes = inputs["words"].shape
        assert inputs["children"].shape == (batch, nodes, arity) and labels.shape == inputs["heights"].shape
        for row in range(batch):
            if weights[row] == 0:
                continue
            example = examples[seen]
            tree = trees.binarize(example.tree, how="left") if arity == 2 else example.tree
            count = len(trees.postorder(tree))
            assert roots[row] == count - 1
            assert labels[row, roots[row]] == listops.evaluate(example.expression)  # the task's answer at the root
            expected = trees.encode_tree(tree, TOKEN_IDS, count, arity)
            for key in ("words", "children", "heights"):
                np.testing.assert_array_equal(inputs[key][row, :count], expected[key])
            np.testing.assert_array_equal(labels[row, :count], expected["labels"])
            # Padding: words 0, children, heights and labels -1.
            assert np.all(inputs["words"][row, count:] == 0) and np.all(inputs["children"][row, count:] == -1)
            assert np.all(inputs["heights"][row, count:] == -1) and np.all(labels[row, count:] == -1)
            seen += 1
        # N is the power of two that holds the batch's largest tree.
        largest = int(roots[weights > 0].max()) + 1 if weights.any() else 1
        assert nodes == trees.bucket(largest)
    assert seen == 32
    heights = [trees.heights(trees.binarize(e.tree, how="left") if arity == 2 else e.tree)[-1]
               for split in ("train", "validation", "test") for e in task.examples(config)[split]]
    assert task.model_head(config)["max_height"] == max(heights)


def test_training_batches_group_sizes_and_resume_exactly():
    task, config = make_config()
    stream = [arrays(b) for b in task.dataset(config, "train", 8).take(6)]
    for inputs, (labels, roots), weights in stream:
        assert inputs["words"].shape[0] == 8 and np.all(weights == 1)
        assert inputs["words"].shape[1] == trees.bucket(int(roots.max()) + 1)
    # Pre-sorted windows: a batch's trees are closer in size than random draws of 8 (seed 0: spread well below).
    spreads = [roots.max() - roots.min() for _, (_, roots), _ in stream]
    all_sizes = np.concatenate([roots for _, (_, roots), _ in stream])
    assert np.mean(spreads) < 0.6 * (all_sizes.max() - all_sizes.min())
    resumed = [arrays(b) for b in task.dataset(config, "train", 8, skip_batches=3).take(3)]
    for a, b in zip(tf.nest.flatten(stream[3:]), tf.nest.flatten(resumed)):
        np.testing.assert_array_equal(a, b)


def test_the_lstm_baseline_reads_the_flattened_string_one_hot():
    task, config = make_config("lstm")
    examples = task.examples(config)["test"]
    inputs, values = task.split_data(config)["test"]
    tokens = listops.VOCABULARY
    assert [tokens[i] for i in inputs[0].argmax(axis=1)] == examples[0].expression.split()
    np.testing.assert_array_equal(values, [e.value for e in examples])
    x, y, w = next(iter(task.dataset(config, "test", 4)))
    model = task.build_model(config)
    assert model(x).shape == (4, 10)
    assert task.loss(config, y, model(x)).shape == (4,)


def test_loss_is_the_roots_cross_entropy_plus_the_weighted_mean_over_labelled_nodes():
    task, config = make_config(node_loss_weight=0.5)
    labels = np.array([[3, -1, 7, 1, -1], [2, 5, -1, -1, -1]], np.int32)
    roots = np.array([3, 1], np.int32)
    logits = np.random.default_rng(0).normal(size=(2, 5, 10)).astype("float32")
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    ce = lambda b, n: -log_p[b, n, labels[b, n]]  # noqa: E731
    expected = [ce(0, 3) + 0.5 * (ce(0, 0) + ce(0, 2) + ce(0, 3)) / 3, ce(1, 1) + 0.5 * (ce(1, 0) + ce(1, 1)) / 2]
    np.testing.assert_allclose(task.loss(config, (labels, roots), logits).numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(task.loss(make_config()[1], (labels, roots), logits).numpy(),
                               [ce(0, 3), ce(1, 1)], rtol=1e-5)
    metrics = {k: v.numpy() for k, v in task.metrics(config, (labels, roots), logits).items()}
    predicted = logits.argmax(-1)
    np.testing.assert_array_equal(metrics["root_correct"], [predicted[0, 3] == 1, predicted[1, 1] == 5])
    np.testing.assert_array_equal(metrics["node_labelled"], [3, 2])
    summary = task.summarize(config, {"loss": 1.0, "root_correct": 0.25, "root_labelled": 0.5, "node_correct": 3.0,
                                      "node_labelled": 4.0})
    assert summary == {"loss": 1.0, "root_accuracy": 0.5, "node_accuracy": 0.75}


def test_bad_configs_are_errors_that_name_the_value():
    task, config = make_config(max_height=4)
    with pytest.raises(ValueError, match=r"train tree \d+ has height \d+, more than max_height=4.*expected max_height >="):
        task.data(config)
    for overrides, message in [
        ({"binarize": "middle"}, r"binarize must be 'left' or 'right', got 'middle'"),
        ({"node_loss_weight": -1.0}, r"node_loss_weight must be a number >= 0"),
        ({"test_min_depth": 5, "test_max_depth": 4}, r"test_min_depth must be <= test_max_depth, got 5 > 4"),
        ({"max_height": -1}, r"max_height must be an int >= 0 or None, got -1"),
        ({"list_p": 1.0}, r"list_p must be a float in \[0, 1\), got 1.0"),
        ({"model": "seq2seq"}, r"model must be a tree model preset .* or a StackedRNN preset such as 'lstm'"),
        ({"model_options": {"num_classes": 3}}, r"model_options must not set \['num_classes'\]"),
        ({"max_args": 1}, r"max_args must be >= 2"),
    ]:
        task, config = make_config(**overrides)
        with pytest.raises(ValueError, match=message):
            task.check_config(config)


def train(config, model_dir, jit_compile=False):
    task = runs.tasks.get("listops")
    trainer = Trainer(task, config, model_dir, jit_compile=jit_compile, progress="lines", out=io.StringIO())
    trainer.fit()
    return trainer


@pytest.mark.slow
def test_training_under_jit_compile_takes_the_same_steps(tmp_path):
    """Three steps with and without XLA from the same seed: the same weights, to float32 round-off, and not the
    initial ones."""
    _, config = make_config(steps=3, model_options={"units": 8, "embedding_dim": 8}, train_size=64, validation_size=8,
                            test_size=8, max_depth=2, test_min_depth=2, test_max_depth=2, max_length=15,
                            test_max_length=15)
    plain = train(config, str(tmp_path / "plain"))
    compiled = train(config, str(tmp_path / "jit"), jit_compile=True)
    for a, b in zip(plain.model.weights, compiled.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-4)
    initial = Trainer(runs.tasks.get("listops"), config, str(tmp_path / "initial"), out=io.StringIO())
    assert not np.allclose(plain.model.weights[0].numpy(), initial.model.weights[0].numpy())


@pytest.mark.slow
def test_a_tree_lstm_learns_listops_beyond_the_majority_value(tmp_path):
    """The binary Tree-LSTM, 3 epochs over 2,000 lists of depth <= 3, tested on lists of depth 3..4. Seed 0 measured
    0.36 test root accuracy (the majority value 0.115); 0.25 leaves room for other platforms' round-off while staying
    twice the majority value."""
    task, config = make_config(train_size=2000, validation_size=200, test_size=200, epochs=3, batch_size=32,
                               sort_window=8, test_max_length=80, max_length=40)
    trainer = runs.train_best(task, config, str(tmp_path / "run"))
    accuracy = trainer.evaluate("test")["root_accuracy"]
    assert task.chance_levels(config)["root_accuracy"] < 0.15
    assert accuracy > 0.25, accuracy
