"""Is the input pipeline ever the bottleneck? Training-step time with the real tf.data pipeline against the same
batches already in memory.

    python -m benchmarks.pipeline                 # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.pipeline --rounds=3 --output=

For each configuration a Trainer is built once; a round times `--steps` training steps fed by the trainer's own
pipeline (its one stream for the run: seeded shuffle, sharding, batching or bucketing by length, gathering, prefetch),
and the same number of steps fed from a list of batches materialized beforehand. The figure is the median over interleaved rounds of the
per-round ratio (pipeline / cached). Target: <= 1.05.
"""

import datetime
import io
import tempfile

from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

import_tensorflow()

from benchmarks import report  # noqa: E402
from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 7, "Interleaved rounds (at least 5 for the record).", lower_bound=1)
flags.DEFINE_integer("steps", 40, "Training steps per timed run.", lower_bound=1)
flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose pipeline section is rewritten; empty: none.")

TARGET = 1.05

# (name, task, preset, overrides, tokens per step): fixed-length batches, variable lengths bucketed by length, and
# the windows of parallel token streams (truncated BPTT: the state carried from each window into the next).
SEQUENCE_SIZES = {"train_size": 4096, "validation_size": 64, "test_size": 64, "units": 64, "batch_size": 64}
CONFIGS = [
    ("adding, T = 100, fixed length", "adding", "default",
     {**SEQUENCE_SIZES, "length": 100, "length_jitter": 0.0}, 64 * 100),
    ("adding, T = 100 to 110, bucketed by length", "adding", "default",
     {**SEQUENCE_SIZES, "length": 100, "length_jitter": 0.1}, 64 * 105),
    ("copy memory, delay 100, one-hot inputs", "copy_memory", "default",
     {**SEQUENCE_SIZES, "delay": 100, "copy_length": 10}, 64 * 120),
    ("token streams, 64 streams x windows of 35, LSTM LM", "language_model", "lstm",
     {"bptt_steps": 35, "batch_size": 64, "train_size": 20000, "validation_size": 64, "test_size": 64,
      "model_options": {"units": 64, "embedding_dim": 32}}, 64 * 35),
]


def build(task_name, preset, overrides, model_dir):
    task = tasks.get(task_name)
    config = {"task": task_name, "preset": preset, **run_config.resolve(DEFAULTS, task.presets, preset, overrides)}
    return Trainer(task, config, model_dir, out=io.StringIO())


def section(rows):
    lines = [
        "## Input pipeline: training steps fed by tf.data against cached batches (`benchmarks/pipeline.py`)",
        "",
        f"Command: `python -m benchmarks.pipeline --rounds={FLAGS.rounds} --steps={FLAGS.steps}`, "
        f"{datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}.",
        "",
        f"{FLAGS.steps} training steps of the trainer (LSTM 64, batch 64) per run; the pipeline runs draw from the "
        "trainer's stream (seeded shuffle, batching or bucketing, gathering, prefetch; for token streams, the "
        "windows of every stream cut from the corpus in tf.data, with the state carried between steps); the cached "
        "runs replay batches already in memory. Tokens: time steps of the batch (examples x length). "
        "Median over interleaved rounds; the ratio is the median of per-round ratios.",
        "",
        "| configuration | pipeline ms/step | cached ms/step | pipeline tokens/s | cached tokens/s | ratio | target | "
        "verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, tokens, (pipeline, cached, ratio) in rows:
        verdict = "meets" if ratio <= TARGET else "**misses**"
        lines.append(f"| {name} | {pipeline:.2f} | {cached:.2f} | {tokens * 1e3 / pipeline:,.0f} | "
                     f"{tokens * 1e3 / cached:,.0f} | {ratio:.3f} | <= {TARGET:.2f} | {verdict} |")
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    absl_warnings_only()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for index, (name, task_name, preset, overrides, tokens) in enumerate(CONFIGS):
            print(f"{name}: {FLAGS.rounds} rounds...", flush=True)
            result = report.pipeline_against_cached(build(task_name, preset, overrides, f"{scratch}/{index}"),
                                                    FLAGS.steps, FLAGS.rounds)
            print(f"  pipeline {result[0]:.2f} ms/step, cached {result[1]:.2f} ms/step, ratio {result[2]:.3f}")
            rows.append((name, tokens, result))
    text = section(rows)
    report.publish(text, FLAGS.output, "benchmarks.pipeline")


if __name__ == "__main__":
    run(main)
