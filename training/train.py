"""Train a task: python -m training.train --task=NAME --preset=NAME --model_dir=DIR [options].

    --override key=value,...   replace preset values (hyperparameters live in presets, not in flags)
    --strategy                 default | mirrored | multi_worker (TF_CONFIG) | tpu (with --tpu=ADDRESS)
    --mixed_precision          float16 compute with float32 weights and loss scaling
    --jit_compile              compile the training step with XLA
    --epochs=N | --steps=N     how long to train (default: the preset's epochs)
    --seed=N                   seed of data order and initial weights (default: the preset's)
    --data_dir=DIR             where a task that reads files finds them (e.g. a corpus in the Penn Treebank layout)
    --progress=auto|bar|lines  a bar per epoch, or a line every log_every_steps steps (default: a bar on a terminal)
    --init_from=RUN_DIR        start the model from RUN_DIR's best checkpoint (fine-tuning; the optimizer starts fresh)

Running again with the same --model_dir resumes the run (a model_dir without a checkpoint holds no run yet, so a
corrected command may start afresh there). Exit status: 0 on success, 1 when the loss diverged, 2 on
a usage error (unknown task, preset, override key or strategy; bad data path).
"""

import os
import sys

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

import_tensorflow()

from training import config as run_config  # noqa: E402
from training import strategies  # noqa: E402
from training import tasks  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402
from training.trainer import TrainingDiverged  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("task", None, f"The task to train: one of {tasks.names()}.")
flags.DEFINE_string("preset", None, "The task's preset (default: the task's default preset).")
flags.DEFINE_string("model_dir", None, "Directory of the run: config, checkpoints, logs, metrics.")
flags.DEFINE_string("override", "", "Comma-separated key=value pairs that replace preset values.")
flags.DEFINE_string("strategy", "default", f"Distribution strategy: one of {list(strategies.NAMES)}.")
flags.DEFINE_string("tpu", None, "TPU address or name, with --strategy=tpu.")
flags.DEFINE_bool("mixed_precision", False, "Compute in float16 (mixed_float16 policy) with loss scaling.")
flags.DEFINE_bool("jit_compile", False, "Compile the training step with XLA.")
flags.DEFINE_integer("epochs", None, "Train for this many epochs in all.", lower_bound=1)
flags.DEFINE_integer("steps", None, "Train for this many steps in all (instead of --epochs).", lower_bound=1)
flags.DEFINE_integer("seed", None, "Seed of the data, its order and the initial weights.")
flags.DEFINE_string("data_dir", None, "Directory of the task's data files, for tasks that read files.")
flags.DEFINE_enum(
    "progress",
    "auto",
    ["auto", "bar", "lines"],
    "bar: a bar per epoch, redrawn in place, up to the step the run stops at. lines (for logs): a line every "
    f"log_every_steps steps with the loss, steps/s and ETA, at most one every {Trainer.line_seconds:g} seconds, and a "
    "line per epoch. auto: bar on a terminal, lines otherwise.",
)
flags.DEFINE_string("init_from", None, "Directory of a run of the same task whose best checkpoint the model starts "
                    "from (fine-tuning on new data or with another preset of the same architecture); the optimizer "
                    "starts fresh. Ignored when --model_dir holds a run to resume.")
flags.mark_flags_as_required(["task", "model_dir"])


def resolve_config():
    """The run's config from the flags; raises ValueError naming what is wrong."""
    if FLAGS.epochs and FLAGS.steps:
        raise ValueError("give --epochs or --steps, not both")
    task = tasks.get(FLAGS.task)
    preset = FLAGS.preset or task.default_preset
    config = run_config.resolve(DEFAULTS, task.presets, preset, run_config.parse_overrides(FLAGS.override))
    if FLAGS.epochs:
        config["epochs"], config["steps"] = FLAGS.epochs, None
    if FLAGS.steps:
        config["steps"] = FLAGS.steps
    if FLAGS.seed is not None:
        config["seed"] = FLAGS.seed
    if FLAGS.data_dir:
        if "data_dir" not in config:
            raise ValueError(f"task {task.name!r} generates its data and reads no files; leave out --data_dir")
        config["data_dir"] = os.path.abspath(FLAGS.data_dir)
    return task, {"task": task.name, "preset": preset, **config, "mixed_precision": FLAGS.mixed_precision}


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        strategy = strategies.make(FLAGS.strategy, FLAGS.tpu)
        task, config = resolve_config()
        trainer = Trainer(
            task,
            config,
            FLAGS.model_dir,
            strategy=strategy,
            jit_compile=FLAGS.jit_compile,
            progress=FLAGS.progress,
            init_from=FLAGS.init_from,
        )
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        metrics = trainer.fit()
    except TrainingDiverged as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if trainer.chief:
        shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics["validation"].items())
        print(f"done: step {metrics['step']}, validation {shown}; best {metrics['best']['metric']} "
              f"{metrics['best']['value']:.4g}; files in {FLAGS.model_dir}")
    return 0


if __name__ == "__main__":
    run(main)
