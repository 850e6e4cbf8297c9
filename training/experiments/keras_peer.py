"""The zoo's encoder–decoder against the one a Keras user writes in sixty lines, at equal epochs on the same data.

    python -m training.experiments.keras_peer [--seeds=3] [--epochs=N (default: each benchmark's)]
        [--benchmarks=dates,synthetic] [--work_dir=runs/keras_peer] [--output=FILE (default: stdout)]

(About 30 minutes on 2 CPU cores for three seeds.)

The peer (`build_peer`): a bidirectional `keras.layers.LSTM` encoder (sequences and final states), an LSTM decoder
whose initial state is the encoder's final states (forward and backward concatenated, so the decoder has twice the
encoder's units), `keras.layers.AdditiveAttention` of the decoder's outputs over the encoder's, the context
concatenated to the decoder's output, and a `Dense` read-out over the target vocabulary. It is trained with
`model.fit` on teacher forcing (sparse categorical cross-entropy, target padding masked), keeps the weights of its
best epoch by validation loss (`keras.callbacks.ModelCheckpoint`), and decodes greedily with a Python loop that calls
an encoder model once and a one-step decoder model per target token (the two share the trained layers).

The zoo: the translation task's preset, trained through `training.trainer.Trainer` (best checkpoint by validation
perplexity), decoded greedily and with beam search (`TranslationTask.decode_metrics`).

Both see the same tokens, batches and budget: the peer reads the ids of the task's corpus
(`TranslationTask.corpus`) through the task's own training stream (the same shuffled, length-bucketed batches for a
given seed), with the same batch size, number of epochs and optimizer (Adam with the preset's learning rate and
global-norm clipping). Sizes: the peer's encoder has `units` per direction, like the zoo's bidirectional encoder
of `units`; the section states both parameter counts.

Benchmarks (`BENCHMARKS`):
- "dates": the `dates` preset (Bahdanau attention, 64 units, character level), exact match on 1,000 unseen dates;
- "synthetic": the `files` preset (Luong attention) sized like the peer (128 units, embedding 128, 5 epochs), on
  the synthetic language pair of `training.data.synthetic_parallel` (word level, reordering and agreement), corpus
  BLEU (sacrebleu) on its 1,000 test sentences; in the preset's proportions (attentional vector of 2 * units, as
  wide as the bidirectional memory: the peer's parameter count) and, for the record, with an attentional vector of
  `units`, the proportion the preset had before this comparison, which learns far more slowly.

`compare(work_dir, seeds, epochs)` returns the results as a Markdown section (the attention experiment includes it);
runs live under `work_dir` and are reused when it is run again.
"""

import collections
import datetime
import io
import json
import os
import platform
import sys

import numpy as np
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402
from keras import layers  # noqa: E402
from keras import ops  # noqa: E402

from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.data import synthetic_parallel  # noqa: E402
from training.text import scores  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

# A benchmark: the translation preset, its overrides (both sides), the peer's size (units per encoder direction,
# embedding size), and the zoo's rows {row name: model_options} (each keeps the preset's architecture).
Benchmark = collections.namedtuple("Benchmark", "preset overrides units embedding_dim zoo")
BENCHMARKS = {
    # The dates preset as it is: 64 units per encoder direction and in the decoder, embedding 32.
    "dates": Benchmark("dates", {}, 64, 32, {"zoo": {}}),
    # The files preset (Luong attention) at the peer's size, in the preset's proportions (the attentional vector as
    # wide as the bidirectional memory, attention_layer_size = 2 * units: the peer's parameter count); and, for the
    # record, with the attentional vector as wide as the decoder (attention_layer_size = units, the preset's
    # proportion before this comparison).
    "synthetic": Benchmark(
        "files", {"decode_length": synthetic_parallel.MAX_LENGTH + 1, "epochs": 5}, 128, 128,
        {"zoo": {"units": 128, "embedding_dim": 128, "attention_layer_size": 256},
         "zoo_narrow": {"units": 128, "embedding_dim": 128, "attention_layer_size": 128}}),
}
# The test budget: {benchmark: (overrides added to the benchmark's, the peer's units and embedding size, the zoo's
# rows)}.
TINY = {
    "dates": ({"train_size": 256, "validation_size": 64, "test_size": 64}, 64, 32, {"zoo": {}}),
    "synthetic": ({}, 8, 16, {"zoo": {"units": 8, "embedding_dim": 16, "attention_layer_size": 16},
                              "zoo_narrow": {"units": 8, "embedding_dim": 16, "attention_layer_size": 8}}),
}

