"""Decoding: sentences per second of greedy decoding and beam search; the in-graph beam search against a Python loop.

    python -m benchmarks.decoding          # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.decoding --rounds=3 --output=

Every run decodes one batch of sentences (each `--batch` size in turn: 1, one request at a time, and 32), each row
starting from its own word, at most `--max_length` tokens each, with the language model's specials (<pad> 0,
<unk> 1, <bos> 2 banned; <eos> 3 ends a sentence) and the GNMT length penalty `LENGTH_PENALTY`.

In-graph: `zoo.decoding.generate` (greedy) and `zoo.decoding.beam_search` (beam 4 and 8), each inside one
`tf.function`, without and with XLA. Baseline: `python_beam_search`, a Python loop that calls the model's `step`
(in a `tf.function`, with the reorder of the state by the chosen beams' parents and the log-softmax) once per step
and does the beam bookkeeping in NumPy. Before timing, the Python loop must return the same hypotheses as
`beam_search`, so both do the same work. Target: the in-graph beam search >= 5x the Python loop's sentences per second
without XLA. A last run per beam size steps the model alone, with no search, on the same rows for as many steps
(`step_only`): the Python loop's time over it bounds the speed-up any in-graph search can reach.

The model is a `Subject`: anything with the decoding step contract of `zoo.decoding` (`initial_state`, `step`).
Subjects: the LSTM language model; and the `translation` task's model (its `dates` preset, `seq2seq_bahdanau`,
trained for `--train_steps` steps so that it writes dates that end with <eos>) on sources of two lengths, the dates of
the task's test split and a longer sentence (`--long_source` tokens, dates joined by commas). A translation subject's
`initial_state` runs the encoder on the batch's sources (inside the timed `tf.function`, so encoding is part of every
figure); its rows all start from <bos>, at most the task's `decode_length` target tokens each.
"""

import collections
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
from benchmarks import steps  # noqa: E402
from training import tasks  # noqa: E402
from zoo.decoding import beam_search  # noqa: E402
from zoo.decoding import generate  # noqa: E402
from zoo.decoding import gnmt_length_penalty  # noqa: E402

FLAGS = flags.FLAGS
VOCAB = 32  # the grammar corpus's vocabulary, as in benchmarks/language_models.py
PAD, UNK, BOS, EOS, FIRST_WORD = 0, 1, 2, 3, 4
BANNED = (PAD, UNK, BOS)
LENGTH_PENALTY = 0.6  # GNMT's alpha for translation (Wu et al. 2016)
BEAMS = (4, 8)
TARGET = 5.0
ABSENT = -1e30  # a hypothesis that does not exist, as in zoo.decoding.beam_search


# What a decoding benchmark needs of a model: `initial_state(batch_size)` -> state (a nest of tensors, leading
# dimension the batch) and `step(tokens, state)` -> (logits [N, vocab], state), the contract of `zoo.decoding`;
# optionally `start_ids(batch_size)` -> int32 [batch] (default: every row its own word, see `benchmark`), the most
# tokens of a sentence (default `--max_length`) and a description of the rows (for the section).
Subject = collections.namedtuple("Subject", "name initial_state step start_ids max_length rows",
                                 defaults=(None, None, None))


def lstm_language_model():
    """The language_model task's `lstm` preset (its sizes, random weights) on the grammar corpus's vocabulary."""
    config = tasks.get("language_model").presets["lstm"]
    keras.utils.set_random_seed(0)
    model = zoo.models.get(config["model"], vocab_size=VOCAB, **config["model_options"])
    model(np.zeros((1, 2), "int32"))
    options = ", ".join(f"{key}={value}" for key, value in config["model_options"].items())
    return Subject(f"LSTM LM (`{config['model']}`, {options}, vocabulary {VOCAB}, random weights)",
                   model.initial_state, model.step,
                   rows=f"each row starts from its own word, at most {FLAGS.max_length} tokens")


