"""Exports load the way TF Serving loads them, give the Keras model's answers, and serve."""

import json
import os
import subprocess
import sys

import httpx2 as httpx
import keras
import numpy as np
import pytest
import tensorflow as tf
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from serving import export
from serving.server.server import ModelServer
from serving.server.server import ServerOptions
from tests.helpers.saved_model import assert_dense_signature_outputs
from tests.helpers.saved_model import load_with_session
from tests.serving.server.conftest import free_port
from training import tasks
from training.trainer import Trainer

RUN_OVERRIDES = "--override=train_size=512,validation_size=64,test_size=64"


def train(tmp_path, task, preset="short", steps=20):
    model_dir = str(tmp_path / f"run-{task}")
    result = subprocess.run(
        [sys.executable, "-m", "training.train", f"--task={task}", f"--preset={preset}", f"--model_dir={model_dir}",
         f"--steps={steps}", RUN_OVERRIDES],
        capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    return model_dir


def keras_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    task = tasks.get(config["task"])
    trainer = Trainer(task, config, model_dir, progress="lines", out=open(os.devnull, "w"))
    trainer.restore("best")
    return task, config, trainer.model


@pytest.mark.parametrize("task_name", ["adding", "latching", "copy_memory"])
def test_exports_load_in_both_loaders_with_the_models_outputs(tmp_path, task_name):
    model_dir = train(tmp_path, task_name)
    path = export.export(model_dir, task_name, export_base=str(tmp_path / "saved"))
    assert path.endswith(f"{task_name}/1") and os.path.exists(os.path.join(path, export.WARMUP_FILE))
    task, config, model = keras_model(model_dir)
    features = task.input_features(config)
    length = config.get("length") or config["delay"] + 2 * config["copy_length"]
    rng = np.random.default_rng(0)
    for batch, steps in ((2, length), (5, length)):
        x = rng.uniform(0.1, 1.0, size=(batch, steps, features)).astype("float32")
        expected = {k: v.numpy() for k, v in task.serving_outputs(config, model(x)).items()}
        loaded = tf.saved_model.load(path).signatures["serving_default"](inputs=tf.constant(x))
        session = load_with_session(path, {"inputs": x})
        assert set(loaded) == set(session) == set(expected)
        for key, value in expected.items():
            np.testing.assert_allclose(loaded[key].numpy(), value, atol=1e-5)
            np.testing.assert_allclose(session[key], value, atol=1e-5)
    assert_dense_signature_outputs(path)


def test_versions_config_and_serving(tmp_path):
    model_dir = train(tmp_path, "adding")
    base = str(tmp_path / "saved")
    first = export.export(model_dir, "adding", export_base=base)
    second = export.export(model_dir, "adding", export_base=base)
    assert (first, second) == (os.path.join(base, "adding", "1"), os.path.join(base, "adding", "2"))
    with pytest.raises(ValueError, match="already exists"):
        export.export(model_dir, "adding", export_base=base, version=2)
    export.export(model_dir, "other", export_base=base, base_path_prefix="/models")
    config = text_format.Parse(open(os.path.join(base, "models.config")).read(),
                               model_server_config_pb2.ModelServerConfig())
    assert [(c.name, c.base_path) for c in config.model_config_list.config] == [("adding", "adding"),
                                                                                ("other", "/models/other")]
    assert not [n for n in os.listdir(os.path.join(base, "adding")) if n.startswith(".")], "no staging left behind"
    # The server serves the export (warmup replayed on load) over :predict and the task's :regress.
    config.model_config_list.config.pop()
    with open(os.path.join(base, "models.config"), "w") as f:
        f.write(text_format.MessageToString(config))
    server = ModelServer(ServerOptions(model_config_file=os.path.join(base, "models.config"), port=0,
                                       rest_api_port=free_port(), file_system_poll_wait_seconds=0)).start()
    task, run_config, model = keras_model(model_dir)
    x = task.split_data(run_config)["test"][0][:3]
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/adding"
    try:
        predictions = httpx.post(f"{url}:predict", json={"instances": x.tolist()}).json()["predictions"]
        examples = [{"x0": row[:, 0].tolist(), "x1": row[:, 1].tolist()} for row in x]
        regress = httpx.post(f"{url}:regress", json={"signature_name": "regress", "examples": examples}).json()
        status = httpx.get(url).json()
    finally:
        server.stop()
    expected = keras.ops.convert_to_numpy(model(x))[:, 0]
    np.testing.assert_allclose(predictions, expected, atol=1e-5)
    np.testing.assert_allclose(regress["results"], expected, atol=1e-5)
    assert status["model_version_status"][0]["version"] == "2"


def test_bad_export_requests(tmp_path):
    with pytest.raises(ValueError, match="no run in .* \\(no config.json\\)"):
        export.export(str(tmp_path / "nothing"), "x", export_base=str(tmp_path / "saved"))
    model_dir = train(tmp_path, "latching", steps=2)
    with pytest.raises(ValueError, match="--name must be a plain directory name"):
        export.export(model_dir, "../escape", export_base=str(tmp_path / "saved"))
    result = subprocess.run([sys.executable, "-m", "serving.export", f"--model_dir={tmp_path / 'nothing'}",
                             "--name=x", f"--export_base={tmp_path / 'saved'}"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "error: no run in" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["ragged", "sparse"])
def test_the_dense_outputs_check_catches_ragged_and_sparse_outputs(tmp_path, kind):
    # The check every export goes through must fail on what TF Serving cannot write.
    class Module(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
        def serve(self, text):
            if kind == "ragged":
                return {"words": tf.strings.split(text), "count": tf.shape(text)}
            return {"words": tf.sparse.from_dense(tf.expand_dims(text, 1)), "count": tf.shape(text)}

    module = Module()
    path = str(tmp_path / kind)
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    with pytest.raises(AssertionError, match="output words"):
        assert_dense_signature_outputs(path)
