"""The streams experiment on a tiny budget: a streamed run and its sentence-by-sentence twin, resumed, measured and
reported."""

import json
import math
import os

import numpy as np
import pytest

from training.experiments import records
from training.experiments import streams

# A tiny LSTM LM on the grammar corpus: 4 streams in windows of 8 tokens; one evaluation stream, so that the
# trainer's streamed test perplexity and `stream_nats` measure exactly the same thing.
TINY = {"train_size": 120, "validation_size": 30, "test_size": 30, "batch_size": 4, "bptt_steps": 8,
        "eval_batch_size": 1, "model_options": {"units": 12, "embedding_dim": 8, "dropout": 0.0}}
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    work_dir = str(tmp_path_factory.mktemp("runs"))
    record_dir = str(tmp_path_factory.mktemp("records"))
    streamed = streams.run_model("lstm", 0, 0.0001, work_dir, TINY, sample_length=30, record_dir=record_dir)
    sentences = streams.run_model("lstm", 0, math.inf, work_dir, {**TINY, "bptt_steps": None},
                                  max_steps=streamed["steps"], name="lstm_sentences", sample_length=30,
                                  record_dir=record_dir)
    return work_dir, streamed, sentences, record_dir


@pytest.mark.slow
def test_a_run_trains_to_its_budget_and_a_rerun_resumes_without_training_more(tiny_runs):
    work_dir, streamed, sentences, _ = tiny_runs
    assert streamed["streams"] and not sentences["streams"]
    # A budget shorter than an epoch: exactly one epoch, one point on the curve.
    assert len(streamed["curve"]) == 1 and streamed["steps"] == streamed["curve"][0][1] > 0
    # The best checkpoint's validation figure is the curve's lowest, a finite number of nats.
    assert streamed["validation_nats"] == min(point[2] for point in streamed["curve"])
    assert 0 < streamed["validation_nats"] < math.log(40)
    assert sentences["steps"] == streamed["steps"]
    again = streams.run_model("lstm", 0, 0.0001, work_dir, TINY, sample_length=30)
    assert again["steps"] == streamed["steps"] and again["curve"] == streamed["curve"]
    np.testing.assert_allclose(again["test_nats"], streamed["test_nats"], rtol=1e-6)


@pytest.mark.slow
def test_the_streamed_test_figure_is_the_one_stream_nll_of_every_token(tiny_runs):
    _, streamed, sentences, _ = tiny_runs
    # The trainer's evaluation (one stream, windows of 8, state carried) and stream_nats (windows of 1000) agree.
    np.testing.assert_allclose(streamed["test_nats"], streamed["test_nats_streamed"], rtol=1e-4)
    assert 0 < streamed["test_nats"] < math.log(40)
    assert math.isfinite(sentences["test_nats_streamed"]) and sentences["test_nats"] != sentences["test_nats_streamed"]
    assert isinstance(streamed["sample"], str) and streamed["sample"]


