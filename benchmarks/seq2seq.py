"""Encoder–decoder training: target tokens per second of the zoo's Seq2Seq against the same model in stock Keras.

    python -m benchmarks.seq2seq          # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.seq2seq --rounds=3 --sizes=dates --output=

Each pair trains the zoo's `seq2seq_*` preset and `benchmarks.keras_seq2seq.KerasSeq2Seq` (an `Embedding`, a
bidirectional `keras.layers.LSTM` encoder, a dense bridge, a `keras.layers.LSTM` decoder, `keras.layers.Attention`
or `keras.layers.AdditiveAttention` after it, a `Dense` read-out) of the same size on the same batches of the
`translation` task's `dates` corpus, with the same train step: a `tf.function` (`reduce_retracing`, as the trainer's)
that takes the task's loss (masked token cross-entropy), clips the gradient's global norm and applies Adam, both at the
`dates` preset's values. The figure is target tokens (real ones, not padding) per second; the ratio is zoo time / Keras
time, the median of per-round ratios over interleaved rounds. Target: <= 1.1. Each run's process CPU time is
recorded too: on a machine whose cores other jobs share, its ratio is the steadier one.

Like with like: no attention against no attention, attention against attention. Stock Keras layers cannot feed the
attentional vector back into the decoder (input feeding), so the pairs with a target run the zoo preset with
`input_feeding=False`, which is the same function as the Keras model: before timing, the benchmark copies the zoo
model's weights into the Keras model and asserts equal logits. The presets as they are (with input feeding: the
attention runs inside the decoder's recurrence, and the decoder reads [y_t; a_{t-1}]) are timed against the same
Keras model and reported without a target.

Sizes: `dates` is the presets' own size (units 64, embeddings 32, attention 64); `files` that of the `files` preset
(units 256, embeddings 256, attention 256), on the same dates data.
"""

import datetime
import statistics
import time

import numpy as np
from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402

import zoo  # noqa: E402
from benchmarks import report  # noqa: E402
from benchmarks import steps  # noqa: E402
from benchmarks.keras_seq2seq import KerasSeq2Seq  # noqa: E402
from training import tasks  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags, defined when it runs as a program (not on import), so that a test process imports
    its functions beside other benchmarks whose flags share names."""
    flags.DEFINE_integer("rounds", 7, "Interleaved rounds; figures are medians over rounds.", lower_bound=1)
    flags.DEFINE_integer("steps", 10, "Training steps per timed run (each on its own batch).", lower_bound=1)
    flags.DEFINE_list("sizes", ["dates", "files"], "Model sizes to measure: dates (the presets' own), files.")
    flags.DEFINE_integer("train_size", 2000, "Pairs of the dates corpus's training split to draw batches from.",
                         lower_bound=1)
    flags.DEFINE_bool("shared_machine", False, "Say in the section that other jobs shared the machine during the run.")
    flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose section is rewritten; empty: none.")


TARGET = 1.1
# The model's size options per size name (a `tiny` size keeps the benchmark's own test fast).
SIZES = {
    "dates": {},
    "files": {"units": 256, "embedding_dim": 256, "attention_layer_size": 256, "attention_units": 256},
    "tiny": {"units": 8, "embedding_dim": 6, "attention_layer_size": 5, "attention_units": 4},
}
# (name, zoo preset, input feeding, target or None).
PAIRS = [
    ("no attention", "seq2seq_plain", False, TARGET),
    ("Luong (general), no input feeding", "seq2seq_luong", False, TARGET),
    ("Bahdanau, no input feeding", "seq2seq_bahdanau", False, TARGET),
    ("Luong (general), preset with input feeding", "seq2seq_luong", True, None),
    ("Bahdanau, preset with input feeding", "seq2seq_bahdanau", True, None),
]


def task_config():
    task = tasks.get("translation")
    return task, {**task.presets["dates"], "seed": 0, "train_size": FLAGS.train_size, "validation_size": 64,
                  "test_size": 64}


def batches(config, count):
    """`count` training batches of the dates corpus, ((source, target_in), target_out), each padded to its own
    longest row as the trainer's pipeline pads them; and the real target tokens they hold."""
    task = tasks.get("translation")
    (sources, target_in), target_out = task.split_data(config)["train"]
    batch = config["batch_size"]
    if len(sources) < count * batch:
        raise app.UsageError(f"--train_size={FLAGS.train_size} holds fewer than {count} batches of {batch}; raise it "
                             "or lower --steps")
    order = np.random.default_rng(0).permutation(len(sources))

    def padded(rows):
        out = np.zeros((len(rows), max(len(row) for row in rows)), "int32")
        for index, row in enumerate(rows):
            out[index, : len(row)] = row
        return tf.constant(out)

    result, tokens = [], 0
    for start in range(0, count * batch, batch):
        rows = order[start : start + batch]
        out = padded([target_out[i] for i in rows])
        result.append(((padded([sources[i] for i in rows]), padded([target_in[i] for i in rows])), out))
        tokens += int(np.count_nonzero(out.numpy()))
    return result, tokens