Peer = collections.namedtuple("Peer", "model encoder step")
Peer.__doc__ = """The peer's three Keras models, sharing layers: `model((source, target_in)) -> logits` for
training, `encoder(source) -> (memory, h, c)` and `step((token [batch, 1], memory, h, c, source)) -> (logits [batch,
1, vocab], h, c)` for decoding."""


def build_peer(source_vocab_size, target_vocab_size, units, embedding_dim, pad_id=0):
    """The encoder–decoder a Keras user writes: a `Peer`. Ids equal to `pad_id` (0) are padding."""
    source = keras.Input((None,), dtype="int32", name="source")
    target_in = keras.Input((None,), dtype="int32", name="target_in")
    source_embedding = layers.Embedding(source_vocab_size, embedding_dim, name="source_embedding")
    target_embedding = layers.Embedding(target_vocab_size, embedding_dim, name="target_embedding")
    encoder_lstm = layers.Bidirectional(layers.LSTM(units, return_sequences=True, return_state=True), name="encoder")
    decoder_lstm = layers.LSTM(2 * units, return_sequences=True, return_state=True, name="decoder")
    attention = layers.AdditiveAttention(name="attention")
    readout = layers.Dense(target_vocab_size, name="readout")

    source_mask = ops.not_equal(source, pad_id)
    memory, forward_h, forward_c, backward_h, backward_c = encoder_lstm(source_embedding(source), mask=source_mask)
    h = layers.Concatenate()([forward_h, backward_h])
    c = layers.Concatenate()([forward_c, backward_c])

    def decode(tokens, h, c, memory, source_mask):
        target_mask = ops.not_equal(tokens, pad_id)
        outputs, h, c = decoder_lstm(target_embedding(tokens), initial_state=[h, c], mask=target_mask)
        context = attention([outputs, memory], mask=[target_mask, source_mask])
        return readout(layers.Concatenate()([context, outputs])), h, c

    logits, _, _ = decode(target_in, h, c, memory, source_mask)
    model = keras.Model((source, target_in), logits, name="keras_peer")
    encoder = keras.Model(source, (memory, h, c), name="keras_peer_encoder")

    token = keras.Input((1,), dtype="int32", name="token")
    memory_in = keras.Input((None, 2 * units), name="memory")
    h_in, c_in = keras.Input((2 * units,), name="h"), keras.Input((2 * units,), name="c")
    source_in = keras.Input((None,), dtype="int32", name="source")
    step = keras.Model((token, memory_in, h_in, c_in, source_in),
                       decode(token, h_in, c_in, memory_in, ops.not_equal(source_in, pad_id)),
                       name="keras_peer_step")
    return Peer(model, encoder, step)


def fit_peer(peer, task, config, weights_path, verbose=0):
    """Trains `peer.model` with `fit` on the task's training stream for `config["epochs"]` epochs and keeps the
    weights of the epoch with the lowest validation loss. Returns the fit history (dict)."""
    batch = config["batch_size"]

    def token_weights(inputs, targets, weights):  # every real target token counts, padding does not
        return inputs, targets, weights[:, None] * tf.cast(tf.not_equal(targets, 0), tf.float32)

    train = task.dataset(config, "train", batch).map(token_weights)
    validation = task.dataset(config, "validation", batch, pad_to_multiple=batch).map(token_weights)
    peer.model.compile(
        optimizer=keras.optimizers.Adam(config["learning_rate"], global_clipnorm=config["clip_global_norm"]),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        jit_compile=False,  # bucketed batches have many lengths; the zoo's trainer does not compile either
    )
    checkpoint = keras.callbacks.ModelCheckpoint(weights_path, save_best_only=True, save_weights_only=True)
    # shuffle=False: the task's stream is shuffled already, by the seed.
    history = peer.model.fit(train, epochs=config["epochs"], steps_per_epoch=task.steps_per_epoch(config, batch),
                             validation_data=validation, callbacks=[checkpoint], shuffle=False, verbose=verbose)
    peer.model.load_weights(weights_path)
    return history.history


