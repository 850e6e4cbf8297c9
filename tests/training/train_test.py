"""The entry points from the command line: each task to its threshold, resuming after kill -9, bad flags."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from tests.training.tasks import runs
from training import config as run_config


def run(module, *args, env=None, timeout=900):
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


# Adding and latching train to their thresholds from the command line in tests/serving/demo_test.py, which trains
# their short presets exactly so for `make demo`.
@pytest.mark.slow
@pytest.mark.parametrize(
    "task, metric, passes",
    [
        # Copy memory (k = 5, delay 10, 8 symbols): chance recall is 1/8; an LSTM that learns the task passes 0.9
        # (the short preset reaches about 0.98 after 30 epochs).
        ("copy_memory", "recall_accuracy", lambda v: v >= 0.9),
    ],
)
def test_each_task_trains_to_its_threshold_from_the_command_line(tmp_path, task, metric, passes):
    trained = run("training.train", f"--task={task}", "--preset=short", f"--model_dir={tmp_path}")
    assert trained.returncode == 0, trained.stderr
    assert re.search(r"^done: step \d+, validation ", trained.stdout, re.M), trained.stdout
    evaluated = run("training.evaluate", f"--model_dir={tmp_path}")
    assert evaluated.returncode == 0, evaluated.stderr
    with open(tmp_path / "evaluation_test.json") as f:
        value = json.load(f)["metrics"][metric]
    assert passes(value), f"test {metric} = {value}\n{trained.stdout}"


def latest_step(model_dir):
    state = tf.train.get_checkpoint_state(os.path.join(model_dir, "checkpoints"))
    return int(state.model_checkpoint_path.rsplit("-", 1)[1]) if state else 0


def checkpointed_state(path):
    """{name: value} of every variable a checkpoint holds but its save counter (how often a run saved, not what)."""
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name in reader.get_variable_to_shape_map()
        if name != "_CHECKPOINTABLE_OBJECT_GRAPH" and not name.startswith("save_counter")
    }


# (task, preset, overrides): sentences (the adding task's sequences), and a token stream with its carried state.
KILLED_RUNS = {
    "sequences": ("adding", "short", "checkpoint_every_steps=10"),
    "streams": ("language_model", "lstm", "bptt_steps=20,train_size=4000,batch_size=16,epochs=3,"
                "checkpoint_every_steps=10"),
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(KILLED_RUNS))
def test_kill_9_mid_epoch_loses_at_most_the_steps_since_the_last_checkpoint_and_resumes_to_the_same_weights(
        tmp_path, kind):
    killed_dir, whole_dir = tmp_path / "killed", tmp_path / "whole"
    task_name, preset, overrides = KILLED_RUNS[kind]
    args = [f"--task={task_name}", f"--preset={preset}", f"--override={overrides}"]
    task, config = runs.make_config(task_name, preset, **run_config.parse_overrides(overrides))
    per_epoch = task.steps_per_epoch(config, config["batch_size"])
    total = per_epoch * config["epochs"]
    kill_after = per_epoch + 15  # inside the second epoch
    # The same run uninterrupted, alongside, for the weights the killed and resumed one must end with.
    whole = subprocess.Popen([sys.executable, "-m", "training.train", *args, f"--model_dir={whole_dir}"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "training.train", *args, f"--model_dir={killed_dir}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.time() + 300
        while latest_step(killed_dir) < kill_after and time.time() < deadline:
            time.sleep(0.05)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        killed_at = latest_step(killed_dir)
        assert kill_after <= killed_at < total, "the run was not killed in the middle of training"
        # The latest checkpoint, which a resume restores, is complete; so is every older one the index names, unless
        # the kill came while CheckpointManager.save swept it away (it records the new checkpoint, deletes the oldest
        # one's files, then records the list again, so for a moment the list still names the deleted one).
        state = tf.train.get_checkpoint_state(str(killed_dir / "checkpoints"))
        assert tf.train.load_checkpoint(state.model_checkpoint_path).get_variable_to_shape_map()
        for path in state.all_model_checkpoint_paths:
            if tf.io.gfile.exists(f"{path}.index"):
                assert tf.train.load_checkpoint(path).get_variable_to_shape_map(), path
        resumed = run("training.train", *args, f"--model_dir={killed_dir}")
        assert resumed.returncode == 0, resumed.stderr
        match = re.search(r"resumed from \S+ckpt-(\d+) at step (\d+) \(epoch (\d+)\)", resumed.stdout)
        assert match, resumed.stdout
        assert int(match.group(1)) == int(match.group(2)) == killed_at
        assert int(match.group(3)) == killed_at // per_epoch + 1
        _, stderr = whole.communicate(timeout=300)
        assert whole.returncode == 0, stderr[-4000:]
    finally:  # a failure or a hang above leaves no run behind
        for started in (process, whole):
            if started.poll() is None:
                started.kill()
                started.communicate()
    # The resumed run is the uninterrupted one: the same model, optimizer state, step, epoch and best value in its
    # last checkpoint, and the same final metrics. Both are one process on the same CPU kernels, and the resumed one
    # reads the rest of the same seeded stream, so they agree to float rounding (bit for bit on one machine).
    final = {name: checkpointed_state(path / "checkpoints" / f"ckpt-{total}") for name, path in
             (("killed", killed_dir), ("whole", whole_dir))}
    assert sorted(final["killed"]) == sorted(final["whole"])
    for name in sorted(final["whole"]):
        np.testing.assert_allclose(final["killed"][name], final["whole"][name], rtol=1e-6, atol=1e-7, err_msg=name)
    metrics = {}
    for name, path in (("killed", killed_dir), ("whole", whole_dir)):
        with open(path / "metrics.json") as f:
            metrics[name] = json.load(f)
    assert metrics["killed"]["step"] == metrics["whole"]["step"] == total
    if kind == "streams":  # the carried state is in the checkpoint, and the resumed run carried the same
        assert any(name.startswith("carried_state") for name in final["whole"])
    assert metrics["killed"]["validation"] == pytest.approx(metrics["whole"]["validation"], rel=1e-6)
    assert metrics["killed"]["best"]["value"] == pytest.approx(metrics["whole"]["best"]["value"], rel=1e-6)


BAD_FLAGS = [
    (["--task=nope"], r"error: unknown task 'nope'; valid tasks: \['adding', 'babi', 'copy_memory', "),
    (["--task=adding", "--preset=huge"], r"error: unknown preset 'huge'; valid presets: \['default', 'short'\]"),
    (["--task=adding", "--override=unitz=3"], r"error: unknown override key 'unitz'; valid keys: \[.*'units'"),
    (["--task=adding", "--override=units=many"], r"error: override units must be a number, got 'many'"),
    (["--task=adding", "--strategy=gpus"], r"error: unknown strategy 'gpus'; valid strategies: \['default', "),
    (["--task=adding", "--epochs=2", "--steps=3"], r"error: give --epochs or --steps, not both"),
    (["--task=adding", "--strategy=multi_worker"], r"error: --strategy=multi_worker needs the TF_CONFIG"),
    (["--task=adding", "--strategy=tpu"], r"error: --strategy=tpu needs --tpu=ADDRESS"),
    (["--task=adding", "--data_dir=."], r"error: task 'adding' generates its data and reads no files; leave out "),
    (["--task=adding", "--override=batch_size=0"], r"error: batch_size must be a positive int, got 0"),
    (["--task=adding", "--override=learning_rate=-1"], r"error: learning_rate must be a number > 0, got -1.0"),
    (["--task=adding", "--override=cell=lstmm"], r"error: cell must be one of 'elman', .*'gru', got 'lstmm'"),
    (["--task=adding", "--init_from=nowhere"], r"error: --init_from: no run in 'nowhere' \(no config.json\)"),
]

# Every case in one process (importing TensorFlow once, not once a case): each command line is parsed afresh and
# given to the entry point's main, as `python -m training.train` does; test_a_bad_flag_ends_the_process_with_status_2
# runs one of them as its own process, exit status included.
BAD_FLAGS_DRIVER = r"""
import contextlib, io, json, sys
from absl import flags
from training import train
results = []
for args in json.loads(sys.argv[1]):
    flags.FLAGS.unparse_flags()
    flags.FLAGS(["train", *args])
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        status = train.main(["train"])
    results.append([status, stderr.getvalue()])
