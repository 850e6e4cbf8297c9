"""A run's model as a Keras file (`.keras`), which `keras.saving.load_model` opens after `import zoo`.

The trainer writes `<model_dir>/best/model.keras` each time it writes the best checkpoint; `write` makes the file of
a run's best or latest checkpoint on request (`python -m training.keras_file`). In your own code:

    import keras
    import zoo  # registers the zoo's layers and models with Keras

    model = keras.saving.load_model("runs/adding/best/model.keras")

Without `import zoo`, Keras stops with "TypeError: Could not locate class 'StackedRNN'" (the config it prints names
`zoo>StackedRNN`, the class's registered name); `load` imports the zoo and names a class that is still missing.
"""

import io
import json
import os
import re

import keras

import zoo  # noqa: F401  (registers the zoo's classes with Keras)
from training import tasks

BEST_FILE = "model.keras"  # in a run's best/
LATEST_FILE = "latest.keras"  # in the run's directory, written on request


def save(model, path):
    """Writes `model` to the Keras file `path` atomically: a temporary file beside it, renamed over it."""
    path = os.fspath(path)
    if not path.endswith(".keras"):
        raise ValueError(f"a Keras file's name must end in .keras, got {path!r}")
    directory, name = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}.tmp.keras")
    try:
        model.save(temporary)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)


def load(path):
    """`keras.saving.load_model(path)` with the zoo's classes registered; a ValueError names a class the file needs
    that is still not registered (one of your own, or of a newer seqzoo)."""
    try:
        return keras.saving.load_model(path)
    except TypeError as error:
        # Keras says "Could not locate class 'NAME'", inside its own "could not be deserialized" message when the
        # class is nested in another model.
        missing = re.search(r"Could not locate (class|function) '([^']+)'", str(error))
        if missing is None:
            raise
        raise ValueError(
            f"{path} needs the {missing.group(1)} {missing.group(2)!r}, which Keras does not know: `import zoo` "
            "registers the zoo's classes (done here); import the module that defines it (your own code, or a newer "
            "seqzoo) before loading"
        ) from None


def default_path(model_dir, checkpoint):
    """Where `write` puts the file of a run's "best" or "latest" checkpoint by default."""
    if checkpoint == "best":
        return os.path.join(model_dir, "best", BEST_FILE)
    return os.path.join(model_dir, LATEST_FILE)


def write(model_dir, checkpoint="best", path=None):
    """Writes the model of the run in `model_dir` at its `checkpoint` ("best" or "latest") to the Keras file `path`
    (default: `default_path`). Returns {"path", "checkpoint", "step"}; a ValueError when there is no such run or
    checkpoint."""
    from training.trainer import Trainer  # the trainer writes its files with `save` above

    config_path = os.path.join(model_dir, "config.json")
    if not os.path.exists(config_path):
        raise ValueError(f"no run in {model_dir!r} (no config.json); train one with python -m training.train")
    with open(config_path) as f:
        config = json.load(f)
    trainer = Trainer(tasks.get(config["task"]), config, model_dir, progress="lines", out=io.StringIO())
    restored = trainer.restore(checkpoint)
    if restored is None:
        raise ValueError(f"the run in {model_dir!r} has no {checkpoint} checkpoint yet; train it first")
    path = path or default_path(model_dir, checkpoint)
    save(trainer.model, path)
    return {"path": path, "checkpoint": restored, "step": int(trainer.step)}
