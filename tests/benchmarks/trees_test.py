"""The trees benchmark (`benchmarks.trees`): its two methods compute the same thing (loss and gradients on the same
trees), its trees are what it says, a tiny run writes its section, bad flags are refused. No timing assertions."""

import subprocess
import sys

import numpy as np
import pytest

from benchmarks import trees as bench
from training.data import trees

TINY = {"input_dim": 3, "units": 4, "vocabulary": 10}


def tiny_batch(seed=0):
    # 3 trees of 1..6 leaves: a single leaf can come up (a tree with no internal node), N = 16.
    return bench.tree_batch(seed, 3, 1, 6, TINY["vocabulary"])


@pytest.mark.parametrize("composition", sorted(bench.COMPOSITIONS))
def test_level_wise_and_recursion_give_the_same_loss_and_gradients(composition):
    batch = tiny_batch()
    parts = bench.Parts(composition, batch, **TINY, seed=1)
    arrays = [batch[key] for key in ("words", "children", "heights", "labels")]
    level_loss, level_grads = bench.dense_gradients(lambda: bench.levelwise_loss(parts, *arrays), parts.variables)
    node_loss, node_grads = bench.dense_gradients(lambda: bench.recursive_loss(parts, batch), parts.variables)
    np.testing.assert_allclose(float(level_loss), float(node_loss), atol=1e-5)
    # The loss itself against NumPy: softmax cross-entropy of the head on every labelled node's h, averaged.
    h = parts.encoder(parts.embedding(batch["words"]), batch["children"], batch["heights"]).numpy()
    kernel, bias = (w.numpy() for w in parts.head.weights)
    logits = h @ kernel + bias
    log_p = logits - logits.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    labelled = batch["labels"] >= 0
    expected = -np.mean(np.take_along_axis(log_p[labelled], batch["labels"][labelled][:, None], axis=-1))
    np.testing.assert_allclose(float(level_loss), expected, atol=1e-5)
    assert len(level_grads) == len(node_grads) == len(parts.variables)
    for variable, a, b in zip(parts.variables, level_grads, node_grads):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-5, err_msg=variable.path)
        assert np.abs(a.numpy()).max() > 0, f"{variable.path}: no gradient reaches it"


def test_the_training_steps_take_the_same_first_step():
    # From the same weights, one level-wise step (with and without XLA) and one recursive step give the same loss.
    batch = tiny_batch(seed=2)
    losses = {}
    for name in ("level-wise", "level-wise, XLA", bench.EAGER, bench.GRAPH):
        parts = bench.Parts("binary_tree_lstm", batch, **TINY, seed=3)
        losses[name] = float(bench.make_steps(parts, batch)[name]())
    np.testing.assert_allclose(list(losses.values()), losses["level-wise"], atol=1e-5, err_msg=str(losses))


def test_the_trees_are_random_binary_trees_of_the_asked_size():
    batch = bench.tree_batch(0, 25, 20, 50, 1000)
    real = batch["heights"] >= 0
    leaves = (batch["heights"] == 0).sum(axis=1)
    assert batch["words"].shape == (25, trees.bucket(int(real.sum(axis=1).max())))
    assert ((leaves >= 20) & (leaves <= 50)).all() and len(set(leaves)) > 5, leaves
    np.testing.assert_array_equal(real.sum(axis=1), 2 * leaves - 1)  # binary: n leaves, n - 1 internal nodes
    internal = batch["heights"] > 0
    assert (batch["children"][internal] >= 0).all()  # every internal node has two children
    assert (batch["words"][batch["heights"] == 0] >= 1).all() and (batch["words"][internal] == 0).all()
    assert ((batch["labels"][real] >= 0) & (batch["labels"][real] < bench.CLASSES)).all()
    # Neither chains nor balanced: heights between log2(leaves) and leaves - 1.
    heights = batch["heights"].max(axis=1)
    assert (heights > np.log2(leaves)).all() and (heights < leaves - 1).all(), heights
    np.testing.assert_array_equal(bench.tree_batch(0, 25, 20, 50, 1000)["children"], batch["children"])  # seeded


@pytest.mark.slow
def test_a_tiny_run_writes_its_section(tmp_path):
    output = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.trees", "--batch=2", "--min_leaves=2", "--max_leaves=4", "--input_dim=3",
         "--units=4", "--vocabulary=10", "--compositions=binary_tree_lstm,tree_rnn", "--rounds=1",
         f"--output={output}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert "<!-- benchmarks.trees -->" in text and "<!-- /benchmarks.trees -->" in text
    header = "| composition | run | ms/batch | trees/s | eager recursion / this | per-round range | target | verdict |"
    assert header in text
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in text.splitlines()
            if line.startswith(("| binary Tree-LSTM |", "| Tree-RNN |"))]
    runs = [(row[0], row[1]) for row in rows]
    assert runs == [
        ("binary Tree-LSTM", "level-wise"), ("binary Tree-LSTM", "level-wise, XLA"),
        ("binary Tree-LSTM", "recursion, eager"), ("binary Tree-LSTM", "recursion, tf.function"),
        ("binary Tree-LSTM", "recursion, tf.function, traced per batch (one new trace and its first run, timed once)"),
        ("Tree-RNN", "level-wise"), ("Tree-RNN", "level-wise, XLA"), ("Tree-RNN", "recursion, eager"),
    ], text
    for row in rows:
        assert float(row[2].replace(",", "")) > 0 and float(row[3].replace(",", "")) > 0, row
        if row[1].startswith("level-wise"):
            low, high = (float(r) for r in row[5].split("–"))
            assert 0 < low <= float(row[4]) <= high, row  # the median ratio lies within the rounds' range
            assert row[6] == ">= 10x" and row[7] in ("meets", "**misses**"), row
    assert "Command: `python -m benchmarks.trees --batch=2 --min_leaves=2" in text
    assert "Why: the recursion composes only the" in text and "a new batch is a new trace" in text


@pytest.mark.parametrize("flag, message", [
    ("--compositions=binary_tree_lstm,lstm",
     "--compositions must name compositions of binary_tree_lstm, tree_rnn, child_sum, got lstm"),
    ("--graph_baseline=treelstm", "--graph_baseline must name compositions of binary_tree_lstm, tree_rnn, child_sum, "
                                  "got treelstm"),
    ("--min_leaves=9", "--min_leaves must be <= --max_leaves, got --min_leaves=9 and --max_leaves=5"),
    ("--units=0", "flag --units=0: 0 is not a positive integer"),
])
def test_bad_flags_are_refused(flag, message):
    result = subprocess.run([sys.executable, "-m", "benchmarks.trees", "--max_leaves=5", flag, "--output="],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stdout[-3000:]  # a usage error
    assert message in result.stderr, result.stderr[-3000:]