def greedy_ids(peer, source, decode_length, bos_id, eos_id, banned_ids=(0,)):
    """Greedy decoding with the peer, one `step` call per token: target ids [batch, decode_length] (<eos> kept,
    0 after it) of the source ids [batch, S] (right-padded with 0). `banned_ids` are never chosen."""
    source = ops.convert_to_tensor(np.asarray(source, "int32"))
    # As plain tensors: the encoder's outputs carry its mask, which the step model does not take.
    memory, h, c = (ops.convert_to_tensor(np.asarray(x)) for x in peer.encoder(source, training=False))
    batch = source.shape[0]
    token = np.full((batch, 1), bos_id, "int32")
    tokens = np.zeros((batch, decode_length), "int32")
    finished = np.zeros(batch, bool)
    for t in range(decode_length):
        logits, h, c = peer.step((ops.convert_to_tensor(token), memory, h, c, source), training=False)
        logits = np.array(logits)[:, 0]
        logits[:, list(banned_ids)] = -np.inf
        chosen = np.argmax(logits, axis=-1).astype("int32")
        tokens[:, t] = np.where(finished, 0, chosen)
        finished |= chosen == eos_id
        if finished.all():
            break
        token = chosen[:, None]
    return tokens


def peer_translate(peer, task, config, sources, batch_size=250):
    """The peer's greedy translations (str) of `sources` (str), encoded and detokenized as the zoo's are."""
    corpus = task.corpus(config)
    vocabulary = corpus.target.vocabulary
    encoded = [ids[: config["max_length"]] for ids in corpus.source.encode_lines(sources)]
    translations = []
    for start in range(0, len(encoded), batch_size):
        chunk = encoded[start : start + batch_size]
        source = np.zeros((len(chunk), max(1, max(len(ids) for ids in chunk))), "int32")
        for row, ids in enumerate(chunk):
            source[row, : len(ids)] = ids
        tokens = greedy_ids(peer, source, int(config["decode_length"]), vocabulary.bos_id, vocabulary.eos_id,
                            banned_ids=(vocabulary.pad_id, vocabulary.bos_id))
        translations.extend(corpus.detokenize(tokens, np.full(len(chunk), tokens.shape[1])))
    return translations


def benchmark(name, tiny=False):
    """The `Benchmark` called `name`, or its test budget (`TINY`)."""
    found = BENCHMARKS[name]
    if not tiny:
        return found
    overrides, units, embedding_dim, zoo_rows = TINY[name]
    return Benchmark(found.preset, {**found.overrides, **overrides}, units, embedding_dim, zoo_rows)


def benchmark_config(name, seed, epochs=None, data_dir=None, tiny=False, model_options=None):
    """(task, the resolved run config) of one benchmark and seed; `model_options` for a zoo row."""
    overrides = dict(benchmark(name, tiny).overrides)
    if name == "synthetic":
        overrides["data_dir"] = os.path.abspath(data_dir)
    if epochs:
        overrides["epochs"] = epochs
    if model_options:
        overrides["model_options"] = model_options
    task = tasks.get("translation")
    preset = BENCHMARKS[name].preset
    config = run_config.resolve(DEFAULTS, task.presets, preset, overrides)
    return task, {"task": task.name, "preset": preset, **config, "seed": seed}


def run_zoo(task, config, model_dir):
    """Trains (or resumes) the zoo's run; {"parameters", "exact_match_greedy", "bleu_greedy", "..._beam"}."""
    results_path = os.path.join(model_dir, "comparison.json")
    if os.path.exists(results_path):
        with open(results_path) as f:
            return json.load(f)
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    trainer.fit()
    trainer.restore("best")
    result = {key: float(value) for key, value in task.decode_metrics(config, trainer.model, "test").items()
              if not isinstance(value, str)}
    result["parameters"] = int(sum(np.prod(v.shape) for v in trainer.model.trainable_variables))
    with open(results_path, "w") as f:
        json.dump(result, f)
    return result