print(json.dumps(results))
"""


@pytest.fixture(scope="module")
def bad_flag_results(tmp_path_factory):
    """{index of a BAD_FLAGS case: (main's return value, what it wrote to stderr, its model_dir)}."""
    work = tmp_path_factory.mktemp("bad_flags")
    command_lines = [[*args, f"--model_dir={work / str(i)}"] for i, (args, _) in enumerate(BAD_FLAGS)]
    result = subprocess.run([sys.executable, "-c", BAD_FLAGS_DRIVER, json.dumps(command_lines)], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "TF_CONFIG": ""})
    assert result.returncode == 0, result.stderr[-3000:]
    outputs = json.loads(result.stdout.strip().splitlines()[-1])
    return {i: (status, stderr, work / str(i)) for i, (status, stderr) in enumerate(outputs)}


@pytest.mark.parametrize("index", range(len(BAD_FLAGS)), ids=[" ".join(args) for args, _ in BAD_FLAGS])
def test_bad_flags_are_named_with_the_valid_choices(bad_flag_results, index):
    status, stderr, model_dir = bad_flag_results[index]
    assert status == 2, stderr
    assert re.search(BAD_FLAGS[index][1], stderr), stderr
    assert "Traceback" not in stderr
    assert not model_dir.exists(), "a rejected run must not create its model_dir"


def test_a_bad_flag_ends_the_process_with_status_2(tmp_path):
    args, message = BAD_FLAGS[2]
    result = run("training.train", *args, f"--model_dir={tmp_path / 'run'}", env={"TF_CONFIG": ""}, timeout=120)
    assert result.returncode == 2, result.stdout + result.stderr
    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run").exists(), "a rejected run must not create its model_dir"


def test_bad_paths_are_clear_errors(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    result = run("training.train", "--task=adding", f"--model_dir={not_a_dir}", timeout=120)
    assert result.returncode == 2 and f"error: model_dir '{not_a_dir}' exists and is not a directory" in result.stderr
    result = run("training.evaluate", f"--model_dir={tmp_path / 'missing'}", timeout=120)
    assert result.returncode == 2
    assert f"error: no run in '{tmp_path / 'missing'}' (no config.json); train one with" in result.stderr


# A tiny adding run: 16 steps per epoch.
TINY = "--override=length=10,train_size=512,validation_size=128,test_size=128,units=8,batch_size=32"


@pytest.mark.parametrize("progress", ["bar", "lines"])
def test_progress_of_a_steps_run_shorter_than_an_epoch(tmp_path, progress):
    result = run("training.train", "--task=adding", "--preset=short", f"--model_dir={tmp_path}", TINY, "--steps=10",
                 f"--progress={progress}", timeout=300)
    assert result.returncode == 0, result.stderr
    if progress == "bar":  # the bar counts to the run's 10 steps, and the final line starts a line of its own
        # (text mode reads the bar's carriage returns as line ends: a glued line would still follow the bar's text)
        assert "epoch 1/1 (the run stops after 10 of its 16 steps)\n" in result.stdout, result.stdout
        assert re.search(r"^10/10 \[=+\] [^\n]*\ndone: step 10, ", result.stdout, re.MULTILINE), result.stdout
    else:  # a line at log_every_steps (10) during the run, with steps/s and the ETA
        assert re.search(r"^step 10/10 \(epoch 1\) - loss \S+ - \S+ steps/s - ETA \S+\ndone: step 10, ", result.stdout,
                         re.MULTILINE), result.stdout


@pytest.mark.slow
def test_a_corrected_command_runs_where_a_run_failed_before_its_first_checkpoint(tmp_path):
    args = ["--task=adding", "--preset=short", f"--model_dir={tmp_path}", "--steps=5"]
    diverged = run("training.train", *args, "--override=learning_rate=1e30", timeout=300)
    assert diverged.returncode == 1 and "no checkpoint had been written yet" in diverged.stderr, diverged.stderr
    corrected = run("training.train", *args, timeout=300)
    assert corrected.returncode == 0, corrected.stderr
    assert "holds no checkpoint yet: its config.json is replaced by this run's" in corrected.stdout
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["learning_rate"] == 1e-2  # the short preset's


@pytest.mark.slow
def test_init_from_fine_tunes_a_trained_run(tmp_path):
    source = run("training.train", "--task=adding", "--preset=short", f"--model_dir={tmp_path / 'short'}",
                 "--steps=5", timeout=300)
    assert source.returncode == 0, source.stderr
    # Another preset of the same architecture (the default's T = 100, with the short preset's 32 units).
    tuned = run("training.train", "--task=adding", "--preset=default", "--override=units=32,train_size=1000",
                f"--model_dir={tmp_path / 'default'}", f"--init_from={tmp_path / 'short'}", "--steps=2", timeout=300)
    assert tuned.returncode == 0, tuned.stderr
    with open(tmp_path / "default" / "config.json") as f:
        assert json.load(f)["init_from"]["checkpoint"] == str(tmp_path / "short" / "best" / "ckpt-5")
    wider = run("training.train", "--task=adding", "--preset=default", f"--model_dir={tmp_path / 'wide'}",
                f"--init_from={tmp_path / 'short'}", "--steps=2", timeout=300)
    assert wider.returncode == 2
    assert "variable shapes differ (lstm_0/lstm_cell/kernel: (2, 128) there, (2, 256) here;" in wider.stderr
