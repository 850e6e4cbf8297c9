"""Evaluate a trained run: python -m training.evaluate --model_dir=DIR [--split=test] [--checkpoint=best]
[--override=key=value,...].

Restores the run's best checkpoint (or its latest), evaluates it on a split of the run's task (the test split by
default), prints the metrics and writes them to DIR/evaluation_<split>.json. `--override` replaces values of the
run's config for this evaluation only (the split's data, e.g. the ntm task's `eval_max_length`; the model is the one
trained); the result records them and goes to DIR/evaluation_<split>_<overrides>.json.
"""

import json
import os
import re
import sys

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

import_tensorflow()

from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.trainer import Trainer  # noqa: E402
from training.trainer import _write_json  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags, defined when the module runs as a program, so that `evaluate` can be imported
    beside other entry points (`serving.export` defines --model_dir too)."""
    flags.DEFINE_string("model_dir", None, "Directory of a run written by python -m training.train.")
    flags.DEFINE_enum("split", "test", ["train", "validation", "test"], "Which split to evaluate.")
    flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint to evaluate.")
    flags.DEFINE_string("override", "", "Comma-separated key=value pairs that replace the run's config values for "
                        "this evaluation only (e.g. eval_max_length=40).")
    flags.mark_flag_as_required("model_dir")


def evaluate(model_dir, split="test", checkpoint="best", overrides=None):
    """Returns {"split", "checkpoint", "step", "metrics"} for the run in `model_dir`; raises ValueError if none.
    `overrides` ({key: value}, keys of the run's config) replace config values for this evaluation only."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"no run in {model_dir!r} (no config.json); train one with python -m training.train")
    with open(path) as f:
        config = json.load(f)
    trainer = Trainer(tasks.get(config["task"]), config, model_dir, progress="lines")
    restored = trainer.restore(checkpoint)
    if restored is None:
        raise ValueError(f"the run in {model_dir!r} has no {checkpoint} checkpoint yet; train it first")
    if overrides:
        # After the restore: the run's config.json and checkpoints stay as they were.
        trainer.config = run_config.resolve({}, {"run": trainer.config}, "run", overrides)
        trainer.task.check_config(trainer.config)
    metrics = trainer.evaluate(split)
    notes = {}
    for key, value in trainer.task.decode_metrics(trainer.config, trainer.model, split).items():
        if isinstance(value, str):
            notes[key] = value
        else:
            metrics[key] = float(value)
    result = {
        "split": split,
        "checkpoint": restored,
        "step": int(trainer.step),
        "metrics": metrics,
        "chance_levels": trainer.task.chance_levels(config),
    }
    if notes:
        result["notes"] = notes
    name = f"evaluation_{split}"
    if overrides:
        result["overrides"] = dict(overrides)
        name += "_" + re.sub(r"[^A-Za-z0-9_.=-]+", "_", ",".join(f"{k}={v}" for k, v in sorted(overrides.items())))
    _write_json(os.path.join(model_dir, f"{name}.json"), result)
    return result


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        result = evaluate(FLAGS.model_dir, FLAGS.split, FLAGS.checkpoint,
                          run_config.parse_overrides(FLAGS.override))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    chance = result["chance_levels"]
    shown = ", ".join(
        f"{k} {v:.4g}" + (f" (chance level {chance[k]:.4g})" if k in chance else "") for k, v in result["metrics"].items()
    )
    print(f"{result['split']} split, {FLAGS.checkpoint} checkpoint (step {result['step']}): {shown}")
    for key, value in result.get("notes", {}).items():
        print(f"{key}: {value}")
    return 0


if __name__ == "__main__":
    define_flags()
    run(main)
