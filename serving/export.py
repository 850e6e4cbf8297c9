"""Export a trained run as a SavedModel that TensorFlow Serving loads.

    python -m serving.export --model_dir=runs/adding --name=adding [--export_base=saved_models] [--version=N]
                             [--checkpoint=best|latest] [--base_path_prefix=/models]

Writes `<export_base>/<name>/<version>/` (version: the next integer unless given) with the task's signatures:
`serving_default` (dense tensors in and out; strings in and out for text tasks: the bAbI memory network takes a story,
one sentence a line, and a question and returns the answer with each hop's attention over the story's sentences; the
tree models take a tree as a string, a ListOps expression or an unlabelled parse, and return the root's class, its
probabilities and every node's class with its span) plus the task's own (`regress` for adding, `classify` for
latching, over serialized tf.Examples; `sample` and `score` for a language model, and `continue` for one trained on a
stream; `translate` and `nbest` for
translation; `labelled_tree` for sentiment trees, over the treebank's labelled lines), warmup requests in
`assets.extra/tf_serving_warmup_requests`, and adds the model to `<export_base>/models.config`. The version directory
is written under a temporary name and renamed into place, so a polling server never sees half a version, and nothing
is left outside it. The SavedModel holds the model's raw `tf.Variable`s, which the TF1 session loader (and so TF
Serving) needs.

Every signature also has an endpoint that takes its inputs as one dict, which `keras.layers.TFSMLayer` calls:
`serve` for `serving_default` (Keras's default endpoint name) and `serve_<signature>` for the others (`serve_sample`,
`serve_score`, `serve_continue`, `serve_regress`, `serve_classify`, `serve_translate`, `serve_nbest`,
`serve_labelled_tree`), each returning the signature's outputs.

Ops: the language model's export tokenizes with TensorFlow Text ops, and so does a translation export whose tokenizer
splits words (the `files` preset), so a Python program that loads them must `import tensorflow_text` first (pip
package tensorflow-text; stock TensorFlow Serving has the ops built in). The `dates` translators (characters in and
out), the bAbI memory network (tokenised with TensorFlow's regex ops), the tree models (parsed with TensorFlow's
string ops and a while loop) and every other task's export use TensorFlow's core ops alone and load with tensorflow
alone.
"""

import io
import json
import os
import shutil
import sys

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

from google.protobuf import text_format  # noqa: E402
from tensorflow_serving.apis import prediction_log_pb2  # noqa: E402
from tensorflow_serving.config import model_server_config_pb2  # noqa: E402

from training import tasks  # noqa: E402
from training.trainer import Trainer  # noqa: E402

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
CONFIG_FILE = "models.config"

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Directory of a run written by python -m training.train.")
flags.DEFINE_string("name", None, "The model's name in the server (and its directory under --export_base).")
flags.DEFINE_string("export_base", "saved_models", "The serving base path that holds models.config.")
flags.DEFINE_integer("version", None, "Version number (default: one more than the highest present).", lower_bound=1)
flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint of the run to export.")
flags.DEFINE_string("base_path_prefix", "", "Written before the name as the model's base_path in models.config "
                                            "(e.g. /models for the tensorflow/serving image); default: relative.")


class ExportModule(tf.Module):
    """The exported object: the model, its raw variables (the TF1 loader needs them tracked), the task's serving
    module (its signatures in `functions`, and any resources they use), and one dict endpoint per signature
    (`endpoint_name`), an attribute that `keras.layers.TFSMLayer` calls."""

    def __init__(self, model, serving):
        super().__init__()
        self.model = model
        self.raw_variables = [variable.value for variable in model.variables]
        self.serving = serving
        for signature, function in serving.functions.items():
            setattr(self, endpoint_name(signature), dict_endpoint(signature, function))


def endpoint_name(signature):
    """The endpoint of a signature: `serve` for `serving_default`, as in Keras's own exports (so that
    `keras.layers.TFSMLayer(path)` calls it by default), and `serve_<signature>` for the others."""
    return "serve" if signature == "serving_default" else f"serve_{signature}"


