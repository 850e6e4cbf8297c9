"""The zoo on Keras's JAX backend: the tests marked `jax` run again in a pytest process with KERAS_BACKEND=jax.

Keras reads its backend once, at import, and this suite imports Keras on TensorFlow at start (tests/conftest.py), so
the JAX pass is a separate process: one test here starts it and fails with its report if any test fails there. It
also hands that process `.keras` files of zoo models saved under TensorFlow, which must give the same outputs under
JAX (a model trained with seqzoo's TensorFlow trainer is usable from JAX).
"""

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import zoo

ROOT = pathlib.Path(__file__).resolve().parents[2]
# The JAX pass took 538 s alone and 658 s beside the rest of the suite on a 2-core machine; this bounds a hang.
TIMEOUT_S = 1200
# Where the TensorFlow run leaves the `.keras` files (and their expected outputs) for the JAX pass.
KERAS_FILES_ENV = "SEQZOO_TENSORFLOW_KERAS_FILES"


def _models():
    """{name: (model, inputs)}: zoo layers and a language model, with random weights."""
    keras.utils.set_random_seed(0)
    layers = keras.Sequential(
        [
            keras.Input((None, 3)),
            keras.layers.Bidirectional(zoo.rnn.GRU(4, return_sequences=True)),
            keras.layers.RNN(zoo.cells.JordanCell(5, output_units=3), return_sequences=True),
            zoo.rnn.LeakyRNN(4, alpha=0.3, return_sequences=True),
            zoo.rnn.LSTM(5, peepholes=True),
        ]
    )
    language_model = zoo.models.RNNLM(
        vocab_size=11, cell="lstm", units=6, num_layers=2, tie_embeddings=True, cell_options={"peepholes": True}
    )
    language_model.build((None, None))
    rng = np.random.default_rng(0)
    return {
        "layers": (layers, rng.normal(size=(2, 7, 3)).astype("float32")),
        "language_model": (language_model, rng.integers(0, 11, size=(2, 7)).astype("int32")),
    }


@pytest.mark.jax
def test_runs_under_the_backend_it_was_started_with():
    # In the JAX pass this shows that the marked tests really ran on JAX (Keras falls back to TensorFlow silently
    # when KERAS_BACKEND is unset).
    assert keras.backend.backend() == os.environ.get("KERAS_BACKEND", "tensorflow")


@pytest.mark.jax
@pytest.mark.jax_pass_only  # loads what the TensorFlow run hands over in KERAS_FILES_ENV (tests/conftest.py)
def test_keras_files_saved_under_tensorflow_give_the_same_outputs():
    directory = os.environ[KERAS_FILES_ENV]
    for name in _models():
        model = keras.saving.load_model(os.path.join(directory, f"{name}.keras"))
        with np.load(os.path.join(directory, f"{name}.npz")) as saved:
            outputs = keras.ops.convert_to_numpy(model(saved["inputs"]))
            np.testing.assert_allclose(outputs, saved["outputs"], atol=1e-5, err_msg=name)


@pytest.mark.slow
def test_marked_zoo_tests_pass_under_jax(tmp_path):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("starts the JAX pass from the TensorFlow run")
    assert importlib.util.find_spec("jax"), "jax is missing: it comes with seqzoo's dev extra (pip install '.[dev]')"
    for name, (model, inputs) in _models().items():
        model.save(tmp_path / f"{name}.keras")
        np.savez(tmp_path / f"{name}.npz", inputs=inputs, outputs=keras.ops.convert_to_numpy(model(inputs)))
    env = {**os.environ, "KERAS_BACKEND": "jax", KERAS_FILES_ENV: str(tmp_path)}
    env.setdefault("JAX_PLATFORMS", "cpu")  # the CPU pass everywhere; set it to run on an accelerator
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "jax", "-rfEs", "tests/zoo"]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    report = (result.stdout + result.stderr)[-20000:]
    exit_code = result.returncode
    assert exit_code == 0, f"KERAS_BACKEND=jax {' '.join(command[1:])} failed:\n{report}"
    summary = result.stdout.strip().splitlines()[-1]
    assert re.search(r"\d+ passed", summary) and not re.search(r"failed|error", summary), report
    # The only tests the JAX pass skips are the TensorFlow-only checks, which say so.
    skips = re.findall(r"^SKIPPED \[\d+\] .*", result.stdout, flags=re.MULTILINE)
    assert skips and all("is TensorFlow only" in line for line in skips), "\n".join(skips)