def models(task, config, size, preset, input_feeding):
    """(the zoo model, the Keras model), built, the Keras one with the zoo one's weights when they compute the same
    function."""
    corpus = task.corpus(config)
    vocab = corpus.source.vocabulary.size, corpus.target.vocabulary.size
    options = dict(SIZES[size])
    attention = zoo.models.preset(preset)["attention"]
    attention_units = options.pop("attention_units", None)
    if attention == "none":
        options.pop("attention_layer_size", None)
    else:
        options["input_feeding"] = input_feeding
        if attention == "bahdanau" and attention_units is not None:
            options["attention_options"] = {"units": attention_units}
    keras.utils.set_random_seed(0)
    ours = zoo.models.get(preset, source_vocab_size=vocab[0], target_vocab_size=vocab[1], **options)
    theirs = KerasSeq2Seq(
        *vocab, units=ours.units, embedding_dim=ours.embedding_dim, attention=attention,
        attention_layer_size=None if attention == "none" else ours.decoder_cell.attention_layer_size,
        attention_units=ours.decoder_cell.attention_mechanism.units if attention == "bahdanau" else None,
    )
    return ours, theirs


def check_same_function(ours, theirs, inputs):
    """The Keras model, given the zoo model's weights, must give the zoo model's logits: both do the same work."""
    theirs.copy_weights_from(ours)
    np.testing.assert_allclose(theirs(inputs).numpy(), ours(inputs).numpy(), atol=1e-5,
                               err_msg="the Keras model with the zoo model's weights gives other logits")


def measure(size):
    """({(pair name, "zoo" or "keras"): [seconds per round]}, the same in process CPU seconds, {(pair name, side):
    the decoder step's ops (see `steps.loop_ops`)}, the real target tokens of one run), at one size."""
    task, config = task_config()
    data, tokens = batches(config, FLAGS.steps)
    runs, cpu, loop_ops = {}, {}, {}
    for name, preset, input_feeding, _ in PAIRS:
        ours, theirs = models(task, config, size, preset, input_feeding)
        ours(data[0][0])
        theirs(data[0][0])
        if not input_feeding:
            check_same_function(ours, theirs, data[0][0])
        for side, model in (("zoo", ours), ("keras", theirs)):
            step = steps.train_step(task, config, model, reduce_retracing=True, dense_gradients=True)

            def timed(step=step):
                for inputs, targets in data:
                    loss = step(inputs, targets)
                float(loss)

            timed()  # trace (each batch length, then one trace for any length) and warm up
            timed()
            loop_ops[name, side] = steps.loop_ops(step, *data[0], loop="decoder")
            cpu[name, side] = []

            def timed_with_cpu(timed=timed, seconds=cpu[name, side]):
                start = time.process_time()
                timed()
                seconds.append(time.process_time() - start)

            runs[name, side] = timed_with_cpu
    return report.interleaved(runs, FLAGS.rounds), cpu, loop_ops, tokens


