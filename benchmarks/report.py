"""What every benchmark writes: the machine it ran on, and its own section of docs/performance.md."""

import os
import platform
import sys
import statistics
import time

import keras
import tensorflow as tf

from training.machine import cpu_name


def machine():
    """One line: CPU, cores, GPUs, and the versions that matter."""
    gpus = tf.config.list_physical_devices("GPU")
    devices = ", ".join(tf.config.experimental.get_device_details(g).get("device_name", g.name) for g in gpus)
    return (
        f"{cpu_name()}, {os.cpu_count()} cores, {devices or 'no GPU'}; "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}, Python {platform.python_version()}"
    )


def interleaved(runs, rounds, seed=0):
    """Times every `runs[name]()` once per round, in a new shuffled order each round.

    Returns {name: [seconds per round]}. Interleaving spreads a shared machine's slow spells over all the runs.
    """
    import random

    order, times = list(runs), {name: [] for name in runs}
    shuffle = random.Random(seed)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - start)
    return times


def pipeline_against_cached(trainer, steps, rounds):
    """Training-step time of `trainer` fed by its own tf.data pipeline against the same batches already in memory:
    (pipeline ms/step, cached ms/step, median of per-round ratios), over `rounds` interleaved rounds of `steps`."""
    stream = iter(trainer.train_data())
    cached = [next(stream) for _ in range(steps)]

    def from_pipeline():
        for _ in range(steps):
            trainer.train_step(next(stream))

    def from_memory():
        for batch in cached:
            trainer.train_step(batch)

    from_pipeline(), from_memory()  # trace, and warm the pipeline up as a run's first steps do
    times = interleaved({"pipeline": from_pipeline, "cached": from_memory}, rounds)
    per_step = 1e3 / steps
    return (per_step * statistics.median(times["pipeline"]), per_step * statistics.median(times["cached"]),
            median_ratio(times["pipeline"], times["cached"]))


def median_ratio(numerator, denominator):
    """The median over rounds of the per-round ratio: robust to drifts that hit both runs of a round."""
    return statistics.median(a / b for a, b in zip(numerator, denominator))


_PREAMBLE = ("# Performance\n\nEvery figure here is written by the benchmark named in its section, run by `make bench`; "
             "rerun it to refresh the numbers. Ratios compare runs in the same process.\n\n")


def make_bench_note(flag_values, names):
    """" (`make bench` runs these defaults...)" after a benchmark's command when the flags `names` of `flag_values`
    (absl's FLAGS) all have their defaults, else ""; it says "without --shared_machine" when that flag is set."""
    if not all(flag_values[name].value == flag_values[name].default for name in names):
        return ""
    if "shared_machine" in flag_values and flag_values.shared_machine:
        return " (`make bench` runs these defaults, without --shared_machine)"
    return " (`make bench` runs these defaults)"


def write_section(path, section, name, preamble=_PREAMBLE):
    """Replaces (or appends) the section between `<!-- name -->` and `<!-- /name -->` in the Markdown file; a new
    file starts with `preamble`."""
    begin, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1 :]
    else:
        if not text:
            text = preamble
        text = text.rstrip("\n") + "\n\n" + block
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def publish(text, output, name, preamble=_PREAMBLE):
    """Prints a benchmark's section, and writes it into `output` (a Markdown file) unless `output` is empty."""
    print()
    print(text)
    if output:
        write_section(output, text, name, preamble)
        print(f"wrote {output}", file=sys.stderr)
