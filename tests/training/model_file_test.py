"""A run's model as a Keras file: every task's model round-trips, the trainer writes best/model.keras, `write` makes
the latest's on request, and a program of its own loads the file with `import zoo` (and only with it)."""

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from training import model_file
from training import tasks
from training.trainer import Trainer
from tests.training.tasks import runs

# The presets of every task that need no files, with their data cut small.
PRESETS = [
    (task, preset)
    for task in tasks.names()
    for preset in tasks.get(task).presets
    if (task, preset) not in {("language_model", "ptb_small"), ("language_model", "zaremba_small"),
                              ("language_model", "zaremba_medium"), ("language_model", "zaremba_large"),
                              ("forecasting", "file"), ("translation", "files"),
                              ("sentiment_trees", "fine"), ("sentiment_trees", "binary")}
]
SMALL_DATA = {"train_size": 64, "validation_size": 16, "test_size": 16, "clean_digits_size": 4}


def batch(task, config, count=3):
    """The first `count` test inputs as one batch (right-padded with zeros where lengths vary); a tuple of batches
    for a task whose inputs are a tuple of columns (a translation's source and decoder input ids); a dict of batches for
    a task whose inputs are a dict (a tree's words, children and heights, padded as the tree batch format pads)."""
    inputs = task.split_data(config)["test"][0]
    if isinstance(inputs, dict):
        return {key: _padded(column[:count], 0 if key == "words" else -1) for key, column in inputs.items()}
    if isinstance(inputs, tuple):
        # A column of fixed-size values (an array: e.g. the speech task's audio lengths) is taken as it is.
        return tuple(column[:count] if isinstance(column, np.ndarray) else _padded(column[:count])
                     for column in inputs)
    return _padded(inputs[:count])


def _padded(inputs, fill=0):
    width = max(len(x) for x in inputs)
    return np.stack([np.pad(x, [(0, width - len(x))] + [(0, 0)] * (np.ndim(x) - 1), constant_values=fill)
                     for x in inputs])


@pytest.mark.parametrize("task_name, preset", PRESETS)
def test_every_task_model_round_trips_through_a_keras_file(tmp_path, task_name, preset):
    task = tasks.get(task_name)
    overrides = {k: v for k, v in SMALL_DATA.items() if k in task.presets[preset]}
    task, config = runs.make_config(task_name, preset, **overrides)
    model = task.build_model(config)
    x = batch(task, config)
    expected = keras.ops.convert_to_numpy(model(x))
    path = str(tmp_path / "model.keras")
    model_file.save(model, path)
    loaded = model_file.load(path)
    assert type(loaded) is type(model) and loaded.get_config() == model.get_config()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), expected, atol=1e-6)
    assert [(w.name, tuple(w.shape)) for w in loaded.weights] == [(w.name, tuple(w.shape)) for w in model.weights]


def small_run(model_dir, **overrides):
    task, config = runs.make_config("adding", "short", length=10, train_size=256, validation_size=64, test_size=64,
                                    units=8, **overrides)
    return Trainer(task, config, str(model_dir), progress="lines", out=io.StringIO())


def test_the_trainer_writes_the_best_model_as_a_keras_file(tmp_path):
    trainer = small_run(tmp_path, epochs=3)
    trainer.fit()
    with open(tmp_path / "best" / "best.json") as f:
        best = json.load(f)
    # The file holds the best checkpoint's model, not the last one's.
    trainer.restore("best")
    assert int(trainer.step) == best["step"]
    x = batch(trainer.task, trainer.config)
    loaded = keras.saving.load_model(tmp_path / "best" / "model.keras")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(trainer.model(x)),
                               atol=1e-6)
    assert glob.glob(str(tmp_path / "best" / "*.tmp.keras")) == [], "the temporary file is renamed, never left"


