"""Exports load the way TF Serving loads them, give the Keras model's answers, and serve."""

import json
import os
import pickle
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
from tests.training.tasks import runs
from tests.training.tasks.sentiment_trees_test import write_treebank
from training import tasks
from training.data import trees
from training.trainer import Trainer

def keras_model(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        config = json.load(f)
    task = tasks.get(config["task"])
    trainer = Trainer(task, config, model_dir, progress="lines", out=open(os.devnull, "w"))
    trainer.restore("best")
    return task, config, trainer.model


@pytest.mark.parametrize("task_name", ["adding", "latching", "copy_memory"])
def test_exports_load_in_both_loaders_with_the_models_outputs(tmp_path, tiny_run, task_name):
    model_dir = tiny_run(task_name)[2]
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


def test_versions_config_and_serving(tmp_path, tiny_run):
    model_dir = tiny_run("adding")[2]
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


def test_bad_export_requests(tmp_path, tiny_run):
    with pytest.raises(ValueError, match="no run in .* \\(no config.json\\)"):
        export.export(str(tmp_path / "nothing"), "x", export_base=str(tmp_path / "saved"))
    model_dir = tiny_run("latching")[2]
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


# Every export through keras.layers.TFSMLayer, in a process that has only tensorflow and tensorflow-text.

TINY_RUNS = {  # task: (preset, overrides) of a two-step run (data_dir None: a small treebank written for the run)
    "adding": ("short", {"train_size": 128, "validation_size": 32, "test_size": 32}),
    "babi": ("memn2n_small", {"tasks": [1], "train_questions": 100, "test_questions": 20}),
    "copy_memory": ("short", {"train_size": 128, "validation_size": 32, "test_size": 32}),
    "forecasting": ("sunspots", {}),
    "labelling": ("feedback", {"train_size": 128, "validation_size": 32, "test_size": 32}),
    "language_model": ("lstm", {"train_size": 300, "validation_size": 30, "test_size": 30, "max_new_tokens": 5}),
    "latching": ("short", {"train_size": 128, "validation_size": 32, "test_size": 32}),
    "listops": ("tree_lstm", {"train_size": 128, "validation_size": 16, "test_size": 16, "max_depth": 3,
                              "max_length": 30, "test_min_depth": 3, "test_max_depth": 4, "test_max_length": 60,
                              "batch_size": 8, "sort_window": 4, "model_options": {"units": 8, "embedding_dim": 8}}),
    "ntm": ("copy", {"train_size": 128, "validation_size": 32, "test_size": 32}),
    "sentiment_trees": ("fine", {"data_dir": None, "batch_size": 8, "sort_window": 4,
                                 "model_options": {"units": 8, "embedding_dim": 8}}),
    "speech": ("ctc", {"train_size": 32, "validation_size": 8, "test_size": 8, "clean_digits_size": 4,
                       "batch_size": 8, "model_options": {"units": 8, "num_layers": 1}}),
    "translation": ("dates", {"train_size": 128, "validation_size": 32, "test_size": 32}),
}


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """tiny_run(task name) -> (task, config, model_dir, trainer): a run of two steps, best checkpoint restored (one per
    task and module)."""
    made = {}

    def make(task_name):
        if task_name not in made:
            preset, overrides = TINY_RUNS[task_name]
            work = tmp_path_factory.mktemp(task_name)
            if "data_dir" in overrides:
                overrides = {**overrides, "data_dir": write_treebank(str(work / "data"))}
            task, config = runs.make_config(task_name, preset, steps=2, **overrides)
            model_dir = str(work / "run")
            made[task_name] = (task, config, model_dir, runs.train_best(task, config, model_dir))
        return made[task_name]

    return make


def serialized_examples(task, config, count=3):
    """The test split's first sequences as serialized tf.Examples (features x0, x1, ...: one float list each)."""
    records = []
    for sequence in task.split_data(config)["test"][0][:count]:
        features = {f"x{i}": tf.train.Feature(float_list=tf.train.FloatList(value=sequence[:, i]))
                    for i in range(sequence.shape[1])}
        records.append(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
    return np.array(records, dtype=object)


def signature_inputs(task, config, signature):
    """{input name: array} for a signature of the task's export."""
    if signature == "serving_default":
        return {name: value.numpy() for name, value in task.warmup_inputs(config, 3).items()}
    if signature in ("regress", "classify"):
        return {"inputs": serialized_examples(task, config)}
    if signature == "sample":
        return {"prompt": np.array([b"", b"a big", b"some cats that"], dtype=object),
                "temperature": np.array([1.0, 0.7, 1.3], "float32"), "top_k": np.array([0, 3, 0], "int32"),
                "top_p": np.array([1.0, 1.0, 0.9], "float32"), "seed": np.array([1, 2, 3], "int64")}
    if signature == "score":
        return {"sentences": np.array([b"a dog sleeps", b"some cats that sleep run", b""], dtype=object)}
    if signature == "translate":
        return {"source": np.array([b"25 November 2026", b"nov 25 '26", b""], dtype=object),
                "beam_size": np.array([4, 1, 2], "int32"), "max_length": np.array([12, 5, 12], "int32")}
    if signature == "labelled_tree":
        return {"tree": np.array([trees.format_tree(t) for t in task.data(config).trees["test"][:3]], dtype=object)}
    if signature == "nbest":
        return {"source": np.array([b"2026/11/25", b"Wednesday, 25.11.2026"], dtype=object)}
    if signature == "transcribe_samples":
        return {"samples": np.random.default_rng(0).uniform(-0.1, 0.1, (2, 4000)).astype("float32"),
                "lengths": np.array([4000, 2500], "int32")}
    raise AssertionError(f"no test inputs for the signature {signature!r}: add them to signature_inputs")


ISOLATED = r'''
"""Runs exports through keras.layers.TFSMLayer inside Keras models, as a project without seqzoo would."""
import importlib
import importlib.abc
import pickle
import sys

REFUSED = {"zoo", "training", "serving", "tests", "tensorflow_text"}


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in REFUSED:
            raise ModuleNotFoundError(f"No module named {name!r} (refused)", name=name)
        return None


sys.meta_path.insert(0, Refuse())

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

with open(sys.argv[1], "rb") as f:
    cases = pickle.load(f)
report = {"importable": [], "outputs": {}, "load_without_tensorflow_text": {}}
for name in ("zoo", "training", "serving", "tests"):
    try:
        importlib.import_module(name)
        report["importable"].append(name)
    except ModuleNotFoundError:
        pass


def run(case):
    path, endpoint, arrays = case["path"], case["endpoint"], case["inputs"]
    # The default endpoint of TFSMLayer is Keras's "serve": no call_endpoint needed for serving_default's.
    if endpoint == "serve":
        layer = keras.layers.TFSMLayer(path)
    else:
        layer = keras.layers.TFSMLayer(path, call_endpoint=endpoint)
    inputs = {name: keras.Input(shape=value.shape[1:], dtype="string" if value.dtype == object else value.dtype.name,
                                name=name) for name, value in arrays.items()}
    model = keras.Model(inputs, layer(inputs))
    outputs = model({name: tf.constant(value) for name, value in arrays.items()})
    return {name: np.asarray(value) for name, value in outputs.items()}


for case in sorted(cases, key=lambda c: c["needs_text"]):  # tensorflow_text stays refused until a case needs it
    if case["needs_text"] and "tensorflow_text" in REFUSED:
        try:
            tf.saved_model.load(case["path"])
            report["load_without_tensorflow_text"][case["task"]] = "loaded"
        except Exception as error:  # noqa: BLE001 - the message is the result
            report["load_without_tensorflow_text"][case["task"]] = str(error)
        REFUSED.discard("tensorflow_text")
        import tensorflow_text  # noqa: F401
    elif not case["needs_text"]:
        report["load_without_tensorflow_text"][case["task"]] = "loaded"
    report["outputs"][case["id"]] = run(case)

with open(sys.argv[2], "wb") as f:
    pickle.dump(report, f)
'''


@pytest.fixture(scope="module")
def through_tfsm_layer(tiny_run, tmp_path_factory):
    """Exports every task's tiny run, runs every endpoint through TFSMLayer in one isolated process, and returns
    ({task: (path, {signature: (endpoint, inputs, in-process outputs)})}, the process's report)."""
    assert sorted(TINY_RUNS) == sorted(tasks.names()), (
        "every task's export goes through this test: add a tiny run")
    work = tmp_path_factory.mktemp("tfsm")
    exports, cases = {}, []
    for task_name in TINY_RUNS:
        task, config, model_dir, trainer = tiny_run(task_name)
        path = export.export(model_dir, task_name, export_base=str(work / "saved"))
        serving = task.serving_module(config, trainer.model)
        signatures = {}
        try:
            for signature, function in serving.functions.items():
                inputs = signature_inputs(task, config, signature)
                expected = function(**{name: tf.constant(value) for name, value in inputs.items()})
                signatures[signature] = (export.endpoint_name(signature), inputs,
                                         {name: value.numpy() for name, value in expected.items()})
                cases.append({"id": f"{task_name}:{signature}", "task": task_name, "path": os.path.abspath(path),
                              "endpoint": export.endpoint_name(signature), "inputs": inputs,
                              "needs_text": task_name == "language_model"})
        finally:
            if hasattr(serving, "close"):
                serving.close()
        exports[task_name] = (path, signatures)
    with open(work / "cases.pkl", "wb") as f:
        pickle.dump(cases, f)
    script = work / "isolated.py"
    script.write_text(ISOLATED)
    outside = work / "elsewhere"  # not the repository: nothing of seqzoo's on the path
    outside.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-I", str(script), str(work / "cases.pkl"), str(work / "report.pkl")],
                            cwd=outside, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    with open(work / "report.pkl", "rb") as f:
        return exports, pickle.load(f)


@pytest.mark.slow
@pytest.mark.parametrize("task_name", sorted(TINY_RUNS))
def test_every_endpoint_runs_in_a_keras_model_through_tfsm_layer_without_seqzoo(through_tfsm_layer, task_name):
    exports, report = through_tfsm_layer
    assert report["importable"] == [], "the isolated process could import seqzoo's packages"
    path, signatures = exports[task_name]
    assert set(signatures) >= {"serving_default"}
    for signature, (endpoint, inputs, expected) in signatures.items():
        outputs = report["outputs"][f"{task_name}:{signature}"]
        assert set(outputs) == set(expected), (signature, endpoint)
        for name, value in expected.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(outputs[name], value, atol=1e-5, err_msg=f"{signature} {name}")
            else:
                np.testing.assert_array_equal(outputs[name], value, err_msg=f"{signature} {name}")
    # The serving signatures are unchanged: TF Serving's loader still runs them.
    _, inputs, expected = signatures["serving_default"]
    session = load_with_session(path, inputs)
    for name, value in expected.items():
        if value.dtype.kind == "f":
            np.testing.assert_allclose(session[name], value, atol=1e-5)
        else:
            np.testing.assert_array_equal(session[name], value)
    assert_dense_signature_outputs(path)


@pytest.mark.slow
def test_only_the_language_models_export_needs_tensorflow_text(through_tfsm_layer):
    _, report = through_tfsm_layer
    loads = report["load_without_tensorflow_text"]
    assert {task: loads[task] for task in loads if task != "language_model"} == {
        task: "loaded" for task in TINY_RUNS if task != "language_model"}
    assert "TFText" in loads["language_model"], loads["language_model"]
    # What the module's docstring (its --help) says.
    doc = " ".join(export.__doc__.split())
    assert "the language model's export tokenizes with TensorFlow Text ops" in doc and "import tensorflow_text" in doc


def test_a_language_model_export_leaves_nothing_in_the_temporary_folder(tiny_run, tmp_path):
    # The export runs as the command does, in a process of its own: what is left once it has exited is what it left
    # (TensorFlow's autograph, for one, writes its generated sources to the temporary folder and removes them at exit).
    _, _, model_dir, _ = tiny_run("language_model")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    result = subprocess.run(
        [sys.executable, "-m", "serving.export", f"--model_dir={model_dir}", "--name=lm",
         f"--export_base={tmp_path / 'saved'}"],
        cwd=root, env={**os.environ, "TMPDIR": str(scratch), "PYTHONPATH": root}, capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    path = os.path.join(tmp_path / "saved", "lm", "1")
    assert os.listdir(scratch) == []
    assert os.path.exists(os.path.join(path, "assets", "vocabulary.txt"))
    assert sorted(os.listdir(tmp_path / "saved")) == ["lm", "models.config"]
    assert os.listdir(tmp_path / "saved" / "lm") == ["1"]
