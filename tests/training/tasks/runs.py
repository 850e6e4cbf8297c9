"""What the task tests share: a resolved run config, and a run trained to its best checkpoint."""

import io

from training import config as run_config
from training import tasks
from training.trainer import DEFAULTS
from training.trainer import Trainer


def make_config(task_name, preset, **overrides):
    """(task, config) as `python -m training.train --task=... --preset=... --override=...` resolves them."""
    task = tasks.get(task_name)
    config = run_config.resolve(DEFAULTS, task.presets, preset, overrides)
    return task, {"task": task.name, "preset": preset, **config}


def train_best(task, config, model_dir):
    """Trains the run in `model_dir` and returns its trainer with the best checkpoint restored."""
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    trainer.fit()
    trainer.restore("best")
    return trainer