def translation_model(source):
    """The translation task's `dates` preset (its model and sizes, trained `--train_steps` steps), decoding
    `MAX_BATCH` sources:
    dates of the test split (`source="dates"`), or longer sentences of `--long_source` tokens (`source="long"`), dates
    joined by ", " (so the characters are the source vocabulary's)."""
    task = tasks.get("translation")
    config = {**task.presets["dates"], "seed": 0, "train_size": 2000, "validation_size": 64, "test_size": 256}
    corpus = task.corpus(config)
    keras.utils.set_random_seed(0)
    model = task.build_model(config)
    train(task, config, model, FLAGS.train_steps)
    lines = corpus.lines["test"][0]
    if source == "long":
        text = ", ".join(lines)
        width = FLAGS.long_source
        if len(text) < MAX_BATCH * width:
            raise ValueError(f"--long_source={width} asks for more characters than the test dates hold")
        lines = [text[row * width : (row + 1) * width] for row in range(MAX_BATCH)]
    encoded = corpus.source.encode_lines(lines[:MAX_BATCH])
    sources = np.zeros((MAX_BATCH, max(len(ids) for ids in encoded)), "int32")
    for row, ids in enumerate(encoded):
        sources[row, : len(ids)] = ids
    sources = tf.constant(sources)
    lengths = np.count_nonzero(sources.numpy(), axis=1)
    options = ", ".join(f"{key}={value}" for key, value in zoo.models.preset(config["model"]).items()
                        if key in ("units", "embedding_dim", "bidirectional", "attention"))
    described = ("dates of the test split" if source == "dates"
                 else f"longer sentences: {FLAGS.long_source} characters of test dates joined by commas")
    return Subject(
        f"translation model (`translation` task, `dates` preset: `{config['model']}`, {options}, source vocabulary "
        f"{corpus.source.vocabulary.size}, target vocabulary {corpus.target.vocabulary.size}, "
        + (f"trained {FLAGS.train_steps} Adam steps on dates)" if FLAGS.train_steps else "random weights)"),
        lambda batch: model.initial_state(sources[:batch]), model.step,
        start_ids=lambda batch: np.full(batch, BOS, np.int32), max_length=int(config["decode_length"]),
        rows=f"sources: {described} ({lengths.min()} to {lengths.max()} tokens, mean {lengths.mean():.0f}); every "
             f"row starts from <bos>, at most {config['decode_length']} target tokens (the task's decode_length); "
             "encoding included",
    )


def train(task, config, model, count):
    """`count` Adam steps of the task's loss on batches of the training split (the preset's batch size, learning rate
    and clipping), so that the model writes what a trained one writes: dates that end with <eos>."""
    (sources, target_in), target_out = task.split_data(config)["train"]
    batch = config["batch_size"]
    model((tf.ones([1, 1], tf.int32), tf.ones([1, 1], tf.int32)))
    step = steps.train_step(task, config, model, reduce_retracing=True, dense_gradients=True)

    def padded(rows):
        out = np.zeros((len(rows), max(len(row) for row in rows)), "int32")
        for index, row in enumerate(rows):
            out[index, : len(row)] = row
        return tf.constant(out)

    rng = np.random.default_rng(0)
    for _ in range(count):
        rows = rng.choice(len(sources), batch, replace=False)
        step((padded([sources[i] for i in rows]), padded([target_in[i] for i in rows])),
             padded([target_out[i] for i in rows]))


SUBJECTS = {
    "lm": lstm_language_model,
    "dates": lambda: translation_model("dates"),
    "long": lambda: translation_model("long"),
}
MAX_BATCH = 32  # the most sources a translation subject holds: the largest --batch


def in_graph_runs(subject, batch, max_length):
    """{(method, compiler): a tf.function of start ids [batch] -> the decoder's output (greedy: its tokens [batch,
    max_length]; beam search: the dict of `beam_search`)}."""

    def greedy(start_ids):
        initial_state = subject.initial_state(tf.shape(start_ids)[0])
        return generate(subject.step, initial_state, start_ids[:, None], tf.ones_like(start_ids), max_length, EOS,
                        pad_id=PAD, banned_ids=BANNED)["tokens"]

    def beam(size):
        def search(start_ids):
            initial_state = subject.initial_state(tf.shape(start_ids)[0])
            return beam_search(subject.step, initial_state, start_ids, max_length, EOS, size, pad_id=PAD,
                               banned_ids=BANNED, length_penalty=LENGTH_PENALTY)

        return search

    functions = {"greedy": greedy, **{f"beam {k}": beam(k) for k in BEAMS}}
    return {(method, compiler): tf.function(function, jit_compile=compiler == "XLA")
            for method, function in functions.items() for compiler in ("tf.function", "XLA")}


