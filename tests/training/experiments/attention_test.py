"""The attention experiment on a tiny budget: its runs, learning curves, report and heatmaps."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

from training.experiments import attention
from training.experiments import attention_map

# Tiny runs: a few steps on a few hundred pairs, so that the whole pipeline runs in seconds per run.
TINY = {"train_size": 128, "validation_size": 16, "test_size": 24, "batch_size": 16, "steps": 8,
        "checkpoint_every_steps": 4, "beam_size": 2}


def test_nearer_end_distance_is_the_filler_on_the_shorter_side():
    _, config = attention.run_config_for("dates_long", "none", 3, {"train_size": 10, "validation_size": 5,
                                                                   "test_size": 40})
    distances = attention.nearer_end_distances(config)
    _, short = attention.run_config_for("dates", "none", 3, {"train_size": 10, "validation_size": 5, "test_size": 40})
    from training import tasks

    long_sources = tasks.get("translation").corpus(config).lines["test"][0]
    dates = tasks.get("translation").corpus(short).lines["test"][0]
    assert len(distances) == 40
    for distance, source, date in zip(distances, long_sources, dates):
        before, after = source.split(f" {date} ")
        assert distance == min(len(before), len(after)) + 1  # the space next to the date counts
    assert all(distance == 0 for distance in attention.nearer_end_distances(short))


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp("runs"))
    results = attention.run_experiment(["dates", "dates_long"], ["none", "bahdanau"], 1, work_dir, TINY,
                                       eval_every_steps=3)
    return work_dir, results


@pytest.mark.slow
def test_the_experiment_trains_every_run_records_its_curve_and_resumes_without_training_again(tiny_experiment):
    work_dir, results = tiny_experiment
    assert {v: set(r) for v, r in results.items()} == {"dates": {"none", "bahdanau"},
                                                         "dates_long": {"none", "bahdanau"}}
    for variant, by_attention in results.items():
        for name, (run,) in by_attention.items():
            assert run["steps"] == 8
            # Measured every 3 steps, and at the end of the run.
            assert [step for step, _ in run["curve"]] == [3, 6, 8]
            assert all(0.0 <= value <= 100.0 for _, value in run["curve"])
            assert len(run["correct_greedy"]) == TINY["test_size"]
            assert run["exact_match_greedy"] == pytest.approx(100.0 * np.mean(run["correct_greedy"]))
            assert 0.0 <= run["exact_match_beam"] <= 100.0 and run["train_seconds"] > 0
            reached = [step for step, value in run["curve"] if value >= attention.TARGET]
            assert run["steps_to_target"] == (reached[0] if reached else None)
            with open(os.path.join(work_dir, variant, name, "seed0", attention.CURVE_FILE)) as f:
                assert json.load(f)["curve"] == run["curve"]
    # A rerun finds every run finished: nothing trains again, the curve and the scores stay.
    again = attention.train_one("dates", "bahdanau", 0, work_dir, TINY, eval_every_steps=3)
    first = results["dates"]["bahdanau"][0]
    assert again["curve"] == first["curve"] and again["train_seconds"] == first["train_seconds"]
    assert again["exact_match_greedy"] == first["exact_match_greedy"]
    # Longer: it goes on from step 8 and measures at 9 and 12.
    longer = attention.train_one("dates", "bahdanau", 0, work_dir, {**TINY, "steps": 12}, eval_every_steps=3)
    assert [step for step, _ in longer["curve"]] == [3, 6, 8, 9, 12]


@pytest.mark.slow
def test_the_report_has_a_row_per_variant_and_attention_and_its_figures(tiny_experiment, tmp_path):
    _, results = tiny_experiment
    settings = attention.experiment_settings(["dates", "dates_long"], ["none", "bahdanau"], 1, TINY, 3)
    sections = attention.report_sections(results, settings, str(tmp_path))
    path = attention.write_report(str(tmp_path / "attention.md"), attention.header("cmd", settings, 1.0), sections)
    text = open(path).read()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "%" in line and "---" not in line]
    table = [row for row in rows if row.startswith(("| dates", "| long dates"))]
    assert [row.split(" | ")[:2] for row in table] == [
        ["| dates (a date alone)", "none (fixed vector)"], ["| dates (a date alone)", "Bahdanau (additive)"],
        ["| long dates (a date inside filler words)", "none (fixed vector)"],
        ["| long dates (a date inside filler words)", "Bahdanau (additive)"]]
    first = results["dates"]["none"][0]
    assert f"| {first['exact_match_greedy']:.1f}% | {first['exact_match_beam']:.1f}% |" in table[0]
    distance_rows = [row for row in rows if "(n=" in row]
    assert [row.split(" | ")[0] for row in distance_rows] == ["| none (fixed vector)", "| Bahdanau (additive)"]
    counts = [int(n) for row in distance_rows[:1] for n in re.findall(r"\(n=(\d+)\)", row)]
    assert sum(counts) == TINY["test_size"]  # every test example in one bucket
    assert "seeds 0: the runs trained for" in text and "8 steps for every run" in text
    assert "filler words on either side" in text
    assert "## What it shows" in text and "The capacity argument, measured: without attention" in text
    for name in ("attention_curves.png", "attention_dates.png", "attention_dates_long.png"):
        assert f"]({name})" in text
        with open(tmp_path / name, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_the_heatmap_has_a_row_per_output_token_and_a_column_per_source_token(tiny_experiment, tmp_path):
    work_dir, _ = tiny_experiment
    run_dir = os.path.join(work_dir, "dates", "bahdanau", "seed0")
    task, config, model = attention_map.load_run(run_dir)
    found = attention_map.alignment_matrix(task, config, model, "25 November 2026", beam_size=2)
    assert found["source_tokens"] == list("25 November 2026")
    matrix = found["matrix"]
    assert matrix.shape == (len(found["output_tokens"]), 16)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-5)  # each step's alignment is a distribution
    assert found["translation"] == "".join(t for t in found["output_tokens"] if t != "<eos>")
    # The command: a PNG, and a clear error for a run without attention.
    out = tmp_path / "map.png"
    command = [sys.executable, "-m", "training.experiments.attention_map", f"--model_dir={run_dir}",
               "--source=25 November 2026", f"--out={out}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size < 200_000
    plain = os.path.join(work_dir, "dates", "none", "seed0")
    with pytest.raises(ValueError, match=r"has no attention \(attention='none'\): there is no alignment to draw"):
        attention_map.load_run(plain)
    with pytest.raises(ValueError, match=r"no run in .* \(no config.json\)"):
        attention_map.load_run(str(tmp_path))