def run_peer(task, config, model_dir, units, embedding_dim):
    """Trains the peer of `units` per encoder direction with `fit` in `model_dir` (reused when done);
    {"parameters", "exact_match_greedy", "bleu_greedy", "chrf_greedy"}."""
    results_path = os.path.join(model_dir, "comparison.json")
    if os.path.exists(results_path):
        with open(results_path) as f:
            return json.load(f)
    os.makedirs(model_dir, exist_ok=True)
    corpus = task.corpus(config)
    keras.utils.set_random_seed(config["seed"])
    peer = build_peer(corpus.source.vocabulary.size, corpus.target.vocabulary.size, units, embedding_dim)
    fit_peer(peer, task, config, os.path.join(model_dir, "best.weights.h5"))
    sources, references = corpus.lines["test"]
    found = scores.translation_scores(peer_translate(peer, task, config, sources), references,
                                      tokenize=config["bleu_tokenize"])
    result = {"exact_match_greedy": found["exact_match"], "bleu_greedy": found["bleu"], "chrf_greedy": found["chrf"],
              "parameters": int(peer.model.count_params())}
    with open(results_path, "w") as f:
        json.dump(result, f)
    return result


def compare(work_dir, seeds=(0, 1, 2), epochs=None, benchmarks=tuple(BENCHMARKS), tiny=False, log=None):
    """Trains the peer and the zoo on each benchmark for each seed (runs under `work_dir`, reused when present) and
    returns the comparison as a Markdown section (str). `epochs`: for every run (default: each preset's);
    `tiny`: the test budget (`TINY`)."""
    data_dir = os.path.join(work_dir, "synthetic_corpus")
    if "synthetic" in benchmarks:
        sizes = {"train": 1000, "validation": 64, "test": 64} if tiny else None
        if not os.path.exists(os.path.join(data_dir, "test.tgt")):
            synthetic_parallel.write_corpus(data_dir, sizes=sizes, seed=0)
    results, configs = {}, {}
    for name in benchmarks:
        chosen = benchmark(name, tiny)
        for seed in seeds:
            where = os.path.join(work_dir, name, f"seed{seed}")
            task, config = benchmark_config(name, seed, epochs, data_dir, tiny)
            configs[(name, "peer")] = config
            runs = [("peer", run_peer(task, config, os.path.join(where, "peer"), chosen.units,
                                      chosen.embedding_dim))]
            for row, options in chosen.zoo.items():
                task, config = benchmark_config(name, seed, epochs, data_dir, tiny, model_options=options)
                configs[(name, row)] = config
                runs.append((row, run_zoo(task, config, os.path.join(where, row))))
            for row, result in runs:
                results.setdefault((name, row), []).append(result)
                if log:
                    print(f"{name} {row} seed {seed}: {json.dumps(result)}", file=log, flush=True)
    return section(results, configs, seeds, {name: benchmark(name, tiny) for name in benchmarks})


def _mean(values, digits=1):
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{np.mean(values):.{digits}f} ± {np.std(values, ddof=1):.{digits}f}"


