"""Language models: training tokens per second of each LM, and generation in one in-graph loop against a Python loop.

    python -m benchmarks.language_models          # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.language_models --rounds=3 --output=

Training: each model of the language_model task's grammar presets (the same sizes as docs/results/language_models.md)
takes Adam steps on batches of 64 sentences of 12 tokens; the figure is tokens per second and the ratio to the LSTM LM
in the same rounds (median of per-round ratios).

Generation: the LSTM LM continues 32 one-token prompts by `--new_tokens` tokens, greedily, with no end of sentence.
In-graph: `zoo.decoding.generate` inside one `tf.function` (and compiled by XLA); baseline: a Python loop that calls
the model's `step` (itself a `tf.function`) once per token and takes the argmax. Target: the in-graph loop >= 5x the
Python loop's tokens per second.
"""

import datetime

import numpy as np
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402

import zoo  # noqa: E402
from benchmarks import report  # noqa: E402
from training import tasks  # noqa: E402
from zoo.decoding import generate  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_integer("rounds", 5, "Interleaved rounds.", lower_bound=1)
flags.DEFINE_integer("steps", 20, "Training steps per timed run.", lower_bound=1)
flags.DEFINE_integer("new_tokens", 64, "Tokens generated per row.", lower_bound=1)
flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose section is rewritten; empty: none.")

VOCAB, BATCH, LENGTH, GENERATION_BATCH = 32, 64, 12, 32
TARGET = 5.0
MODELS = ("ffnn", "gcnn", "elman", "lstm", "gru")


def model_of(preset):
    config = tasks.get("language_model").presets[preset]
    keras.utils.set_random_seed(0)
    model = zoo.models.get(config["model"], vocab_size=VOCAB, **config["model_options"])
    model(np.zeros((1, LENGTH), "int32"))
    return model


def training_run(model):
    optimizer = keras.optimizers.Adam(1e-3)
    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.integers(4, VOCAB, size=(BATCH, LENGTH)), tf.int32)
    targets = tf.constant(rng.integers(4, VOCAB, size=(BATCH, LENGTH)), tf.int32)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(targets, logits))
        gradients = tape.gradient(loss, model.trainable_variables)
        gradients = [tf.convert_to_tensor(g) for g in gradients]
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    def run():
        for _ in range(FLAGS.steps):
            loss = train_step()
        float(loss)

    run()  # trace and warm up
    return run


def generation_runs(model):
    prompt = tf.fill([GENERATION_BATCH, 1], 2)
    lengths = tf.fill([GENERATION_BATCH], 1)
    never = VOCAB  # an end-of-sentence id the model cannot produce: every row generates new_tokens tokens

    def in_graph(prompt, lengths):
        return generate(model.step, model.initial_state(tf.shape(prompt)[0]), prompt, lengths, FLAGS.new_tokens,
                        never)["tokens"]

    graph = tf.function(in_graph)
    xla = tf.function(in_graph, jit_compile=True)
    step = tf.function(model.step)

    def python_loop():
        state = model.initial_state(GENERATION_BATCH)
        tokens = prompt[:, 0]
        out = []
        for _ in range(FLAGS.new_tokens):
            logits, state = step(tokens, state)
            tokens = tf.argmax(logits, axis=-1, output_type=tf.int32)
            out.append(tokens)
        return tf.stack(out, axis=1)

    expected = python_loop().numpy()
    for function in (graph, xla):
        np.testing.assert_array_equal(function(prompt, lengths).numpy(), expected)  # same tokens, and warmed up
    return {
        "Python loop (tf.function step per token)": lambda: python_loop().numpy(),
        "in-graph loop (tf.function)": lambda: graph(prompt, lengths).numpy(),
        "in-graph loop (XLA)": lambda: xla(prompt, lengths).numpy(),
    }


def main(argv):
    del argv
    absl_warnings_only()
    training = {preset: training_run(model_of(preset)) for preset in MODELS}
    train_times = report.interleaved(training, FLAGS.rounds)
    tokens = FLAGS.steps * BATCH * LENGTH
    lstm = model_of("lstm")
    runs = generation_runs(lstm)
    generate_times = report.interleaved(runs, FLAGS.rounds)
    generated = GENERATION_BATCH * FLAGS.new_tokens
    baseline = "Python loop (tf.function step per token)"
    lines = [
        "## Language models: training throughput and generation (`benchmarks/language_models.py`)",
        "",
        f"Command: `python -m benchmarks.language_models --rounds={FLAGS.rounds} --steps={FLAGS.steps} "
        f"--new_tokens={FLAGS.new_tokens}`, {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}.",
        "",
        f"Training: Adam steps on batches of {BATCH} sentences x {LENGTH} tokens, vocabulary {VOCAB}, the grammar "
        "presets' sizes; median over interleaved rounds.",
        "",
        "| model | parameters | training tokens/s | ratio to the LSTM LM |",
        "|---|---|---|---|",
    ]
    for preset in MODELS:
        seconds = sorted(train_times[preset])[len(train_times[preset]) // 2]
        ratio = report.median_ratio(train_times["lstm"], train_times[preset])
        parameters = sum(int(np.prod(v.shape)) for v in model_of(preset).trainable_variables)
        lines.append(f"| {preset} | {parameters:,} | {tokens / seconds:,.0f} | {ratio:.2f} |")
    lines += [
        "",
        f"Generation: the LSTM LM, {GENERATION_BATCH} rows x {FLAGS.new_tokens} new tokens, greedy (all three give "
        "the same tokens).",
        "",
        "| loop | tokens/s | speed-up over the Python loop |",
        "|---|---|---|",
    ]
    for name, times in generate_times.items():
        seconds = sorted(times)[len(times) // 2]
        ratio = report.median_ratio(generate_times[baseline], times)
        lines.append(f"| {name} | {generated / seconds:,.0f} | {ratio:.2f}x |")
    best = max(report.median_ratio(generate_times[baseline], times)
               for name, times in generate_times.items() if name != baseline)
    verdict = "meets" if best >= TARGET else "**misses**"
    lines += ["", f"Target: the in-graph loop >= {TARGET:.0f}x the Python loop: {best:.2f}x, {verdict}.", ""]
    report.publish("\n".join(lines), FLAGS.output, "benchmarks.language_models")


if __name__ == "__main__":
    run(main)