def reordering_step(subject):
    """One `tf.function` per decoding step: reorder the state by the chosen beams' parents, step the model, and return
    the log-softmax of its logits (the Python loop's only TensorFlow call per step)."""

    @tf.function
    def step(parents, tokens, state):
        state = tf.nest.map_structure(lambda s: tf.gather(s, parents), state)
        logits, state = subject.step(tokens, state)
        return tf.nn.log_softmax(tf.cast(logits, tf.float32)), state

    return step


def python_beam_search(step, initial_state, start_ids, max_length, beam_size):
    """Beam search as a Python loop: `step` (see `reordering_step`) once per token, the bookkeeping in NumPy.

    The same search as `zoo.decoding.beam_search` with `pad_id=PAD`, `banned_ids=BANNED`, `length_penalty=
    LENGTH_PENALTY`: K * V candidates per row, the K best kept (ties to the lower index, as `tf.math.top_k`),
    finished hypotheses kept with their score fixed, the loop ended when every beam has finished. Tokens are kept as
    (token, parent) per step and traced back once at the end, and the state stays on the TensorFlow side.

    Returns:
        {"tokens": int32 [batch, K, max_length], "lengths": int32 [batch, K], "scores": float32 [batch, K]}, best
        first, absent hypotheses with length 0 and score -inf; and "steps", how many steps the loop ran.
    """
    k = beam_size
    batch = len(start_ids)
    rows = np.arange(batch)[:, None]
    state = tf.nest.map_structure(lambda s: tf.repeat(s, k, axis=0), initial_state)
    log_probs = np.full((batch, k), ABSENT, np.float32)
    log_probs[:, 0] = 0.0
    scores = log_probs.copy()
    finished = np.ones((batch, k), bool)
    finished[:, 0] = False
    lengths = np.zeros((batch, k), np.int32)
    parents = np.arange(batch * k, dtype=np.int32)  # no reorder before the first step
    feed = np.repeat(np.asarray(start_ids, np.int32), k)
    trace = []  # (token, parent beam) per step, [batch, K] each
    banned = None  # [V] bool, once V is known
    penalties = gnmt_length_penalty(np.arange(max_length + 1), LENGTH_PENALTY).numpy()  # the same float32 values
    for _ in range(max_length):
        if finished.all():
            break
        step_log_probs, state = step(parents, feed, state)
        step_log_probs = step_log_probs.numpy().reshape(batch, k, -1)
        vocab = step_log_probs.shape[-1]
        if banned is None:
            banned = np.isin(np.arange(vocab), BANNED)
        growing = ~finished
        candidates = np.where(banned, ABSENT, log_probs[:, :, None] + step_log_probs)
        candidates[finished] = ABSENT
        candidates[finished, PAD] = log_probs[finished]  # a finished hypothesis only keeps itself
        next_lengths = lengths + growing
        penalty = penalties[next_lengths]
        candidate_scores = np.where(candidates > ABSENT / 2, candidates / penalty[:, :, None], ABSENT)
        candidate_scores = candidate_scores.reshape(batch, k * vocab)
        # A stable sort: ties go to the lower index, as in top_k (np.argpartition would break them arbitrarily).
        best = np.argsort(-candidate_scores, axis=1, kind="stable")[:, :k]
        parent, token = best // vocab, best % vocab
        chosen = candidates.reshape(batch, k * vocab)[rows, best]
        present = chosen > ABSENT / 2
        ended = finished[rows, parent] | (next_lengths[rows, parent] >= max_length) | (token == EOS)
        trace.append((np.where(growing[rows, parent], token, PAD), parent))
        log_probs = np.where(present, chosen, ABSENT).astype(np.float32)
        scores = np.where(present, candidate_scores[rows, best], ABSENT).astype(np.float32)
        finished = ended | ~present
        lengths = next_lengths[rows, parent]
        parents = (rows * k + parent).reshape(-1).astype(np.int32)
        feed = np.where(finished, PAD, token).reshape(-1).astype(np.int32)
    tokens = np.full((batch, k, max_length), PAD, np.int32)
    beam = np.broadcast_to(np.arange(k), (batch, k))
    for t in range(len(trace) - 1, -1, -1):
        token, parent = trace[t]
        tokens[:, :, t] = token[rows, beam]
        beam = parent[rows, beam]
    present = log_probs > ABSENT / 2
    return {
        "tokens": np.where(present[:, :, None], tokens, PAD),
        "lengths": np.where(present, lengths, 0),
        "scores": np.where(present, scores, -np.inf),
        "steps": len(trace),
    }


