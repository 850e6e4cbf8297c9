"""The explicit-memory experiment on a tiny budget: its runs, curves, report and figures."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from training.experiments import memory
from training.experiments import memory_figures

# Tiny copy runs: lengths 1..5, 2 epochs of 64 sequences (2 steps each), a few validation and test sequences.
NTM_TINY = {"min_length": 1, "max_length": 5, "validation_size": 16, "test_size": 16}
SEQUENCES, VALIDATE_EVERY, LENGTHS = 128, 64, (3, 10)
# Tiny MemN2N runs: 60 generated questions per task, 2 epochs.
BABI_TINY = {"train_questions": 60, "test_questions": 30, "epochs": 2, "batch_size": 16}
PNG = b"\x89PNG\r\n\x1a\n"


def test_the_ntm_figure_shows_the_touched_locations_as_one_run_around_the_circular_memory():
    weights = np.zeros((5, 128))
    weights[:, [126, 127, 0, 1]] = 0.25  # a head that wrapped from location 0 to 127
    found = {"write": weights, "read": np.zeros((5, 128))}
    assert memory_figures.touched_locations(found).tolist() == [124, 125, 126, 127, 0, 1, 2, 3]
    found["read"][2, 60] = 0.5  # two untouched runs, 2..59 and 61..125: the figure starts after the longer
    assert memory_figures.touched_locations(found, margin=0).tolist() == [126, 127, *range(61)]
    assert memory_figures.touched_locations({"write": np.full((2, 8), 0.125), "read": np.zeros((2, 8))}).tolist() \
        == list(range(8))


def test_a_jump_of_the_copy_curve_is_named_after_the_curve_was_below_one_bit():
    def curve(*errors):
        return [{"sequences": 8000 * (i + 1), "validation": {"bit_errors": e}} for i, e in enumerate(errors)]

    # The first run went to 0.35 then back to chance; a curve that is high throughout, or rises by less, has none.
    assert memory._jump(curve(25.3, 1.17, 27.9, 0.53, 0.35, 32.6)) == "0.35 at 40,000 sequences, 32.60 at 48,000"
    assert memory._jump(curve(40.0, 20.0, 35.0, 2.0)) is None
    assert memory._jump(curve(0.5, 9.0, 0.0)) is None


@pytest.fixture(scope="module")
def tiny_experiment(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp("runs"))
    ntm = memory.run_ntm([0], work_dir, SEQUENCES, VALIDATE_EVERY, LENGTHS, NTM_TINY, jit_compile=False)
    babi = memory.run_babi([0], work_dir, BABI_TINY, jit_compile=False)
    return work_dir, ntm, babi


@pytest.mark.slow
def test_the_runs_record_their_curves_test_lengths_and_resume_without_training_again(tiny_experiment):
    work_dir, ntm, babi = tiny_experiment
    assert set(ntm) == {"ntm", "lstm"}
    for name, (run,) in ntm.items():
        assert run["model_dir"] == os.path.join(work_dir, "ntm_copy", name, "seed0")
        # Validated after each epoch of 64 sequences (2 steps of 32).
        assert [(p["epoch"], p["step"], p["sequences"]) for p in run["curve"]] == [(1, 2, 64), (2, 4, 128)]
        errors = [p["validation"]["bit_errors"] for p in run["curve"]]
        assert run["best_validation"] == min(errors)
        below = [p["sequences"] for p in run["curve"] if p["validation"]["bit_errors"] < memory.CONVERGED]
        assert run["sequences_to_converge"] == (below[0] if below else None)
        assert set(run["test"]) == set(LENGTHS)
        # Bit errors per sequence: between 0 and every bit of the answer (8 bits per vector).
        assert all(0.0 <= run["test"][n] <= 8 * n for n in LENGTHS) and run["train_seconds"] > 0
        assert all(p["linear_start"] is None for p in run["curve"])
        with open(os.path.join(run["model_dir"], memory.CURVE_FILE)) as f:
            assert json.load(f)["curve"] == run["curve"]
        # The evaluation at length 10 is what training.evaluate writes for that override.
        with open(os.path.join(run["model_dir"], "evaluation_test_eval_max_length=10_eval_min_length=10.json")) as f:
            assert json.load(f)["metrics"]["bit_errors"] == run["test"][10]
    # The baseline of about the NTM's size (the ntm task's docstring: 63,368 against 62,536).
    assert (ntm["ntm"][0]["parameters"], ntm["lstm"][0]["parameters"]) == (62536, 63368)
    (run,) = babi
    assert [p["epoch"] for p in run["curve"]] == [1, 2]
    assert {"error_1", "error_2", "error_6", "mean_error", "failed_tasks"} <= set(run["test"])
    assert run["test"]["mean_error"] == pytest.approx(np.mean([run["test"][f"error_{n}"] for n in (1, 2, 6)]))
    assert all(p["linear_start"] in (0.0, 1.0) for p in run["curve"])
    ended = [p["epoch"] for p in run["curve"] if p["linear_start"] == 0.0]
    assert run["linear_start_ended"] == (ended[0] if ended else None)
    # A rerun finds the run finished: nothing trains again; a longer one goes on from where it stopped.
    again = memory.train_run("ntm", "copy", 0, ntm["ntm"][0]["model_dir"],
                             memory.ntm_overrides("ntm", SEQUENCES, VALIDATE_EVERY, NTM_TINY))
    assert again["curve"] == ntm["ntm"][0]["curve"] and again["train_seconds"] == ntm["ntm"][0]["train_seconds"]
    longer = memory.train_run("ntm", "copy", 0, ntm["ntm"][0]["model_dir"],
                              memory.ntm_overrides("ntm", 3 * VALIDATE_EVERY, VALIDATE_EVERY, NTM_TINY))
    assert [p["sequences"] for p in longer["curve"]] == [64, 128, 192]
    with pytest.raises(ValueError, match=r"sequences \(100\) must be a multiple of validate_every \(64\)"):
        memory.ntm_overrides("ntm", 100, 64)


@pytest.mark.slow
def test_the_report_has_its_tables_verdicts_and_figures(tiny_experiment, tmp_path):
    _, ntm, babi = tiny_experiment
    settings = memory.experiment_settings([0], [0], SEQUENCES, VALIDATE_EVERY, LENGTHS, NTM_TINY, BABI_TINY, False)
    sections = memory.report_sections(ntm, babi, settings, str(tmp_path))
    path = memory.write_report(str(tmp_path / "memory.md"), memory.header("cmd", settings, 1.0), sections)
    text = open(path).read()
    assert "Written by `cmd`" in text and "copy seeds 0; bAbI seeds 0" in text
    for title in ("## NTM against LSTM on copy", "## Copy learning curves", "## MemN2N on generated bAbI",
                  "## MemN2N learning curves", "## What the memories do"):
        assert title in text
    rows = [line for line in text.splitlines() if line.startswith("| NTM") or line.startswith("| LSTM")]
    assert [row.split(" | ")[0] for row in rows] == ["| NTM (LSTM-100 controller, 128 x 20 memory)",
                                                     "| LSTM, 120 units"]
    # One cell per test length, each the run's bit errors (one seed: no spread).
    cells = rows[0].split(" | ")
    assert cells[1] == "62,536" and cells[4:6] == [f"{ntm['ntm'][0]['test'][n]:.2f}" for n in LENGTHS]
    assert "length 3 (trained) | length 10 |" in text and "At length 10, twice the longest" in text
    qa_rows = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| QA")}
    assert list(qa_rows) == ["| QA1", "| QA2", "| QA6"]
    assert f"| {100 * babi[0]['test']['error_2']:.1f}% |" in qa_rows["| QA2"] and qa_rows["| QA2"].endswith("11.4% |")
    assert "| 1 of these (11 of all 20) |" in text  # the paper's QA2 (11.4%) failed
    met = int(babi[0]["test"]["error_1"] <= memory.QA1_TARGET)
    assert f"Target on generated QA1, error <= 1%: met by {met} of 1 seeds" in text
    for name in ("memory_ntm_curves.png", "memory_babi_curves.png", "memory_ntm_copy.png",
                 "memory_babi_attention.png"):
        assert f"]({name})" in text
        assert (tmp_path / name).read_bytes()[:8] == PNG


@pytest.mark.slow
def test_the_ntm_figure_draws_weightings_over_time_and_the_memory_after_the_writes(tiny_experiment, tmp_path):
    work_dir, ntm, _ = tiny_experiment
    task, config, model = memory_figures.load_run(ntm["ntm"][0]["model_dir"])
    found = memory_figures.ntm_trace(config, model, length=7, seed=3)
    steps = 2 * 7 + 1
    assert found["inputs"].shape == (steps, 9) and found["outputs"].shape == (steps, 8)
    assert found["write"].shape == (steps, 128) and found["read"].shape == (steps, 128)
    # Each step's weighting is a distribution over the 128 locations.
    np.testing.assert_allclose(found["write"].sum(axis=1), 1.0, atol=1e-4)
    np.testing.assert_allclose(found["read"].sum(axis=1), 1.0, atol=1e-4)
    assert found["delimiter"] == 7 and found["inputs"][7, -1] == 1.0 and found["memory"].shape == (128, 20)
    # The traced outputs are the model's own: sigmoid of its logits on the same sequence.
    logits = np.asarray(model(found["inputs"][None]))[0]
    np.testing.assert_allclose(found["outputs"], 1.0 / (1.0 + np.exp(-logits)), atol=1e-4)
    answer = found["mask"] > 0
    assert found["bit_errors"] == np.sum((logits[answer] > 0) != (found["targets"][answer] > 0.5))
    # The memory drawn is the memory after the delimiter's step: recompute it from the trace.
    traced = model.trace(found["inputs"][None])
    np.testing.assert_allclose(found["memory"], np.asarray(traced["memory"])[0, 7], atol=1e-6)
    locations = memory_figures.touched_locations(found)
    assert len(set(locations.tolist())) == len(locations) and set(locations.tolist()) <= set(range(128))
    hot = np.nonzero(np.maximum(found["write"].max(axis=0), found["read"].max(axis=0)) > memory_figures.TOUCHED)[0]
    assert set(hot.tolist()) <= set(locations.tolist())  # every location a head weighted is drawn
    out = tmp_path / "ntm.png"
    done = subprocess.run([sys.executable, "-m", "training.experiments.memory_figures",
                           f"--model_dir={ntm['ntm'][0]['model_dir']}", "--length=7", f"--output={out}"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert "one sequence of 7 vectors" in done.stdout and out.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match=r"has no explicit memory to draw \(no `trace`\)"):
        memory_figures.load_run(ntm["lstm"][0]["model_dir"])
    with pytest.raises(ValueError, match=r"no run in .* \(no config.json\)"):
        memory_figures.load_run(str(tmp_path))
    with pytest.raises(ValueError, match=r"length must be a positive int"):
        memory_figures.ntm_trace(config, model, length=0)


@pytest.mark.slow
def test_the_babi_figure_draws_each_hops_attention_over_the_storys_sentences(tiny_experiment, tmp_path):
    _, _, babi = tiny_experiment
    task, config, model = memory_figures.load_run(babi[0]["model_dir"])
    model.set_linear_start(False)  # the paper's model: each hop's attention a softmax over the sentences
    found = memory_figures.babi_attention(task, config, model, qa=2, example=1)
    data = task.data(config)
    chosen = [e for e in data.examples["test"] if e.task == 2][1]
    assert found["sentences"] == [" ".join(s) for s in chosen.story] and found["answer"] == chosen.answer
    assert found["question"] == " ".join(chosen.query) and found["supporting"] == chosen.supporting
    assert found["matrix"].shape == (len(chosen.story), 3) and not found["linear_start"]
    # Every sentence of the story is in the matrix: each hop's column is the model's attention over them, which sums
    # to at most 1 (the rest is on the memory's empty slots, `empty_memories`).
    total = found["matrix"].sum(axis=0)
    assert np.all(total <= 1 + 1e-5) and np.all(total > 0), total
    assert found["predicted"] in data.vocabulary
    path = memory_figures.draw_babi(found, str(tmp_path / "babi.png"))
    assert open(path, "rb").read(8) == PNG
    out = tmp_path / "babi_cli.png"
    done = subprocess.run([sys.executable, "-m", "training.experiments.memory_figures",
                           f"--model_dir={babi[0]['model_dir']}", "--qa=6", f"--output={out}"],
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("QA6 ") and out.read_bytes()[:8] == PNG
    with pytest.raises(ValueError, match=r"qa must be one of the run's tasks \[1, 2, 6\], got 3"):
        memory_figures.babi_attention(task, config, model, qa=3)
    with pytest.raises(ValueError, match=r"example must be an int in \[0, \d+\)"):
        memory_figures.babi_attention(task, config, model, qa=1, example=10_000)


@pytest.mark.slow
def test_the_command_writes_the_report_from_finished_runs(tiny_experiment, tmp_path):
    work_dir, ntm, _ = tiny_experiment
    command = [sys.executable, "-m", "training.experiments.memory", "--parts=ntm", "--ntm_seeds=1",
               f"--sequences={SEQUENCES}", f"--validate_every={VALIDATE_EVERY}",
               f"--lengths={','.join(map(str, LENGTHS))}", "--jit_compile=false",
               "--ntm_override=" + ",".join(f"{k}={v}" for k, v in NTM_TINY.items()),
               f"--work_dir={work_dir}", f"--output_dir={tmp_path}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "memory.md").read_text()
    assert "Written by `python -m training.experiments.memory --parts=ntm --ntm_seeds=1 --sequences=128" in text
    assert "## NTM against LSTM on copy" in text and "## MemN2N" not in text
    assert (tmp_path / "memory_ntm_copy.png").exists() and not (tmp_path / "memory_babi_attention.png").exists()
    bad = subprocess.run(command[:3] + ["--sequences=100", "--validate_every=64"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "--sequences (100) must be a multiple of --validate_every (64)" in bad.stderr