@pytest.mark.slow
def test_the_report_has_its_table_comparison_samples_and_figure(tiny_runs, tmp_path):
    _, streamed, sentences, _ = tiny_runs
    settings = {"command": "python -m training.experiments.streams --minutes=0.0001", "seed": 0, "minutes": 0.0001}
    other = {**streamed, "preset": "char_gru", "test_nats_streamed": 2.5, "sample": "a sample of its own"}
    path = streams.write_report(streamed, [streamed, other], (streamed, sentences), settings, str(tmp_path))
    text = open(path).read()
    # The tables' test figure: the whole split as one stream.
    one_stream = streamed["test_nats_streamed"]
    assert text.count(f"| {one_stream:.3f} | {one_stream / math.log(2):.3f} |") == 2  # the target and the comparison
    assert "| GRU (`char_gru`) |" in text and "| 2.500 | 3.607 |" in text and "## 2 models on the same budget" in text
    # Both runs trained here: one machine, named with its measured speed.
    machine = streamed["machine"]
    assert machine["cores"] == os.cpu_count() and machine["matmul_gflops"] > 0
    assert f"one after the other on one machine ({machine['processor']}, {machine['cores']} cores" in text
    assert "the minutes do not compare" not in text
    # Every run says how its step was compiled; one compiled with XLA among others without it is not comparable.
    assert "; the training step without XLA." in text and not streamed["jit_compile"]
    mixed = open(streams.write_report(None, [streamed, {**other, "jit_compile": True}], None, settings,
                                      str(tmp_path))).read()
    assert "compiled with XLA for `char_gru` and without it for the others: the minutes do not compare" in mixed
    assert "## Sentence by sentence against streamed, at equal steps" in text
    assert f"| sentence by sentence | {sentences['test_nats_streamed']:.3f} |" in text
    assert streamed["sample"].rstrip() in text and "a sample of its own" in text
    assert (tmp_path / "streams_curves.png").read_bytes().startswith(PNG)
    # One machine's readings spread by a fifth from run to run (streams.SAME_MACHINE_SPEED_RATIO): still one machine.
    speed = machine["matmul_gflops"]
    noisy = {**other, "machine": {**machine, "matmul_gflops": 1.2 * speed}}
    text = open(streams.write_report(None, [streamed, noisy], None, settings, str(tmp_path))).read()
    assert f"one machine ({machine['processor']}, {machine['cores']} cores, {speed:g} to {1.2 * speed:g} GFLOP/s" in text
    assert "the minutes do not compare" not in text
    # Runs on machines of different speeds: the report says their minutes do not compare.
    faster = {**other, "machine": {**machine, "matmul_gflops": 2 * speed}}
    text = open(streams.write_report(None, [streamed, faster], None, settings, str(tmp_path))).read()
    assert "machines that differ" in text and "the minutes do not compare" in text and "## The target" not in text


@pytest.mark.slow
def test_a_finished_result_is_recorded_and_reused_only_for_the_same_budget(tiny_runs, tmp_path):
    _, streamed, sentences, record_dir = tiny_runs
    recorded = json.loads(open(records.record_path(record_dir, "lstm_sentences", 0)).read())
    assert recorded["result"] == json.loads(json.dumps(sentences)) and recorded["budget"]["max_steps"] == sentences["steps"]
    assert recorded["budget"]["jit_compile"] is False
    # A work directory that cannot hold a run: reusing the record must not train.
    blocked = tmp_path / "not_a_directory"
    blocked.write_text("")
    again = streams.run_model("lstm", 0, 0.0001, str(blocked), TINY, sample_length=30, record_dir=record_dir)
    assert again == json.loads(json.dumps(streamed))
    # Another budget is another experiment: it trains (here, into the blocked directory, which fails).
    with pytest.raises(Exception):
        streams.run_model("lstm", 0, 0.0002, str(blocked), TINY, sample_length=30, record_dir=record_dir)
    with pytest.raises(Exception):  # the same run compiled with XLA
        streams.run_model("lstm", 0, 0.0001, str(blocked), TINY, jit_compile=True, sample_length=30,
                          record_dir=record_dir)


def test_the_report_counts_the_turns_of_speakers_never_named_in_training(tmp_path):
    splits = {"train": ["First Citizen:", "Speak.", "", "ROMEO:", "Hail: and well met:", "", "x"],
              "validation": ["ROMEO:", "Ay.", "", "JULIET:", "No.", "Yes:"],
              "test": ["JULIET:", "So.", "", "First Citizen:", "We are.", "", "NURSE:", "Anon!"]}
    assert streams.speaker_turns(splits["train"]) == ["First Citizen", "ROMEO"]
    counts = streams.unseen_speakers(splits)
    assert counts == {"validation": (2, 1, ["JULIET"]), "test": (3, 2, ["JULIET", "NURSE"])}
    assert streams.unseen_speakers({**splits, "train": ["no play here", "at all."]}) == {}
    run = {"preset": "char_lstm", "parameters": 10, "minutes": 59.0, "steps": 5, "curve": [[59.0, 5, 1.3]],
           "validation_nats": 1.3, "test_nats": 1.36, "test_nats_streamed": 1.34, "sample": "to be"}
    settings = {"command": "c", "seed": 0, "minutes": 60, "speakers": counts}
    text = open(streams.write_report(run, [], None, settings, str(tmp_path))).read()
    assert "of its 3 speaker turns" in text and "2 (67%) are by speakers never named" in text
    assert "(JULIET, NURSE), against 1 of 2 (50%) in validation" in text