def check_same_hypotheses(expected, found, beam_size):
    """The Python loop must find what `beam_search` finds: every hypothesis, its length and its score."""
    for name in ("tokens", "lengths"):
        np.testing.assert_array_equal(found[name], expected[name].numpy(),
                                      err_msg=f"beam {beam_size}: the Python loop's {name} differ from beam_search's")
    np.testing.assert_allclose(found["scores"], expected["scores"].numpy(), rtol=1e-5,
                               err_msg=f"beam {beam_size}: the Python loop's scores differ from beam_search's")


def step_only(subject, batch, beam_size, steps):
    """A tf.function of start ids [batch * beam_size] that runs the model's step alone for `steps` steps in one while
    loop (each step reads the argmax of the last) on the initial state of `batch` rows repeated `beam_size` times, as
    a beam search tiles it: the model's share of a search, with no search around it."""

    @tf.function
    def run(tokens):
        def advance(t, tokens, state):
            logits, state = subject.step(tokens, state)
            return t + 1, tf.argmax(logits, axis=-1, output_type=tf.int32), state

        state = tf.nest.map_structure(lambda s: tf.repeat(s, beam_size, axis=0), subject.initial_state(batch))
        return tf.while_loop(lambda t, tokens, state: t < steps, advance, (0, tokens, state))[1]

    return run


def benchmark(subject, batch):
    """Times every decoder on one subject and batch size: ({(method, loop): [seconds per round]}, {(method, loop):
    mean length of the best hypotheses})."""
    # Every row starts from its own token (or, from an encoder, its own state): rows that decoded alike would hide
    # errors in the bookkeeping's row indexing.
    if subject.start_ids is None:
        start_ids = np.random.default_rng(0).integers(FIRST_WORD, VOCAB, size=batch)
    else:
        start_ids = subject.start_ids(batch)
    start_ids = tf.constant(start_ids, tf.int32)
    max_length = subject.max_length or FLAGS.max_length
    functions = in_graph_runs(subject, batch, max_length)
    runs, lengths = {}, {}
    for (method, compiler), function in functions.items():
        out = function(start_ids)  # trace, compile, warm up
        if method == "greedy":
            lengths[method, compiler] = float(np.mean(np.sum(out.numpy() != PAD, axis=1)))
            runs[method, compiler] = lambda function=function: function(start_ids).numpy()
        else:
            lengths[method, compiler] = float(np.mean(out["lengths"].numpy()[:, 0]))
            runs[method, compiler] = lambda function=function: function(start_ids)["tokens"].numpy()
    step = reordering_step(subject)
    # The Python loop starts, as the in-graph runs do, from the initial state (a translation model's encoder run on
    # the sources), made by one tf.function call per run.
    initial_state = tf.function(lambda: subject.initial_state(batch))
    host_start_ids = start_ids.numpy()
    for k in BEAMS:
        found = python_beam_search(step, initial_state(), host_start_ids, max_length, k)  # also warms up
        check_same_hypotheses(functions[f"beam {k}", "tf.function"](start_ids), found, k)
        lengths[f"beam {k}", "Python loop"] = float(np.mean(found["lengths"][:, 0]))
        runs[f"beam {k}", "Python loop"] = (
            lambda k=k: python_beam_search(step, initial_state(), host_start_ids, max_length, k))
        floor = step_only(subject, batch, k, found["steps"])  # as many steps as the search, on its K x batch rows
        tiled_start_ids = tf.repeat(start_ids, k)
        floor(tiled_start_ids)
        runs[f"beam {k}", "step only"] = lambda floor=floor, ids=tiled_start_ids: floor(ids).numpy()
    return report.interleaved(runs, FLAGS.rounds), lengths