def parameters(task, config, size, preset, input_feeding):
    ours, theirs = models(task, config, size, preset, input_feeding)
    data, _ = batches(config, 1)
    ours(data[0][0])
    theirs(data[0][0])
    return ours.count_params(), theirs.count_params()


def section(results):
    """The Markdown section of docs/performance.md, from {size: (times, CPU times, loop ops, tokens per run)}."""
    task, config = task_config()
    lines = [
        "## Encoder–decoder training: the zoo's Seq2Seq against stock Keras layers (`benchmarks/seq2seq.py`)",
        "",
        f"Command: `python -m benchmarks.seq2seq --rounds={FLAGS.rounds} --steps={FLAGS.steps} "
        f"--sizes={','.join(FLAGS.sizes)} --train_size={FLAGS.train_size}"
        f"{' --shared_machine' if FLAGS.shared_machine else ''}`{_make_bench()}, {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}." + (
            " Other jobs shared the machine's cores during the run, so the absolute figures wander from run to run; "
            "the ratios, taken within each round, hold better." if FLAGS.shared_machine else ""),
        "",
        f"Each run takes {FLAGS.steps} training steps, each on its own batch of {config['batch_size']} pairs of the "
        "`translation` task's `dates` corpus (character sources of 8 to about 30 tokens, 11 target tokens with "
        "<eos>; each batch padded to its longest row), with the same `tf.function` train step for both models: the "
        f"task's loss, the gradient's global norm clipped at {config['clip_global_norm']}, Adam at "
        f"{config['learning_rate']}. Zoo: `zoo.models.Seq2Seq` from its preset (LSTM, one bidirectional encoder "
        "layer, the dense bridge). Keras: `benchmarks/keras_seq2seq.py`, an `Embedding`, a bidirectional "
        "`keras.layers.LSTM` encoder (padding masked), a `Dense` bridge, a `keras.layers.LSTM` decoder, then "
        "`keras.layers.Attention` on keys from a bias-free `Dense` (Luong's general score) or "
        "`keras.layers.AdditiveAttention(use_scale=True)` on a projected query and keys (Bahdanau's), the "
        "attentional vector tanh([c_t; h_t] W_c) and a `Dense` read-out. Target tokens per second count the real "
        f"target tokens; the ratio is zoo time / Keras time, the median of per-round ratios over {FLAGS.rounds} "
        "interleaved rounds, of wall time (the target's) and of the process's CPU time (both cores; steadier when "
        "other jobs share the cores).",
        "",
        "Stock Keras layers cannot feed the attentional vector back into the decoder's next step (input feeding): "
        "the rows with a target run the zoo preset with `input_feeding=False`, the same function as the Keras "
        "model (before timing, the benchmark copies the zoo weights into the Keras model and asserts equal "
        "logits). The presets as they are, with input feeding, are timed against the same Keras model: they do "
        "more (the decoder reads [y_t; a_{t-1}], so the attention runs inside the recurrence, step by step, "
        "instead of once over all steps after it), and their rows carry no target.",
        "",
        "| size | attention | zoo parameters | Keras parameters | zoo tokens/s | Keras tokens/s | ratio (wall time) "
        "| ratio (CPU time) | target | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for size, (times, cpu, _, tokens) in results.items():
        for name, preset, input_feeding, target in PAIRS:
            ours, theirs = times[name, "zoo"], times[name, "keras"]
            ratio = report.median_ratio(ours, theirs)
            counts = parameters(task, config, size, preset, input_feeding)
            verdict = "—" if target is None else ("meets" if ratio <= target else "**misses**")
            lines.append(
                f"| {size} | {name} | {counts[0]:,} | {counts[1]:,} | {tokens / statistics.median(ours):,.0f} | "
                f"{tokens / statistics.median(theirs):,.0f} | {ratio:.3f} | "
                f"{report.median_ratio(cpu[name, 'zoo'], cpu[name, 'keras']):.3f} | "
                f"{'—' if target is None else f'<= {target}'} | {verdict} |"
            )
    size, (_, _, loop_ops, _) = next(iter(results.items()))
    ops = {name: loop_ops[name, "zoo"] for name, *_ in PAIRS}
    keras_ops = loop_ops[PAIRS[0][0], "keras"]
    presets = [name for name, _, input_feeding, _ in PAIRS if input_feeding]
    lines += [
        "",
        "Where the time goes: ops that one decoder step runs in the train step's graph (forward loop body, with "
        "what it pushes for the backward pass, + the gradient's loop body; `Const`, `Identity` and `NoOp` nodes "
        f"left out; size {size}): Keras's decoder, attention or not, {keras_ops[0]} + {keras_ops[1]} (the "
        "LSTM alone: its attention runs once over all steps, after the loop); the zoo's "
        + "; ".join(f"{name}: {ops[name][0]} + {ops[name][1]}" for name, *_ in PAIRS) + ". "
        "Without attention the zoo's wrapper cell adds little to the LSTM step (its extra states, the memory and "
        "keys, are carried through unchanged). Without input feeding the zoo's teacher forcing runs as the Keras "
        "model does: the wrapped cell alone inside the loop, then the attention once over all steps on [batch, T, "
        "S] tensors (`Seq2Seq`'s parallel teacher forcing, the same function as stepping its decoder cell). With "
        "input feeding step t's attentional vector is step t + 1's input, so the presets read the memory inside "
        "the recurrence, once per target step, as the step-by-step decoding (`initial_state`/`step`) does: scores, "
        "masked softmax, context and attentional vector, their gradients, the intermediates the gradient needs "
        "pushed each step, and the gradients of the memory and keys summed across steps. On these small matrices "
        f"(batch {config['batch_size']}, a few dozen source positions, 11 target steps) every op's fixed cost "
        f"counts, so the preset rows ({', '.join(presets)}) pay for the extra ops per step; the larger size, with "
        "more arithmetic per op, shows how that share shrinks.",
        "",
    ]
    return "\n".join(lines)


def _make_bench():
    defaults = all(FLAGS[name].value == FLAGS[name].default
                   for name in ("rounds", "steps", "sizes", "train_size"))
    if not defaults:
        return ""
    return " (`make bench` runs these defaults, without --shared_machine)" if FLAGS.shared_machine else (
        " (`make bench` runs these defaults)")


def main(argv):
    del argv
    absl_warnings_only()
    unknown = [size for size in FLAGS.sizes if size not in SIZES]
    if unknown or not FLAGS.sizes:
        raise app.UsageError(f"--sizes must list sizes among {sorted(SIZES)}, got {','.join(FLAGS.sizes)}")
    results = {}
    for size in FLAGS.sizes:
        print(f"size {size}: timing {2 * len(PAIRS)} models over {FLAGS.rounds} rounds...", flush=True)
        times, cpu, loop_ops, tokens = measure(size)
        results[size] = times, cpu, loop_ops, tokens
        for name, *_ in PAIRS:
            ratio = report.median_ratio(times[name, "zoo"], times[name, "keras"])
            print(f"  {name:45s} zoo {statistics.median(times[name, 'zoo']) * 1e3:8.1f} ms, keras "
                  f"{statistics.median(times[name, 'keras']) * 1e3:8.1f} ms, ratio {ratio:.3f}, CPU time ratio "
                  f"{report.median_ratio(cpu[name, 'zoo'], cpu[name, 'keras']):.3f}", flush=True)
    report.publish(section(results), FLAGS.output, "benchmarks.seq2seq")


if __name__ == "__main__":
    define_flags()
    run(main)