def section(results, configs, seeds, benchmarks):
    """The Markdown section of `compare`'s results {(benchmark, row): [result per seed]}, with their configs
    {(benchmark, row): config} and `Benchmark`s {benchmark: Benchmark}; row "peer" is the Keras peer's."""
    lines = [
        "## Against the Keras peer at equal epochs",
        "",
        "The peer is what a Keras user writes (`training/experiments/keras_peer.py`, `build_peer`): a bidirectional "
        "`keras.layers.LSTM` encoder, an LSTM decoder started from the encoder's final states (both directions "
        "concatenated, so it has twice the encoder's units), `keras.layers.AdditiveAttention` over the encoder's "
        "outputs, context and decoder output concatenated into a `Dense` read-out; trained with `model.fit` "
        "(sparse categorical cross-entropy, padding masked), the best epoch by validation loss kept, decoded "
        "greedily by a Python loop over a one-step decoder model. The zoo's rows are the translation task's "
        "presets (their `model_options` at the peer's size where the row names them), trained by the trainer (best "
        "checkpoint by validation perplexity). Both read the same token ids in the "
        "same batches (the task's stream for the seed), with the same batch size, epochs and optimizer (Adam, the "
        "preset's learning rate, global-norm clipping at the preset's value). Scores on the test split, 0 to 100 "
        f"(sacrebleu), mean ± standard deviation over seeds {', '.join(str(s) for s in seeds)}; beam search is the "
        "zoo's only (the peer has none).",
        "",
        "| data | model | parameters | epochs | batch | learning rate | exact match greedy | exact match beam "
        "| BLEU greedy | BLEU beam |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, row), config in configs.items():
        tests = len(tasks.get("translation").corpus(config).lines["test"][0])
        data = (f"dates ({tests:,} unseen test dates)" if name == "dates" else
                f"synthetic language pair (`training.data.synthetic_parallel`, {tests:,} test sentences)")
        runs = results[(name, row)]
        if row == "peer":
            units, embedding_dim = benchmarks[name].units, benchmarks[name].embedding_dim
            model = (f"Keras peer (BiLSTM {units}/direction, LSTM decoder {2 * units}, AdditiveAttention, "
                     f"embedding {embedding_dim})")
        else:
            options = config["model_options"]
            model = f"zoo `{config['model']}` (preset `{config['preset']}`"
            model += f"; {', '.join(f'{k} {v}' for k, v in options.items())})" if options else ")"
        cells = [_mean([r[f"{metric}_{method}"] for r in runs]) if row != "peer" or method == "greedy" else "—"
                 for metric in ("exact_match", "bleu") for method in ("greedy", "beam")]
        lines.append(
            f"| {data} | {model} | {runs[0]['parameters']:,} | {config['epochs']} | {config['batch_size']} | "
            f"{config['learning_rate']:g} | " + " | ".join(cells) + " |"
        )
    if any(row == "zoo_narrow" for _, row in configs):
        lines += [
            "",
            "The last row is the `files` preset with the attentional vector a_t = tanh([c_t; h_t] W_c) as wide as the "
            "decoder (`attention_layer_size` = `units`), the proportion the preset had before this comparison: at "
            "this size and learning rate it learns far more slowly, so the preset now makes a_t as wide as the "
            "bidirectional memory (2 * `units`).",
        ]
    return "\n".join(lines) + "\n"


FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags, defined when the module runs as a program."""
    flags.DEFINE_integer("seeds", 3, "Seeds per benchmark.", lower_bound=1)
    flags.DEFINE_integer("epochs", None, "Epochs of every run (default: each preset's).", lower_bound=1)
    flags.DEFINE_list("benchmarks", list(BENCHMARKS), f"Which of {list(BENCHMARKS)} to run.")
    flags.DEFINE_string("work_dir", "runs/keras_peer", "Where the runs live (reused when rerun).")
    flags.DEFINE_string("output", None, "File to write the Markdown section to (default: stdout).")


def main(argv):
    absl_warnings_only()
    del argv
    unknown = sorted(set(FLAGS.benchmarks) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmarks {unknown}; expected some of {list(BENCHMARKS)}")
    text = compare(FLAGS.work_dir, seeds=tuple(range(FLAGS.seeds)), epochs=FLAGS.epochs,
                   benchmarks=tuple(FLAGS.benchmarks), log=sys.stderr)
    command = "python -m training.experiments.keras_peer" + "".join(
        f" --{name}={value}" for name, value in (("seeds", FLAGS.seeds), ("epochs", FLAGS.epochs)) if value)
    text += (f"\nWritten by `{command}` on {datetime.date.today().isoformat()} "
             f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, "
             f"Keras {keras.__version__}).\n")
    if FLAGS.output:
        os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
        with open(FLAGS.output, "w") as f:
            f.write(text)
        print(f"wrote {FLAGS.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    define_flags()
    run(main)
