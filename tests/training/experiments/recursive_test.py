"""The recursive-network experiment on a tiny budget: its runs, the test accuracy by depth, the report and figures."""

import json
import os

import pytest

from training.evaluate import evaluate
from training.experiments import recursive

# Tiny ListOps runs: 128 training lists of depth <= 2, 2 epochs of batches of 16, 40 test lists of depth 2..3.
TINY = {"train_size": 128, "validation_size": 32, "test_size": 40, "max_depth": 2, "max_length": 20,
        "test_min_depth": 2, "test_max_depth": 3, "test_max_length": 40, "batch_size": 16, "epochs": 2,
        "sort_window": 2, "model_options": {"units": 16}}
MODELS = ("tree_rnn", "lstm")
PNG = b"\x89PNG\r\n\x1a\n"


def overrides(model):
    if model == "lstm":
        return TINY
    return {**TINY, "model_options": {"units": 16, "embedding_dim": 16}}


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp("runs"))
    results = {}
    for model in MODELS:
        results.update(recursive.run_models([model], {model: [0]}, work_dir, overrides(model), jit_compile=False))
    return work_dir, results


@pytest.mark.slow
def test_the_runs_record_their_curves_and_test_accuracy_by_depth(tiny_experiment):
    work_dir, results = tiny_experiment
    assert list(results) == list(MODELS)
    for model, (run,) in results.items():
        assert run["model_dir"] == os.path.join(work_dir, "listops", model, "seed0")
        assert [(p["epoch"], p["step"]) for p in run["curve"]] == [(1, 8), (2, 16)]
        assert run["best_validation"] == max(p["validation"]["root_accuracy"] for p in run["curve"])
        by_depth = run["test"]["by_depth"]
        # Every test list counted once, at its depth (2..3); the breakdown adds up to the trainer's own test
        # accuracy of the best checkpoint.
        assert set(by_depth) <= {2, 3} and sum(count for _, count in by_depth.values()) == 40
        assert sum(right for right, _ in by_depth.values()) / 40 == pytest.approx(run["test"]["root_accuracy"])
        assert run["test"]["root_accuracy"] == pytest.approx(
            evaluate(run["model_dir"], "test")["metrics"]["root_accuracy"], abs=1e-6)
        with open(os.path.join(run["model_dir"], recursive.CURVE_FILE)) as f:
            assert json.load(f)["curve"] == run["curve"]
    # The tree model reads a value at every node; the sequence baseline has none.
    assert 0.0 <= results["tree_rnn"][0]["test"]["node_accuracy"] <= 1.0
    assert results["lstm"][0]["test"]["node_accuracy"] is None
    # A rerun finds the run finished: nothing trains again.
    again = recursive.run_models(["lstm"], {"lstm": [0]}, work_dir, overrides("lstm"), jit_compile=False)
    assert again["lstm"][0]["curve"] == results["lstm"][0]["curve"]
    assert again["lstm"][0]["train_seconds"] == results["lstm"][0]["train_seconds"]


@pytest.mark.slow
def test_the_report_has_its_verdict_table_and_figures(tiny_experiment, tmp_path):
    _, results = tiny_experiment
    settings = recursive.experiment_settings(list(results), {m: [0] for m in results}, TINY, jit_compile=False)
    sections = recursive.report_sections(results, settings, str(tmp_path))
    path = recursive.write_report(str(tmp_path / "recursive.md"), recursive.header("cmd", settings, 1.0), sections)
    text = open(path).read()
    assert "Written by `cmd`" in text and "tree_rnn seeds 0; lstm seeds 0" in text
    for title in ("## The target", "## Root accuracy on held-out deeper lists", "## Learning curves",
                  "## Accuracy by depth"):
        assert title in text
    # Without Tree-LSTM runs the target is said to be unmeasured, not met or missed.
    assert "Not measured: no Tree-LSTM runs (`tree_lstm`, `tree_lstm_nodes`) were part of this experiment." in text
    rows = [line for line in text.splitlines() if line.startswith("| Tree-RNN") or line.startswith("| LSTM")]
    assert [row.split(" | ")[0] for row in rows] == ["| Tree-RNN (left-binarised trees) (`tree_rnn`)",
                                                     "| LSTM over the flattened string (`lstm`)"]
    accuracy = 100 * results["tree_rnn"][0]["test"]["root_accuracy"]
    assert f"| {accuracy:.1f}% |" in rows[0]
    assert "test, depth 2 | test, depth 3 |" in text and "lists of depth 2..3" in text
    for name in ("recursive_curves.png", "recursive_depth.png"):
        assert f"]({name})" in text
        assert (tmp_path / name).read_bytes()[:8] == PNG


def test_the_target_verdict_counts_the_seeds_that_met_it():
    def runs(*accuracies):
        return [{"seed": k, "test": {"root_accuracy": a}} for k, a in enumerate(accuracies)]

    assert "(`tree_lstm`): **met** (95.0%, 99.0% over seeds 0, 1)" in recursive.verdict_section(
        {"tree_lstm": runs(0.95, 0.99)})
    assert "**met by 1 of 2 seeds**" in recursive.verdict_section({"tree_lstm": runs(0.949, 0.99)})
    # Each Tree-LSTM variant gets its own verdict; the other models are compared in one line.
    text = recursive.verdict_section({"tree_lstm": runs(0.8), "tree_lstm_nodes": runs(0.97), "lstm": runs(0.6)})
    assert "(`tree_lstm`): **missed** (80.0%" in text and "(`tree_lstm_nodes`): **met** (97.0%" in text
    assert "LSTM over the flattened string 60.0%" in text