def median(values):
    return sorted(values)[len(values) // 2]


def section(results):
    """The Markdown section of docs/performance.md, from [(subject, batch, times, lengths)] (see `benchmark`)."""
    lines = [
        "## Decoding: greedy and beam search in one graph, against a Python loop (`benchmarks/decoding.py`)",
        "",
        f"Command: `python -m benchmarks.decoding --rounds={FLAGS.rounds} --batch={','.join(FLAGS.batch)} "
        f"--max_length={FLAGS.max_length} --subjects={','.join(FLAGS.subjects)} --long_source={FLAGS.long_source} "
        f"--train_steps={FLAGS.train_steps}"
        f"{' --shared_machine' if FLAGS.shared_machine else ''}`{_make_bench()}, {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}." + (
            " Other jobs shared the machine's cores during the run, so the absolute figures wander from run to run; "
            "the ratios, taken within each round, hold better." if FLAGS.shared_machine else ""),
        "",
        "Each run decodes a batch of sentences (one table per model, kind of rows and batch size), <eos> ending a "
        f"sentence, <pad>, <unk> and <bos> banned, length penalty alpha = {LENGTH_PENALTY} for beam search; median "
        f"over {FLAGS.rounds} interleaved rounds.",
        "",
        "In-graph: `zoo.decoding.generate` (greedy) and `zoo.decoding.beam_search`, each the whole search in one "
        "`tf.function`, without and with XLA (`jit_compile=True`). Python loop: per step, one call of a `tf.function` "
        "that reorders the state by the chosen beams' parents (`tf.gather`), steps the model and takes the "
        "log-softmax; the bookkeeping in NumPy (the top K of K x V candidates per row, finished hypotheses kept with "
        "their score, tokens traced back through the parents at the end). Before timing, the benchmark asserts that "
        "the Python loop returns the same hypotheses, lengths and scores as `beam_search` on every row of the batch, "
        "so both do the same work. Model step only: the model's step alone on the K x batch rows of a beam "
        "search, as many steps as the search ran, in one `tf.function` with no search around it; the Python loop's "
        "time over it bounds the speed-up any in-graph search could reach. Greedy decoding against a Python loop is "
        "in the language models' section above.",
    ]
    described = set()
    for subject, batch, times, lengths in results:
        if subject.name not in described:
            described.add(subject.name)
            lines += ["", f"Model: the {subject.name}."]
            if "random weights" in subject.name:
                lines[-1] += (" With random weights the next-token distribution is nearly flat and <eos> rarely "
                              "wins, so most hypotheses run to or near the maximum length (the mean length column).")
        lines += [
            "",
            f"Batch of {batch}, {subject.rows}:",
            "",
            "| decoder | loop | sentences/s | tokens of the best hypothesis (mean) | speed-up over the Python loop |",
            "|---|---|---|---|---|",
        ]
        for (method, loop), seconds in times.items():
            python = (method, "Python loop")
            ratio = f"{report.median_ratio(times[python], seconds):.2f}x" if python in times else "—"
            length = "—" if loop == "step only" else f"{lengths[method, loop]:.1f}"
            lines.append(f"| {method} | {LOOPS[loop]} | {batch / median(seconds):,.0f} | {length} | {ratio} |")
        ratios = {k: report.median_ratio(times[f"beam {k}", "Python loop"], times[f"beam {k}", "tf.function"])
                  for k in BEAMS}
        verdict = "meets" if min(ratios.values()) >= TARGET else "**misses**"
        found = ", ".join(f"beam {k}: {ratio:.2f}x" for k, ratio in ratios.items())
        lines += [
            "",
            f"Target at batch {batch}: the in-graph beam search (without XLA) >= {TARGET:.0f}x the Python loop's "
            f"sentences/s: {found}, {verdict}.",
        ]
        bounds = {k: report.median_ratio(times[f"beam {k}", "Python loop"], times[f"beam {k}", "step only"])
                  for k in BEAMS}
        below = [f"beam {k}: {bound:.2f}x" for k, bound in bounds.items() if bound < TARGET]
        if below:
            lines[-1] += (f" The model step alone is already below {TARGET:.0f}x the Python loop here "
                          f"({', '.join(below)}): at this batch the model's own work on K x {batch} rows takes more "
                          f"than 1/{TARGET:.0f} of the Python loop's time, so even a search that cost nothing around "
                          "the step could not reach the target; only a faster step (XLA, or a lighter one) can.")
    lines += [
        "",
        "The benchmark takes its models as `Subject`s (`SUBJECTS` in the file): anything with the decoding step "
        "contract of `zoo.decoding` (`initial_state`, `step`). A translation subject's initial state runs the "
        "encoder on the batch's sources inside the timed function, so its figures include encoding; so do the Python "
        "loop's, which encodes in one `tf.function` call before its first step.",
        "",
    ]
    return "\n".join(lines)


def _make_bench():
    return report.make_bench_note(FLAGS, ("rounds", "batch", "max_length", "subjects", "long_source", "train_steps"))


LOOPS = {"tf.function": "in-graph (tf.function)", "XLA": "in-graph (XLA)",
         "Python loop": "Python loop (tf.function step, NumPy bookkeeping)",
         "step only": "model step only, in-graph (no search; bound)"}


def main(argv):
    del argv
    absl_warnings_only()
    batches = [int(batch) for batch in FLAGS.batch]
    if not batches or min(batches) < 1:
        raise ValueError(f"--batch must list positive batch sizes, got {FLAGS.batch}")
    unknown = [name for name in FLAGS.subjects if name not in SUBJECTS]
    if unknown or not FLAGS.subjects:
        raise ValueError(f"--subjects must list subjects among {sorted(SUBJECTS)}, got {FLAGS.subjects}")
    if max(batches) > MAX_BATCH and set(FLAGS.subjects) & {"dates", "long"}:
        raise ValueError(f"a translation subject decodes at most {MAX_BATCH} sources, got --batch={FLAGS.batch}")
    results = []
    for name in FLAGS.subjects:
        subject = SUBJECTS[name]()
        for batch in batches:
            times, lengths = benchmark(subject, batch)
            order = [(method, loop) for method in ("greedy",) + tuple(f"beam {k}" for k in BEAMS) for loop in LOOPS
                     if (method, loop) in times]
            results.append((subject, batch, {key: times[key] for key in order}, lengths))
    report.publish(section(results), FLAGS.output, "benchmarks.decoding")


def define_flags():
    """The command line's flags, defined when the module runs as a program (a test process imports several
    benchmarks whose flags share names: --rounds, --batch, --output)."""
    flags.DEFINE_integer("rounds", 11, "Interleaved rounds.", lower_bound=1)
    flags.DEFINE_list("batch", ["1", "32"], "Batch sizes (sentences decoded per run): one table each.")
    flags.DEFINE_integer("max_length", 40, "Most tokens of a sentence of the language model (its task's "
                         "max_new_tokens); a translation's is its task's decode_length.", lower_bound=1)
    flags.DEFINE_list("subjects", ["lm", "dates", "long"], "Models to decode with: lm (the LSTM language model), "
                      "dates (the translation model on dates), long (the translation model on a longer sentence).")
    flags.DEFINE_integer("long_source", 100, "Source tokens of the longer sentence.", lower_bound=1)
    flags.DEFINE_integer("train_steps", 300, "Adam steps the translation model trains on dates before it decodes, so "
                         "that its translations end with <eos> as a trained model's do (0: random weights).",
                         lower_bound=0)
    flags.DEFINE_bool("shared_machine", False, "Say in the section that other jobs shared the machine during the run.")
    flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose section is rewritten; empty: none.")


if __name__ == "__main__":
    define_flags()
    run(main)
