"""Warm starting: a new run's model initialised from another run's best checkpoint (`train --init_from=RUN_DIR`).

For fine-tuning a trained model on new data, or with another preset of the same architecture (a longer sequence
length, another learning rate). Only the model's weights are copied: the optimizer, the step and the best value start
fresh, and so does every dropout layer's random state (it belongs to the new run's seed). The two models must have
the same variables with the same shapes; a difference is an error that names it.
"""

import dataclasses
import json
import os
import re

import numpy as np
import tensorflow as tf

# Keras's name for the state of a `keras.random.SeedGenerator` (dropout masks): not a weight.
_SEED_STATE = "seed_generator_state"

# A model variable's key in a run's checkpoints (see `training.trainer._checkpointable`), as TensorFlow's reader lists
# it: the object graph escapes "/" as ".S" and "." as "..".
_KEY = re.compile(r"^model/(\d{4}):(.*)/\.ATTRIBUTES/VARIABLE_VALUE$")


@dataclasses.dataclass(frozen=True)
class Source:
    """The run a model starts from: its `model_dir` (absolute), `config`, best `checkpoint` path and its `step`."""

    model_dir: str
    config: dict
    checkpoint: str
    step: int

    def record(self):
        """What the new run's config.json records under "init_from"."""
        return {"model_dir": self.model_dir, "checkpoint": self.checkpoint, "step": self.step}


def find_source(run_dir, task_name):
    """The best checkpoint of the run in `run_dir`, which must be a run of task `task_name`; a ValueError if not."""
    model_dir = os.path.abspath(run_dir)
    path = os.path.join(model_dir, "config.json")
    if not os.path.isfile(path):
        raise ValueError(f"--init_from: no run in {run_dir!r} (no config.json)")
    with open(path) as f:
        config = json.load(f)
    if config.get("task") != task_name:
        raise ValueError(
            f"--init_from: {run_dir!r} holds a run of task {config.get('task')!r}, and this run's task is "
            f"{task_name!r}; a model can only start from a model of its own task"
        )
    checkpoint = tf.train.latest_checkpoint(os.path.join(model_dir, "best"))
    if checkpoint is None:
        raise ValueError(f"--init_from: the run in {run_dir!r} has no best checkpoint yet; train it first")
    return Source(model_dir, config, checkpoint, int(checkpoint.rsplit("-", 1)[1]))


def copy_weights(model, source):
    """Assigns the weights of `source`'s checkpoint to `model`'s variables, matched by their paths in the model.

    Raises a ValueError, before assigning anything, when the variables differ: by name (another architecture: model,
    cell, number of layers) or by shape (another size: units, vocabulary, ...).
    """
    reader = tf.train.load_checkpoint(source.checkpoint)
    saved = []  # (position, path, checkpoint key, shape)
    for key, shape in reader.get_variable_to_shape_map().items():
        match = _KEY.match(key)
        if match and not _is_seed_state(_unescape(match.group(2))):
            saved.append((int(match.group(1)), _unescape(match.group(2)), key, tuple(shape)))
    saved = [(path, key, shape) for _, path, key, shape in sorted(saved)]  # in the source model's order
    # Paths without the model's own name, as `_checkpointable` keys them.
    own = [(v.path.split("/", 1)[-1], v) for v in model.variables if not _is_seed_state(v.path)]
    where = f"--init_from={source.model_dir} (checkpoint {os.path.basename(source.checkpoint)})"
    saved_paths, own_paths = [p for p, _, _ in saved], [p for p, _ in own]
    if saved_paths != own_paths:
        only_there = [p for p in saved_paths if p not in own_paths]
        only_here = [p for p in own_paths if p not in saved_paths]
        parts = ([f"only in its model: {', '.join(only_there)}"] if only_there else []) + (
            [f"only in this one: {', '.join(only_here)}"] if only_here else [])
        details = "; ".join(parts) or "the same variables in another order"
        raise ValueError(
            f"{where}: the two models have different variables ({details}); a model starts only from one of the "
            "same architecture (the same model, cell and number of layers)"
        )
    mismatched = [
        f"{path}: {shape} there, {tuple(variable.shape)} here"
        for (path, _, shape), (_, variable) in zip(saved, own)
        if shape != tuple(variable.shape)
    ]
    if mismatched:
        raise ValueError(
            f"{where}: variable shapes differ ({'; '.join(mismatched)}); a model starts only from one of the same "
            "sizes (units, embedding sizes, vocabulary, inputs and outputs)"
        )
    for (_, key, _), (_, variable) in zip(saved, own):
        variable.assign(np.asarray(reader.get_tensor(key), dtype=variable.dtype))


def _is_seed_state(path):
    return path.rsplit("/", 1)[-1] == _SEED_STATE


def _unescape(name):
    """Undoes the object graph's escaping of a checkpoint key's name: ".S" -> "/", ".." -> "."."""
    return re.sub(r"\.([.S])", lambda m: "/" if m.group(1) == "S" else ".", name)
