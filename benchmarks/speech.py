"""Speech: how much faster than real time the exported recognizer transcribes on this CPU, and whether its input
pipeline ever slows training.

    python -m benchmarks.speech                  # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.speech --rounds=3 --output=

1. Real-time factor of the export: the `ctc` preset's model (its speed does not depend on its weights) exported as
   `seqzoo-export` writes it and loaded with `tf.saved_model.load`; its `serving_default` transcribes test
   utterances sent as WAV bytes, one per call (batch 1) and 16 per call. The figure is seconds of audio transcribed
   per second of wall clock, the median over interleaved rounds. Target: >= 50x real time at batch 1.
2. Input pipeline: training steps of the `ctc` preset fed by the task's own pipeline (the utterances read from the
   TFRecord cache into memory once, then per step: seeded shuffle, bucketing by length, gathering, int16 audio
   padded into the batch, prefetch) against the same batches already in memory. The figure is the median of per-round
   ratios (pipeline / cached). Target: <= 1.05.
"""

import datetime
import io
import statistics
import tempfile
import time

import numpy as np
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

from benchmarks import report  # noqa: E402
from serving import export  # noqa: E402
from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.data import speech as speech_data  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 5, "Interleaved rounds (at least 5 for the record).", lower_bound=1)
flags.DEFINE_integer("utterances", 32, "Test utterances transcribed per round.", lower_bound=16)
flags.DEFINE_integer("steps", 20, "Training steps per timed pipeline run.", lower_bound=1)
flags.DEFINE_integer("train_size", 640, "Training utterances the pipeline draws its batches from.", lower_bound=16)
flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose speech section is rewritten; empty: none.")

RTF_TARGET = 50.0
PIPELINE_TARGET = 1.05
# The ctc preset on a corpus smaller than its default (the speed per utterance is the same; synthesizing it the first
# time takes about a minute; later runs read the cache).
SIZES = {"train_size": 640, "validation_size": 32, "test_size": 64, "clean_digits_size": 16}


def config_of(preset="ctc", **overrides):
    task = tasks.get("speech")
    sizes = {**SIZES, "train_size": FLAGS.train_size, "test_size": max(SIZES["test_size"], FLAGS.utterances)}
    return task, {"task": "speech", "preset": preset,
                  **run_config.resolve(DEFAULTS, task.presets, preset, {**sizes, **overrides})}


def real_time_factors(task, config, scratch):
    """{batch size: (x real time, ms per call)} of the export's serving_default on WAV bytes."""
    model = task.build_model(config)
    model((np.zeros((1, 800), "float32"), np.array([800], "int32")))
    path = f"{scratch}/export"
    export.write_saved_model(task, config, model, path)
    serve = tf.saved_model.load(path).signatures["serving_default"]
    examples = task.corpus(config).examples["test"][: FLAGS.utterances]
    files = [speech_data.wav_bytes(np.asarray(e.audio, np.float32) / 32768.0) for e in examples]
    seconds = sum(len(e.audio) for e in examples) / speech_data.SAMPLE_RATE
    calls = {
        1: [tf.constant([f]) for f in files],
        16: [tf.constant(files[i : i + 16]) for i in range(0, len(files), 16)],
    }
    runs = {size: (lambda batches=batches: [serve(wav=b) for b in batches]) for size, batches in calls.items()}
    for function in runs.values():
        function()  # trace and warm up
    times = report.interleaved({str(size): function for size, function in runs.items()}, FLAGS.rounds)
    return {size: (seconds / statistics.median(times[str(size)]),
                   1e3 * statistics.median(times[str(size)]) / len(calls[size])) for size in calls}, seconds


def pipeline_ratio(task, config, scratch):
    trainer = Trainer(task, {**config, "batch_size": 16}, f"{scratch}/run", out=io.StringIO())
    return report.pipeline_against_cached(trainer, FLAGS.steps, FLAGS.rounds)


def section(factors, seconds, pipeline, parameters):
    lines = [
        "## Speech: real-time factor of the export, and the input pipeline (`benchmarks/speech.py`)",
        "",
        f"Command: `python -m benchmarks.speech --rounds={FLAGS.rounds} --utterances={FLAGS.utterances} "
        f"--steps={FLAGS.steps} --train_size={FLAGS.train_size}`"
        f"{report.make_bench_note(FLAGS, ['rounds', 'utterances', 'steps', 'train_size'])}, "
        f"{datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}.",
        "",
        f"The `ctc` preset ({parameters:,} parameters: log-mel front end, frames stacked by 3, 2 bidirectional LSTM "
        f"layers of 160) exported and loaded with `tf.saved_model.load`; `serving_default` transcribes "
        f"{FLAGS.utterances} synthesized test utterances ({seconds:.1f} s of 16 kHz audio) sent as WAV bytes, decoding "
        "in the graph included. x real time: seconds of audio per second of wall clock; median over interleaved "
        "rounds.",
        "",
        "| batch | ms per call | x real time | target | verdict |",
        "|---|---|---|---|---|",
    ]
    for size, (factor, milliseconds) in factors.items():
        target = f">= {RTF_TARGET:.0f}x" if size == 1 else "–"
        verdict = ("meets" if factor >= RTF_TARGET else "**misses**") if size == 1 else "–"
        lines.append(f"| {size} | {milliseconds:.1f} | {factor:.0f}x | {target} | {verdict} |")
    pipeline_ms, cached_ms, ratio = pipeline
    lines += [
        "",
        f"Training steps of the same preset (batch 16, {FLAGS.steps} steps per run) fed by the task's pipeline "
        "(utterances read from the TFRecord cache into memory once; per step a seeded shuffle, bucketing by length, "
        "gathering and padding the int16 audio, prefetch) against the same batches cached in memory:",
        "",
        "| pipeline ms/step | cached ms/step | ratio | target | verdict |",
        "|---|---|---|---|---|",
        f"| {pipeline_ms:.1f} | {cached_ms:.1f} | {ratio:.3f} | <= {PIPELINE_TARGET:.2f} | "
        f"{'meets' if ratio <= PIPELINE_TARGET else '**misses**'} |",
    ]
    return "\n".join(lines) + "\n"


def main(argv):
    del argv
    absl_warnings_only()
    task, config = config_of()
    start = time.perf_counter()
    task.corpus(config)
    print(f"corpus ready in {time.perf_counter() - start:.0f} s", flush=True)
    with tempfile.TemporaryDirectory() as scratch:
        factors, seconds = real_time_factors(task, config, scratch)
        print(f"real time: {factors}", flush=True)
        pipeline = pipeline_ratio(task, config, scratch)
        print(f"pipeline: {pipeline}", flush=True)
    model = task.build_model(config)
    model((np.zeros((1, 800), "float32"), np.array([800], "int32")))
    parameters = int(sum(np.prod(v.shape) for v in model.trainable_variables))
    report.publish(section(factors, seconds, pipeline, parameters), FLAGS.output, "benchmarks.speech")


if __name__ == "__main__":
    run(main)
