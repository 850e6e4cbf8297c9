"""The training loop, in process: resuming, divergence, clipping, outputs, progress, precision and XLA."""

import glob
import io
import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from training import config as run_config
from training import tasks
from training.tasks.adding import AddingTask
from training.trainer import DEFAULTS
from training.trainer import Trainer
from training.trainer import TrainingDiverged
from training.trainer import learning_rate

# A small adding problem: 16 steps per epoch at batch 32; a few seconds per test.
SMALL = {"length": 10, "train_size": 512, "validation_size": 128, "test_size": 128, "units": 8, "batch_size": 32}


def make_trainer(model_dir, task=None, out=None, progress="lines", **overrides):
    task = task or tasks.get("adding")
    config = run_config.resolve(DEFAULTS, task.presets, "short", {**SMALL, **overrides})
    return Trainer(task, {"task": task.name, "preset": "short", **config}, str(model_dir), progress=progress,
                   out=out or io.StringIO())


def weights(trainer):
    return [keras.ops.convert_to_numpy(v) for v in trainer.model.weights]


@pytest.mark.parametrize("length_jitter", [0.0, 0.3], ids=["fixed_length", "bucketed_by_length"])
def test_resuming_mid_epoch_gives_the_uninterrupted_run(tmp_path, length_jitter):
    # With length_jitter 0.3 the sequences are 10 to 13 steps long, and the training stream is bucketed by length:
    # runs of 8 shuffled batches' worth of examples sorted by length, cut into batches that are shuffled again. Step
    # 12 is in the middle of such a run, so the resumed stream must skip into it exactly.
    whole = make_trainer(tmp_path / "whole", steps=30, length_jitter=length_jitter)
    whole.fit()
    if length_jitter:
        lengths = [batch[0].shape[1] for _, batch in zip(range(16), whole.train_data())]
        assert len(set(lengths)) > 1 and min(lengths) < 13, f"not bucketed by length: {lengths}"
    first = make_trainer(tmp_path / "split", steps=12, length_jitter=length_jitter)  # stops inside the first epoch
    first.fit()
    out = io.StringIO()
    second = make_trainer(tmp_path / "split", steps=30, length_jitter=length_jitter, out=out)
    second.fit()
    assert "resumed from" in out.getvalue() and "at step 12 (epoch 1)" in out.getvalue()
    assert int(second.step) == 30 and int(second.epoch) == 1 and int(second.step_in_epoch) == 14
    for a, b in zip(weights(whole), weights(second), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    # The optimizer state came back too: both runs made 30 updates.
    assert int(second.optimizer.iterations) == int(whole.optimizer.iterations) == 30


def test_a_run_leaves_config_checkpoints_best_logs_and_metrics(tmp_path):
    trainer = make_trainer(tmp_path, epochs=2, keep_checkpoints=2, checkpoint_every_steps=5, log_every_steps=4)
    metrics = trainer.fit()
    with open(tmp_path / "config.json") as f:
        assert json.load(f) == trainer.config
    with open(tmp_path / "metrics.json") as f:
        assert json.load(f) == json.loads(json.dumps(metrics))
    assert metrics["step"] == 32 and metrics["epoch"] == 2 and set(metrics["validation"]) == {"loss", "mse", "solved"}
    # keep_checkpoints=2: only the last two of the steps 5, 10, 15, 16, 20, ... 32 are kept.
    assert tf.train.get_checkpoint_state(str(tmp_path / "checkpoints")).all_model_checkpoint_paths[-2:] == [
        str(tmp_path / "checkpoints" / "ckpt-30"),
        str(tmp_path / "checkpoints" / "ckpt-32"),
    ]
    assert len(glob.glob(str(tmp_path / "checkpoints" / "*.index"))) == 2
    with open(tmp_path / "best" / "best.json") as f:
        best = json.load(f)
    assert best["metric"] == "mse" and best["value"] == pytest.approx(min(h["validation"]["mse"] for h in trainer.history))
    tags = {"train": set(), "validation": set()}
    for split in tags:
        for path in glob.glob(str(tmp_path / "logs" / split / "events*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                tags[split] |= {value.tag for value in event.summary.value}
    assert {"loss", "gradient_global_norm", "learning_rate", "epoch_loss", "epoch_mse"} <= tags["train"]
    assert {"epoch_loss", "epoch_mse", "epoch_solved"} <= tags["validation"]


def test_the_best_checkpoint_is_the_best_validation_epoch(tmp_path):
    trainer = make_trainer(tmp_path, epochs=3)
    trainer.fit()
    best_epoch = min(trainer.history, key=lambda h: h["validation"]["mse"])
    restored = make_trainer(tmp_path, epochs=3)
    assert restored.restore("best").endswith(f"ckpt-{best_epoch['step']}")
    assert restored.evaluate("validation")["mse"] == pytest.approx(best_epoch["validation"]["mse"], rel=1e-5)


class PoisonedAdding(AddingTask):
    """The adding task whose training inputs turn to NaN from the 17th batch on (the second epoch)."""

    def dataset(self, config, split, batch_size, **kwargs):
        data = super().dataset(config, split, batch_size, **kwargs)
        if split != "train":
            return data
        first = kwargs.get("skip_batches", 0)
        return data.enumerate(start=first).map(
            lambda i, batch: (batch[0] * tf.where(i >= 16, np.nan, 1.0), batch[1], batch[2])
        )


def test_a_nan_loss_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, task=PoisonedAdding(), epochs=3, checkpoint_every_steps=5)
    with pytest.raises(TrainingDiverged, match=r"the loss is nan at step 17 \(epoch 2\); the last good checkpoint, "
                                               r".*ckpt-16, is kept"):
        trainer.fit()
    assert tf.train.latest_checkpoint(str(tmp_path / "checkpoints")).endswith("ckpt-16")
    # It restores, and holds finite weights from before the NaN step.
    clean = make_trainer(tmp_path, epochs=3, checkpoint_every_steps=5)
    clean.restore("latest")
    assert int(clean.step) == 16 and all(np.all(np.isfinite(w)) for w in weights(clean))


class StepRecording(AddingTask):
    """The adding task, recording the step the trainer hands its training call, and logging a schedule of it."""

    def __init__(self):
        self.last_step = tf.Variable(-1, dtype=tf.int64, trainable=False)

    def train_predictions(self, config, model, inputs, step):
        self.last_step.assign(step)
        return super().train_predictions(config, model, inputs, step)

    def train_scalars(self, config, step):
        return {"twice_the_step": 2.0 * step}


def test_the_task_sees_the_steps_taken_before_each_step_and_a_resumed_run_goes_on_counting(tmp_path):
    task = StepRecording()
    make_trainer(tmp_path, task=task, steps=5, log_every_steps=2).fit()
    assert int(task.last_step) == 4  # the fifth step had four before it
    task = StepRecording()
    make_trainer(tmp_path, task=task, steps=9, log_every_steps=2).fit()
    assert int(task.last_step) == 8
    logged = {}
    for path in glob.glob(str(tmp_path / "logs" / "train" / "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == "twice_the_step":
                    logged[event.step] = float(tf.make_ndarray(value.tensor))
    # Logged every 2 steps, at the step just taken (step s had s - 1 before it), across the resumption.
    assert logged == {2: 2.0, 4: 6.0, 6: 10.0, 8: 14.0}


@pytest.mark.parametrize("knob, bound", [("clip_global_norm", "norm"), ("clip_value", "max")])
def test_gradient_clipping_bounds_the_update(tmp_path, knob, bound):
    def update(**overrides):
        settings = {"clip_global_norm": None, **overrides}  # the preset clips at 1.0; start from no clipping
        trainer = make_trainer(tmp_path / knob / str(len(overrides)), steps=1, optimizer="sgd", learning_rate=1.0,
                               **settings)
        before = weights(trainer)
        trainer.fit()
        change = np.concatenate([(a - b).ravel() for a, b in zip(weights(trainer), before)])
        return np.linalg.norm(change) if bound == "norm" else np.abs(change).max()

    limit = 1e-3
    assert update() > 10 * limit  # unclipped, the step is much larger than the limit ...
    assert update(**{knob: limit}) <= limit * (1 + 1e-4)  # ... and clipping bounds it (SGD, learning rate 1)


def test_off_a_terminal_an_epoch_ends_with_its_line(tmp_path):
    out = io.StringIO()
    make_trainer(tmp_path, epochs=2, out=out).fit()
    lines = [line for line in out.getvalue().splitlines() if line.startswith("epoch ")]
    assert [line.split(" - ")[:2] for line in lines] == [["epoch 1", "step 16"], ["epoch 2", "step 32"]]
    assert all("val_mse" in line for line in lines)


class Recorder(io.StringIO):
    """Output that notes the trainer's step at each write and each flush."""

    def __init__(self, isatty=False):
        super().__init__()
        self._isatty, self.trainer, self.writes, self.flushes = isatty, None, [], []

    def isatty(self):
        return self._isatty

    def write(self, text):
        if self.trainer is not None:
            self.writes.append((int(self.trainer.step), text))
        return super().write(text)

    def flush(self):
        if self.trainer is not None:
            self.flushes.append(int(self.trainer.step))


DURATION = r"(\d+\.\ds|\d+:\d\d:\d\d)"  # 12.3s, or h:mm:ss from a minute on
STEP_LINE = rf"step (\d+)/12 \(epoch 1\) - loss \d\S* - \d\S* steps/s - ETA {DURATION}"


def test_off_a_terminal_a_run_shorter_than_an_epoch_prints_lines_as_it_goes(tmp_path):
    out = Recorder()
    trainer = make_trainer(tmp_path, out=out, steps=12, log_every_steps=4)  # 16 steps make an epoch
    trainer.line_seconds = 0
    out.trainer = trainer
    trainer.fit()
    printed = [(step, re.fullmatch(STEP_LINE, text)) for step, text in out.writes]
    # A line at every 4th step, written (and flushed, for a log file) while that step is the trainer's last.
    assert [(step, int(match.group(1))) for step, match in printed if match] == [(4, 4), (8, 8), (12, 12)]
    assert {4, 8, 12} <= set(out.flushes)
    assert not re.search(r"^epoch ", out.getvalue(), re.MULTILINE)


def test_off_a_terminal_lines_come_no_sooner_than_line_seconds_after_the_previous(tmp_path):
    out = io.StringIO()
    trainer = make_trainer(tmp_path, out=out, steps=12, log_every_steps=4)
    trainer.line_seconds = 1e9
    trainer.fit()
    assert [int(m.group(1)) for m in re.finditer("^" + STEP_LINE + "$", out.getvalue(), re.MULTILINE)] == [4]


def shown(text):
    """What a terminal shows of `text`: of each line, what follows its last carriage return."""
    return [line.rsplit("\r", 1)[-1].rstrip() for line in text.split("\n")]


def test_on_a_terminal_the_bars_count_to_the_steps_the_run_takes_and_end_their_line(tmp_path):
    out = Recorder(isatty=True)
    first = make_trainer(tmp_path, out=out, progress="auto", steps=6)
    assert first.progress == "bar", "auto: a bar on a terminal"
    first.fit()
    lines = shown(out.getvalue())
    assert lines[0] == "epoch 1/1 (the run stops after 6 of its 16 steps)"
    assert re.fullmatch(rf"6/6 \[=+\] \d\S* steps/s - {DURATION} - loss \d\S*", lines[1]), lines
    assert lines[2:] == [""], "the output ends with a newline: what comes next is not glued to the bar"
    # Resumed mid-epoch with --steps=20: the first bar goes on from 6 to the epoch's 16, the second counts to 4.
    out = io.StringIO()
    make_trainer(tmp_path, out=out, progress="bar", steps=20).fit()
    lines = [line for line in shown(out.getvalue()) if not line.startswith("resumed from ")]
    assert [line.split(" [")[0] for line in lines] == [
        "epoch 1/2", "16/16", lines[2], "epoch 2/2 (the run stops after 4 of its 16 steps)", "4/4", ""
    ]
    assert lines[2].startswith("epoch 1 - step 16 - ")
    assert out.getvalue().count("\r 6/16 [") == 1, "the resumed bar starts at the step the run had reached"


def test_on_a_terminal_a_bar_cut_short_by_divergence_ends_its_line(tmp_path):
    # NaN from the 17th batch on; 20-step epochs put it inside the first epoch's bar.
    trainer = make_trainer(tmp_path, task=PoisonedAdding(), progress="bar", steps_per_epoch=20, epochs=1)
    with pytest.raises(TrainingDiverged):
        trainer.fit()
    lines = shown(trainer.out.getvalue())
    assert lines[-2].startswith("16/20 [") and lines[-1] == "", lines


def test_the_end_of_run_validation_reaches_tensorboard(tmp_path):
    metrics = make_trainer(tmp_path, steps=5).fit()  # stops inside the first epoch (16 steps)
    logged = {}
    for split in ("train", "validation"):
        for path in glob.glob(str(tmp_path / "logs" / split / "events*")):
            for event in tf.compat.v1.train.summary_iterator(path):
                for value in event.summary.value:
                    logged[split, value.tag, event.step] = float(tf.make_ndarray(value.tensor))
    for key, value in metrics["validation"].items():
        assert logged["validation", f"epoch_{key}", 5] == pytest.approx(value)
    assert logged["train", "epoch_loss", 5] == pytest.approx(metrics["train"]["loss"])


def test_mixed_precision_and_xla_train(tmp_path):
    task = tasks.get("adding")
    config = {"task": "adding", "preset": "short", "mixed_precision": True,
              **run_config.resolve(DEFAULTS, task.presets, "short", {**SMALL, "steps": 20})}
    trainer = Trainer(task, config, str(tmp_path), jit_compile=True, out=io.StringIO())
    metrics = trainer.fit()
    assert isinstance(trainer.optimizer, keras.optimizers.LossScaleOptimizer)
    assert trainer.model.recurrent_layers[0].compute_dtype == "float16"
    assert np.isfinite(metrics["validation"]["mse"])
    assert keras.config.dtype_policy().name == "float32", "the global policy is restored after building"


def test_a_changed_config_does_not_resume(tmp_path):
    make_trainer(tmp_path, steps=2).fit()
    with pytest.raises(ValueError, match=r"different config \(units: 8 -> 16\)"):
        make_trainer(tmp_path, steps=2, units=16)


def test_a_run_shorter_than_an_epoch_still_has_a_best_checkpoint(tmp_path):
    trainer = make_trainer(tmp_path, steps=5)  # 16 steps make an epoch
    metrics = trainer.fit()
    assert metrics["best"]["value"] == pytest.approx(metrics["validation"]["mse"])
    assert make_trainer(tmp_path, steps=5).restore("best").endswith("ckpt-5")


class PoisonedFromTheStart(AddingTask):
    """The adding task whose training inputs are NaN: the loss diverges at the first step."""

    def dataset(self, config, split, batch_size, **kwargs):
        data = super().dataset(config, split, batch_size, **kwargs)
        return data if split != "train" else data.map(lambda x, y, w: (x * np.nan, y, w))


def test_a_model_dir_without_a_checkpoint_holds_no_run_and_takes_a_new_config(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"at step 1 \(epoch 1\); no checkpoint had been written yet"):
        make_trainer(tmp_path, task=PoisonedFromTheStart(), steps=3, learning_rate=10.0).fit()
    # The corrected command in the same model_dir starts afresh (the failed one left only its config.json) ...
    out = io.StringIO()
    corrected = make_trainer(tmp_path, steps=3, learning_rate=1e-3, out=out)
    assert "holds no checkpoint yet: its config.json is replaced by this run's" in out.getvalue()
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["learning_rate"] == 1e-3
    corrected.fit()
    # ... and once it has a checkpoint, it is a run: another config is refused, the same one resumes.
    with pytest.raises(ValueError, match=r"different config \(learning_rate: 0.001 -> 10.0\)"):
        make_trainer(tmp_path, steps=3, learning_rate=10.0)
    assert make_trainer(tmp_path, steps=6, learning_rate=1e-3).fit()["step"] == 6


def test_a_run_that_cannot_start_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match=r"cell must be one of 'elman', 'jordan', 'leaky', 'lstm', 'gru', got 'lstmm'"):
        make_trainer(tmp_path / "run", cell="lstmm")
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        make_trainer(tmp_path / "run", batch_size=0)
    assert not (tmp_path / "run").exists()


def test_a_config_json_that_is_not_a_run_s_is_left_alone(tmp_path):
    (tmp_path / "config.json").write_text('{"name": "my project"}')
    with pytest.raises(ValueError, match=r"holds a config.json that is not a run's; train in another --model_dir"):
        make_trainer(tmp_path, steps=1)
    assert (tmp_path / "config.json").read_text() == '{"name": "my project"}'


def test_the_learning_rate_steps_down_every_decay_epochs_and_a_resumed_run_keeps_the_step(tmp_path):
    # 16 steps per epoch; halved after every 2 epochs (32 steps).
    trainer = make_trainer(tmp_path / "run", epochs=3, optimizer="sgd", learning_rate=0.1)
    assert float(keras.ops.convert_to_numpy(trainer.optimizer.learning_rate)) == pytest.approx(0.1)
    schedule = learning_rate({"learning_rate": 0.1, "learning_rate_decay_epochs": 2}, 16)
    assert [float(schedule(step)) for step in (0, 31, 32, 63, 64)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025])
    third = learning_rate({"learning_rate": 0.1, "learning_rate_decay_epochs": 1, "learning_rate_decay_factor": 1 / 3},
                          16)
    assert float(third(16)) == pytest.approx(0.1 / 3)
    first = make_trainer(tmp_path / "decay", steps=40, optimizer="sgd", learning_rate=0.1,
                         learning_rate_decay_epochs=2)
    first.fit()
    resumed = make_trainer(tmp_path / "decay", steps=70, optimizer="sgd", learning_rate=0.1,
                           learning_rate_decay_epochs=2)
    resumed.restore("latest")
    assert float(keras.ops.convert_to_numpy(resumed.optimizer.learning_rate)) == pytest.approx(0.05)
    resumed.fit()
    assert float(keras.ops.convert_to_numpy(resumed.optimizer.learning_rate)) == pytest.approx(0.025)
    with pytest.raises(ValueError, match=r"learning_rate_decay_factor must be a number in \(0, 1\]"):
        make_trainer(tmp_path / "bad", learning_rate_decay_epochs=2, learning_rate_decay_factor=2.0)


def test_a_decay_start_epoch_keeps_the_rate_for_that_many_epochs_then_decays_every_decay_epochs():
    # Zaremba et al. (2014), small: lr 1 for 4 epochs, then halved after every epoch (epoch 5 at 0.5, 6 at 0.25).
    zaremba = learning_rate({"learning_rate": 1.0, "learning_rate_decay_epochs": 1, "learning_rate_decay_factor": 0.5,
                             "learning_rate_decay_start_epoch": 4}, 10)
    assert [float(zaremba(step)) for step in (0, 39, 40, 49, 50, 60)] == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.125])
    every_two = learning_rate({"learning_rate": 1.0, "learning_rate_decay_epochs": 2, "learning_rate_decay_factor": 0.5,
                               "learning_rate_decay_start_epoch": 1}, 10)
    assert [float(every_two(step)) for step in (9, 10, 29, 30)] == pytest.approx([1, 0.5, 0.5, 0.25])
    with pytest.raises(ValueError, match=r"learning_rate_decay_start_epoch must be an int >= 0 or None, got -1"):
        run_config.check({"learning_rate_decay_start_epoch": -1})