def test_a_write_that_fails_midway_leaves_the_previous_file(tmp_path, monkeypatch):
    path = str(tmp_path / "model.keras")
    first = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model_file.save(first, path)

    def broken_save(model, filepath, **kwargs):
        with open(filepath, "wb") as f:
            f.write(b"half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model_file.save(keras.Sequential([keras.Input((3,)), keras.layers.Dense(5)]), path)
    monkeypatch.undo()
    assert model_file.load(path).output_shape == (None, 2)
    assert os.listdir(tmp_path) == ["model.keras"]


def test_write_makes_the_file_of_the_latest_checkpoint_on_request(tmp_path):
    small_run(tmp_path / "run", steps=12).fit()  # one epoch is 32 steps: best and latest both at step 12
    small_run(tmp_path / "run", steps=20).fit()  # resumed: the latest moves on, the best may not
    result = model_file.write(str(tmp_path / "run"), "latest")
    assert result["path"] == str(tmp_path / "run" / "latest.keras") and result["step"] == 20
    trainer = small_run(tmp_path / "run", steps=20)
    trainer.restore("latest")
    x = batch(trainer.task, trainer.config)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model_file.load(result["path"])(x)),
                               keras.ops.convert_to_numpy(trainer.model(x)), atol=1e-6)
    with pytest.raises(ValueError, match=r"no run in '.*missing' \(no config.json\)"):
        model_file.write(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"a Keras file's name must end in \.keras, got '.*model\.h5'"):
        model_file.save(trainer.model, str(tmp_path / "model.h5"))


def test_load_names_a_class_that_keras_does_not_know(tmp_path):
    @keras.saving.register_keras_serializable(package="seqzoo_test")
    class Doubling(keras.layers.Layer):
        def call(self, x):
            return 2 * x

    model = keras.Sequential([keras.Input((3,)), Doubling()])
    path = str(tmp_path / "custom.keras")
    model_file.save(model, path)
    del keras.saving.get_custom_objects()["seqzoo_test>Doubling"]  # as in a program that never imported it
    with pytest.raises(ValueError, match=r"custom\.keras needs the class 'Doubling', which Keras does not know: "
                                         r"`import zoo` registers the zoo's classes"):
        model_file.load(path)


def run_python(code, cwd):
    """Runs `code` in a fresh interpreter from `cwd`, with the repository importable (as when seqzoo is installed)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300, cwd=cwd,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


@pytest.mark.slow
def test_a_program_of_its_own_loads_the_file_after_import_zoo_and_only_then(tmp_path):
    trainer = small_run(tmp_path / "run", steps=5)
    trainer.fit()
    trainer.restore("best")
    x = batch(trainer.task, trainer.config)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", keras.ops.convert_to_numpy(trainer.model(x)))
    path = tmp_path / "run" / "best" / "model.keras"
    with_zoo = run_python(f"""
        import sys
        import keras
        import numpy as np
        import zoo

        model = keras.saving.load_model({str(path)!r})
        np.testing.assert_allclose(model(np.load("x.npy")), np.load("y.npy"), atol=1e-6)
        assert "training" not in sys.modules  # the zoo alone loads it
        print("loaded", type(model).__name__)
    """, cwd=tmp_path)
    assert with_zoo.returncode == 0 and "loaded StackedRNN" in with_zoo.stdout, with_zoo.stderr
    # Without `import zoo`, Keras 3 says which class it could not find and prints its registered name,
    # "zoo>StackedRNN" (the README quotes this message).
    without_zoo = run_python(f"""
        import keras

        keras.saving.load_model({str(path)!r})
    """, cwd=tmp_path)
    assert without_zoo.returncode == 1
    assert "TypeError: Could not locate class 'StackedRNN'" in without_zoo.stderr, without_zoo.stderr
    assert "'registered_name': 'zoo>StackedRNN'" in without_zoo.stderr


@pytest.mark.slow
def test_the_entry_point_writes_a_run_s_latest_model(tmp_path):
    small_run(tmp_path / "run", steps=5).fit()
    shutil.rmtree(tmp_path / "run" / "best")  # only the latest checkpoint is left to write
    output = tmp_path / "exported" / "adding.keras"
    result = subprocess.run(
        [sys.executable, "-m", "training.keras_file", f"--model_dir={tmp_path / 'run'}", "--checkpoint=latest",
         f"--output={output}"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert f"wrote {output} (the latest checkpoint, step 5); load it with `import zoo`" in result.stdout
    assert isinstance(model_file.load(str(output)), keras.Model)
    missing = subprocess.run(
        [sys.executable, "-m", "training.keras_file", f"--model_dir={tmp_path / 'none'}"],
        capture_output=True, text=True, timeout=300,
    )
    assert missing.returncode == 2 and "error: no run in" in missing.stderr, missing.stderr