def dict_endpoint(signature, function):
    """A tf.function that takes the inputs of `function` (a tf.function with an input signature of named
    TensorSpecs) as one dict {input name: tensor} and returns its outputs.

    A signature function takes one keyword argument per input, which `keras.layers.TFSMLayer` cannot give: it calls
    its endpoint with one positional structure."""
    specs = list(function.input_signature)
    unnamed = [index for index, spec in enumerate(specs) if not spec.name]
    if unnamed:
        raise ValueError(f"signature {signature!r}: every input TensorSpec needs a name (the dict's key); input "
                         f"{unnamed[0]} has none")

    @tf.function(input_signature=[{spec.name: spec for spec in specs}])
    def endpoint(inputs):
        return function(*[inputs[spec.name] for spec in specs])

    return endpoint


def next_version(model_base):
    versions = [int(n) for n in os.listdir(model_base) if n.isdigit()] if os.path.isdir(model_base) else []
    return max(versions, default=0) + 1


def warmup_records(task, config, name, count=2):
    """Serialized PredictionLogs: a Predict request on the task's warmup inputs (its first `count` test examples)."""
    log = prediction_log_pb2.PredictionLog()
    request = log.predict_log.request
    request.model_spec.name = name
    request.model_spec.signature_name = "serving_default"
    for key, value in task.warmup_inputs(config, count).items():
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
    return [log.SerializeToString()]


def update_models_config(path, name, base_path):
    """Adds (or points at the new base path) the model's entry in a text-format ModelServerConfig."""
    config = model_server_config_pb2.ModelServerConfig()
    if os.path.exists(path):
        with open(path) as f:
            text_format.Parse(f.read(), config)
    entries = [c for c in config.model_config_list.config if c.name == name]
    entry = entries[0] if entries else config.model_config_list.config.add(name=name)
    entry.base_path = base_path
    entry.model_platform = "tensorflow"
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        f.write("# TensorFlow Serving model config (text protobuf). `python -m serving.export` adds an entry per "
                "exported model.\n")
        f.write(text_format.MessageToString(config))
    os.replace(temporary, path)


def write_saved_model(task, config, model, path):
    """Saves `model`'s SavedModel for `task` at `path`: the task's signatures and their dict endpoints (no warmup
    requests, no models.config entry). What the task's serving module wrote for the save (the language model's
    vocabulary file, the translation's two) is removed afterwards: the SavedModel holds its own copies under
    assets/."""
    serving = task.serving_module(config, model)
    try:
        module = ExportModule(model, serving)
        signatures = {name: function.get_concrete_function() for name, function in serving.functions.items()}
        tf.saved_model.save(module, path, signatures=signatures)
    finally:
        close = getattr(serving, "close", None)
        if close is not None:
            close()


def export(model_dir, name, export_base="saved_models", version=None, checkpoint="best", base_path_prefix=""):
    """Exports the run in `model_dir`; returns the version directory. Raises ValueError naming what is wrong."""
    config_path = os.path.join(model_dir, "config.json")
    if not os.path.exists(config_path):
        raise ValueError(f"no run in {model_dir!r} (no config.json); train one with python -m training.train")
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"--name must be a plain directory name, got {name!r}")
    with open(config_path) as f:
        config = json.load(f)
    task = tasks.get(config["task"])
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    if trainer.restore(checkpoint) is None:
        raise ValueError(f"the run in {model_dir!r} has no {checkpoint} checkpoint yet; train it first")
    model_base = os.path.join(export_base, name)
    version = version or next_version(model_base)
    final = os.path.join(model_base, str(version))
    if os.path.exists(final):
        raise ValueError(f"{final} already exists; choose another --version or leave it out")
    staging = os.path.join(model_base, f".export-{version}-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    os.makedirs(model_base, exist_ok=True)
    try:
        write_saved_model(task, config, trainer.model, staging)
        os.makedirs(os.path.join(staging, "assets.extra"), exist_ok=True)
        with tf.io.TFRecordWriter(os.path.join(staging, WARMUP_FILE)) as writer:
            for record in warmup_records(task, config, name):
                writer.write(record)
        os.rename(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    base_path = f"{base_path_prefix.rstrip('/')}/{name}" if base_path_prefix else name
    update_models_config(os.path.join(export_base, CONFIG_FILE), name, base_path)
    return final


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not FLAGS.model_dir or not FLAGS.name:
        raise app.UsageError("--model_dir and --name are required")
    try:
        path = export(FLAGS.model_dir, FLAGS.name, FLAGS.export_base, FLAGS.version, FLAGS.checkpoint,
                      FLAGS.base_path_prefix)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {path} and listed {FLAGS.name} in {os.path.join(FLAGS.export_base, CONFIG_FILE)}")
    return 0


if __name__ == "__main__":
    run(main)