def test_the_verdict_compares_the_lstm_with_the_target_and_the_hour(tmp_path):
    run = {"preset": "char_lstm", "parameters": 10, "minutes": 59.0, "steps": 5, "curve": [[59.0, 5, 1.3]],
           "validation_nats": 1.3, "test_nats": 1.36, "test_nats_streamed": 1.34, "sample": "to be"}
    settings = {"command": "c", "seed": 0, "minutes": 60}
    text = open(streams.write_report(run, [], None, settings, str(tmp_path))).read()
    assert "**met**" in text
    # The verdict is on the one-stream test figure (test_nats is the run's own evaluation streams').
    for late_or_worse in ({"minutes": 61.0}, {"test_nats": 1.3, "test_nats_streamed": 1.36}):
        text = open(streams.write_report({**run, **late_or_worse}, [], None, settings, str(tmp_path))).read()
        assert "**missed**" in text


def test_another_epoch_starts_only_when_one_as_long_as_the_last_ends_within_the_budget():
    assert streams.another_epoch_fits({"seconds": 0.0, "curve": []}, 60)  # the first epoch always runs
    two_epochs = {"seconds": 1200.0, "curve": [[10.0, 5, 2.0], [20.0, 10, 1.9]]}  # the last took 10 minutes
    assert streams.another_epoch_fits(two_epochs, 30)
    assert not streams.another_epoch_fits(two_epochs, 29.9)
    assert not streams.another_epoch_fits({"seconds": 720.0, "curve": [[12.0, 5, 2.0]]}, 23)


@pytest.mark.slow
def test_an_epoch_trained_but_never_recorded_is_counted_with_the_last_epoch_s_time(tmp_path):
    # A run killed after an epoch's checkpoint and before its record: the rerun counts that epoch at the time of the
    # one before it and measures its validation figure again (the same checkpoint: the same figure).
    task, config = streams.run_config_for("lstm", 0, TINY)
    model_dir = str(tmp_path / "run")
    steps_per_epoch = streams.Trainer(task, config, model_dir + "_probe", progress="lines").steps_per_epoch
    full = streams.train_for(task, config, model_dir, math.inf, max_steps=2 * steps_per_epoch)
    assert len(full["curve"]) == 2 and full["steps"] == 2 * steps_per_epoch
    path = tmp_path / "run" / streams.TIMING_FILE
    first = full["curve"][0]
    path.write_text(json.dumps({"seconds": first[0] * 60, "steps": first[1], "curve": [first]}))
    again = streams.train_for(task, config, model_dir, 1e-6)  # no time left for another epoch
    assert again["steps"] == 2 * steps_per_epoch and len(again["curve"]) == 2
    np.testing.assert_allclose(again["seconds"], 2 * first[0] * 60)
    np.testing.assert_allclose(again["curve"][1][2], full["curve"][1][2], rtol=1e-5)
    assert json.loads(path.read_text()) == again
    # Without a recorded epoch to take the time from, the run says what to do.
    path.write_text(json.dumps({"seconds": 0.0, "steps": 0, "curve": []}))
    with pytest.raises(RuntimeError, match="remove the directory"):
        streams.train_for(task, config, model_dir, 1e-6)
