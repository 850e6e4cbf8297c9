"""Level-wise batching of trees against node-by-node recursion: one training step on the same batch of trees.

    python -m benchmarks.trees                 # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.trees --rounds=2 --compositions=binary_tree_lstm --output=   # a quick look, nothing written

Trees: a seeded batch of `--batch` (25, the minibatch of Tai et al. 2015) SST-like random binary trees, each with a
number of leaves drawn uniformly in [`--min_leaves`, `--max_leaves`] (20..50: a sentence's words), bracketed by
splitting every span of leaves at a uniformly drawn point (so a tree is neither a chain nor balanced), with a random
word id (vocabulary `--vocabulary`) at every leaf and a random one of 5 classes at every node (the fine-grained task's
loss is on every node). Both methods get the same trees.

The model (Tai et al.'s sentiment setting by default): an embedding of `--input_dim` (300) features, a composition of
`--units` (150) units, and a softmax head of 5 classes on every node; the loss is the mean cross-entropy over the
labelled nodes; the optimizer Adagrad at 0.05. One training step is the loss, its gradient with respect to every
weight (embedding, composition, head) and the optimizer's update. The methods share the same layers (the same weights):

- level-wise: `zoo.layers.TreeEncoder` over the batch in the tree batch format (`training.data.trees.encode_batch`,
  N = the batch's largest tree's node count rounded up to a power of two, `max_height` = the batch's largest height),
  one `tf.function`, with and without `jit_compile`;
- node-by-node recursion (the baseline; how the reference Lua Tree-LSTM and a naive Keras user process a tree): a
  Python recursion over each tree in post-order that calls the same composition layer on one node at a time (its
  children's states stacked, zeros and a False mask in empty slots), the trees one after another, the head on each
  tree's stacked node states, inside `tf.GradientTape`, eager;
- the same recursion traced into one `tf.function` (`--graph_baseline`, by default for the binary Tree-LSTM alone:
  its trace takes minutes): a graph with one composition per node. Its trees are Python structure, not tensors, so
  every new batch traces a new graph. The row "recursion, tf.function" reruns the traced graph on the same batch
  (the graph's cost alone, trace excluded); the row "traced per batch" is its first call, a trace and one run, timed
  once (not in the rounds: it is what each new batch costs it in training).

`tests/benchmarks/trees_test.py` checks that the level-wise and the recursive steps give the same loss and gradients
(1e-5) on the same trees, so the two compute the same thing. All runs are interleaved in one process (each round
times every run once, in a new random order); a figure is the median over rounds, a ratio (baseline time / level-wise
time) the median of per-round ratios.
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

from benchmarks import report  # noqa: E402
from training.data import trees  # noqa: E402
from zoo.layers.binary_tree_lstm_composition import BinaryTreeLSTMComposition  # noqa: E402
from zoo.layers.child_sum_tree_lstm_composition import ChildSumTreeLSTMComposition  # noqa: E402
from zoo.layers.tree_encoder import TreeEncoder  # noqa: E402
from zoo.layers.tree_encoder import level_width  # noqa: E402
from zoo.layers.tree_rnn_composition import TreeRNNComposition  # noqa: E402

CLASSES = 5  # the Stanford Sentiment Treebank's fine-grained classes
LEARNING_RATE = 0.05  # Adagrad, Tai et al. 2015
TARGET = 10.0  # issue 13: level-wise batching >= 10x node-by-node recursion at batch 25

# name: (composition class, display name); the Tree-RNN's word vectors are its leaf states, so its inputs have `units`
# features whatever --input_dim says.
COMPOSITIONS = {
    "binary_tree_lstm": (BinaryTreeLSTMComposition, "binary Tree-LSTM"),
    "tree_rnn": (TreeRNNComposition, "Tree-RNN"),
    "child_sum": (ChildSumTreeLSTMComposition, "Child-Sum Tree-LSTM"),
}

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags, defined when it runs as a program (not on import), so that a test process imports
    its functions beside other benchmarks whose flags share names."""
    flags.DEFINE_integer("batch", 25, "Trees per batch (Tai et al.'s minibatch).", lower_bound=1)
    flags.DEFINE_integer("min_leaves", 20, "The fewest leaves of a tree.", lower_bound=1)
    flags.DEFINE_integer("max_leaves", 50, "The most leaves of a tree.", lower_bound=1)
    flags.DEFINE_integer("input_dim", 300, "Word vector size (the Tree-RNN uses --units instead).", lower_bound=1)
    flags.DEFINE_integer("units", 150, "Composition units.", lower_bound=1)
    flags.DEFINE_integer("vocabulary", 1000, "Word ids drawn at the leaves (the embedding's rows).", lower_bound=2)
    flags.DEFINE_list("compositions", list(COMPOSITIONS), f"Compositions to measure, of {', '.join(COMPOSITIONS)}.")
    flags.DEFINE_list("graph_baseline", ["binary_tree_lstm"], "Compositions whose recursion is also timed traced into "
                      "one tf.function (its trace takes minutes at the defaults); empty: none.")
    flags.DEFINE_integer("rounds", 5, "Interleaved rounds; figures are medians over rounds.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "Seed of the trees, the weights and the round order.")
    flags.DEFINE_bool("shared_machine", False, "Say in the section that other jobs shared the machine during the run.")
    flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose section is rewritten; empty: none.")


def random_binary_tree(rng, leaves, vocabulary, classes=CLASSES):
    """A random binary tree over `leaves` leaves: every span of two or more leaves splits at a uniformly drawn point.

    Args:
        rng: a `numpy.random.Generator`.
        leaves: int >= 1, the number of leaves.
        vocabulary: the leaves' words are ids 1..vocabulary-1 (0 is what internal nodes hold in the batch format),
            written as decimal strings.
        classes: every node gets a label drawn uniformly in 0..classes-1.

    Returns:
        `training.data.trees.Tree` with 2 * leaves - 1 nodes.
    """

    def span(count):
        if count == 1:
            return trees.Tree(int(rng.integers(classes)), str(int(rng.integers(1, vocabulary))))
        left = int(rng.integers(1, count))
        return trees.Tree(int(rng.integers(classes)), None, (span(left), span(count - left)))

    return span(leaves)


def tree_batch(seed, batch, min_leaves, max_leaves, vocabulary):
    """The benchmark's batch in the tree batch format (`training.data.trees.encode_batch`): `batch` random binary
    trees of min_leaves..max_leaves leaves (uniform), N the largest tree's node count rounded up to a power of two.

    Returns:
        dict of NumPy int32 arrays: words [B, N], children [B, N, 2], heights [B, N], labels [B, N], roots [B].
    """
    if min_leaves > max_leaves:
        raise ValueError(f"min_leaves must be <= max_leaves, got min_leaves={min_leaves}, max_leaves={max_leaves}")
    rng = np.random.default_rng(seed)
    drawn = [random_binary_tree(rng, int(rng.integers(min_leaves, max_leaves + 1)), vocabulary) for _ in range(batch)]
    nodes = trees.bucket(max(len(trees.postorder(tree)) for tree in drawn))
    return trees.encode_batch(drawn, int, nodes, 2)


class Parts:
    """The layers both methods share: `embedding` (vocabulary x input_dim), `composition` (built for K = 2),
    `encoder` (a `TreeEncoder` around that same composition, `max_height` the batch's largest height) and `head`
    (Dense(classes), logits on every node); `variables`, every trainable weight, in a fixed order."""

    def __init__(self, composition, batch, input_dim, units, vocabulary, seed=0):
        if composition not in COMPOSITIONS:
            raise ValueError(f"composition must be one of {sorted(COMPOSITIONS)}, got {composition!r}")
        composition_class = COMPOSITIONS[composition][0]
        if composition_class is TreeRNNComposition:
            input_dim = units  # its leaves' word vectors are their states
        keras.utils.set_random_seed(seed)
        self.input_dim, self.units = input_dim, units
        self.embedding = keras.layers.Embedding(vocabulary, input_dim, embeddings_initializer="uniform")
        self.composition = composition_class(units)
        self.encoder = TreeEncoder(self.composition, int(batch["heights"].max()))
        self.head = keras.layers.Dense(CLASSES)
        self.embedding.build((None, None))
        self.encoder.build((None, None, input_dim), (None, None, 2), (None, None))
        self.head.build((None, units))
        self.variables = (self.embedding.trainable_variables + self.composition.trainable_variables
                          + self.head.trainable_variables)


def node_loss(logits, labels):
    """Mean softmax cross-entropy over the labelled nodes (label >= 0): logits [..., classes], labels [...] int."""
    labelled = labels >= 0
    losses = keras.ops.sparse_categorical_crossentropy(keras.ops.where(labelled, labels, 0), logits, from_logits=True)
    labelled = keras.ops.cast(labelled, losses.dtype)
    return keras.ops.sum(losses * labelled) / keras.ops.sum(labelled)


def levelwise_loss(parts, words, children, heights, labels):
    """The loss of the whole batch, every node of a height composed at once across the batch (`TreeEncoder`)."""
    h = parts.encoder(parts.embedding(words), children, heights)
    return node_loss(parts.head(h), labels)


def recursive_loss(parts, batch):
    """The same loss, node by node: a recursion over each tree (post-order, children first) that calls the
    composition on one node at a time, the trees one after another; the head on each tree's stacked node states.

    Args:
        parts: `Parts`.
        batch: the batch arrays as NumPy (the trees' structure is read in Python, as a recursive implementation
            does; under `tf.function` it is unrolled into the graph).

    Returns:
        the scalar loss: the sum of every labelled node's cross-entropy over their number, as `levelwise_loss`.
    """
    composition, units = parts.composition, parts.units
    states_per_node = len(composition.state_size)
    zero_state = tf.zeros((1, units))
    no_input = tf.zeros((1, parts.input_dim))
    total, count = 0.0, 0
    for b in range(batch["words"].shape[0]):
        children, words = batch["children"][b], batch["words"][b]
        states = {}

        def visit(node):
            kids = [int(k) for k in children[node] if k >= 0]
            for kid in kids:
                visit(kid)
            x = parts.embedding(words[node:node + 1]) if not kids else no_input
            slots = [[states[kid][s] for kid in kids] + [zero_state] * (2 - len(kids))
                     for s in range(states_per_node)]
            mask = tf.constant([[slot < len(kids) for slot in range(2)]])
            states[node] = composition(x, [tf.stack(slot, axis=1) for slot in slots], children_mask=mask)

        visit(int(batch["roots"][b]))
        labelled = [node for node in sorted(states) if batch["labels"][b, node] >= 0]
        if not labelled:
            continue
        logits = parts.head(tf.concat([states[node][0] for node in labelled], axis=0))
        targets = tf.constant(batch["labels"][b, labelled])
        total += tf.reduce_sum(keras.ops.sparse_categorical_crossentropy(targets, logits, from_logits=True))
        count += len(labelled)
    return total / count


def dense_gradients(loss_fn, variables):
    """(loss, [gradient of each variable as a dense tensor]): the embedding's gradient comes as IndexedSlices."""
    with tf.GradientTape() as tape:
        loss = loss_fn()
    return loss, [tf.convert_to_tensor(g) for g in tape.gradient(loss, variables)]


def make_steps(parts, batch, graph_baseline=True):
    """{run name: a function that takes one training step on `batch` and returns its loss}, each with its own Adagrad
    (the weights are shared, so every step moves them; the timing does not depend on their values). With
    `graph_baseline`, "recursion, tf.function" is the recursion traced into one `tf.function`: its first call traces
    it (for this batch only), the later ones rerun the graph."""
    arrays = [tf.constant(batch[key]) for key in ("words", "children", "heights", "labels")]

    def apply(loss_fn):
        optimizer = keras.optimizers.Adagrad(LEARNING_RATE)
        optimizer.build(parts.variables)

        def step(*args):
            with tf.GradientTape() as tape:
                loss = loss_fn(*args)
            optimizer.apply_gradients(zip(tape.gradient(loss, parts.variables), parts.variables))
            return loss

        return step

    steps = {}
    for jit_compile in (False, True):
        # The step's arguments are tensors, so one trace serves every batch of this shape. No tensor decides any
        # Python branch here or in the recursion, so AutoGraph has nothing to convert.
        compiled = tf.function(apply(lambda *a: levelwise_loss(parts, *a)), jit_compile=jit_compile, autograph=False)
        steps[f"level-wise{', XLA' if jit_compile else ''}"] = lambda compiled=compiled: compiled(*arrays)
    steps[EAGER] = apply(lambda: recursive_loss(parts, batch))
    if graph_baseline:
        steps[GRAPH] = tf.function(apply(lambda: recursive_loss(parts, batch)), autograph=False)
    return steps


EAGER, GRAPH = "recursion, eager", "recursion, tf.function"


def _seconds(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(composition, batch, rounds, input_dim, units, vocabulary, seed=0, graph_baseline=True):
    """Times one composition's runs on `batch`.

    Every run takes one untimed step first (it traces, and compiles under XLA); the recursion's `tf.function` traces
    for this batch alone there, and that first call's time (trace and one run) is kept as what a new batch costs it.
    Then `rounds` interleaved rounds time one step of every run.

    Returns:
        ({run name: [seconds per round]}, seconds of the traced recursion's first call or None).
    """
    parts = Parts(composition, batch, input_dim, units, vocabulary, seed)
    steps = make_steps(parts, batch, graph_baseline)
    first = {}
    for name, step in steps.items():
        first[name] = _seconds(lambda step=step: float(step()))
    times = report.interleaved({name: (lambda step=step: float(step())) for name, step in steps.items()}, rounds,
                               seed=seed)
    return times, first.get(GRAPH)


def batch_summary(batch):
    """(trees, real nodes, N, the largest height, node slots the level-wise encoder composes): the sum over levels
    0..max_height of `zoo.layers.tree_encoder.level_width` (B * (N // (level + 1)), the static width of a level)."""
    real = int((batch["heights"] >= 0).sum())
    b, n = batch["words"].shape
    height = int(batch["heights"].max())
    return b, real, n, height, sum(level_width(b, n, level) for level in range(height + 1))


def _command():
    names = ("batch", "min_leaves", "max_leaves", "input_dim", "units", "vocabulary", "compositions",
             "graph_baseline", "rounds", "seed")
    parts = [f"--{name}={','.join(FLAGS[name].value) if isinstance(FLAGS[name].value, list) else FLAGS[name].value}"
             for name in names if FLAGS[name].value != FLAGS[name].default]
    text = " ".join(["python -m benchmarks.trees", *parts, *(["--shared_machine"] if FLAGS.shared_machine else [])])
    return f"`{text}`{report.make_bench_note(FLAGS, names)}"


def section(results, batch):
    """The Markdown section of docs/performance.md from {composition: (times, first call of the traced recursion)}."""
    b, real, n, height, slots = batch_summary(batch)
    lines = [
        "## Trees: level-wise batching against node-by-node recursion (`benchmarks/trees.py`)",
        "",
        f"Command: {_command()}, {datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}." + (
            " Other jobs shared the machine's cores during the run, so the absolute figures wander from run to run; "
            "the ratios, taken within each round, hold better." if FLAGS.shared_machine else ""),
        "",
        f"One training step (loss, gradient of every weight, Adagrad at {LEARNING_RATE}) on one batch of {b} "
        f"SST-like random binary trees of {FLAGS.min_leaves}..{FLAGS.max_leaves} leaves (seed {FLAGS.seed}: {real} "
        f"nodes, padded to N = {n} nodes a tree, the highest tree of height {height}), word vectors of "
        f"{FLAGS.input_dim} features (the Tree-RNN's: {FLAGS.units}, its leaf states), {FLAGS.units} units, a "
        f"softmax head of {CLASSES} classes on every node. The same layers (the same weights) in every run; the "
        "level-wise and the recursive steps give the same loss and gradients to 1e-5 "
        "(`tests/benchmarks/trees_test.py`). Figures are medians over "
        f"{FLAGS.rounds} interleaved rounds; the ratio is recursion time / level-wise time, the median of per-round "
        "ratios.",
        "",
        "| composition | run | ms/batch | trees/s | eager recursion / this | per-round range | target | verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for composition, (times, first) in results.items():
        display = COMPOSITIONS[composition][1]
        for name, seconds in times.items():
            median = statistics.median(seconds)
            ratio = report.median_ratio(times[EAGER], seconds)
            levelwise = name.startswith("level-wise")
            target = f">= {TARGET:g}x" if levelwise else "—"
            verdict = ("meets" if ratio >= TARGET else "**misses**") if levelwise else "—"
            ratios = [e / t for e, t in zip(times[EAGER], seconds)]
            spread = "—" if name == EAGER else f"{min(ratios):.1f}–{max(ratios):.1f}"
            lines.append(f"| {display} | {name} | {median * 1e3:,.0f} | {b / median:,.1f} | "
                         f"{'—' if name == EAGER else f'{ratio:.1f}'} | {spread} | {target} | {verdict} |")
        if first is not None:
            lines.append(f"| {display} | {GRAPH}, traced per batch (one new trace and its first run, timed once) | "
                         f"{first * 1e3:,.0f} | {b / first:,.2f} | {statistics.median(times[EAGER]) / first:.2f} "
                         "| — | — | — |")
    lines += ["", explanation(results, batch), ""]
    return "\n".join(lines)


def explanation(results, batch):
    """The paragraph under the table: where each method spends its time."""
    b, real, n, height, slots = batch_summary(batch)
    text = (f"Why: the recursion composes only the {real} real nodes, but one at a time, each a handful of small ops "
            f"(eager: each dispatched from Python with its gradient taped); the level-wise encoder runs "
            f"{height + 1} batched compositions (one per height), each over the static width of its level (B x "
            f"(N // (height + 1)) slots, the most nodes of that height {b} trees of {n} nodes can hold), so "
            f"{slots:,} node compositions, {slots / real:.1f} times the real nodes (the price of static shapes, "
            "which let it train under XLA and export): its time is arithmetic, the recursion's is overhead.")
    for composition, (times, first) in results.items():
        if GRAPH in times:
            best = min((name for name in times if name.startswith("level-wise")),
                       key=lambda name: statistics.median(times[name]))
            graph_ms, best_ms = (statistics.median(times[name]) * 1e3 for name in (GRAPH, best))
            text += (f" The recursion traced into one graph ({COMPOSITIONS[composition][1]}) removes the "
                     f"Python overhead: rerun on the same batch it takes {graph_ms:,.0f} ms against the faster "
                     f"level-wise run's {best_ms:,.0f} ms ({best}), but its graph holds one composition per node of "
                     "this batch's trees, so a new batch is a new trace: "
                     f"{first:,.0f} s the first time, {first / statistics.median(times[EAGER]):,.0f} times an eager "
                     "step.")
    return text


def main(argv):
    del argv
    absl_warnings_only()
    for name in ("compositions", "graph_baseline"):
        unknown = [c for c in FLAGS[name].value if c not in COMPOSITIONS]
        if unknown:
            raise app.UsageError(f"--{name} must name compositions of {', '.join(COMPOSITIONS)}, got "
                                 f"{','.join(unknown)}")
    if not FLAGS.compositions:
        raise app.UsageError(f"--compositions must name at least one of {', '.join(COMPOSITIONS)}, got none")
    if FLAGS.min_leaves > FLAGS.max_leaves:
        raise app.UsageError(f"--min_leaves must be <= --max_leaves, got --min_leaves={FLAGS.min_leaves} and "
                             f"--max_leaves={FLAGS.max_leaves}")
    batch = tree_batch(FLAGS.seed, FLAGS.batch, FLAGS.min_leaves, FLAGS.max_leaves, FLAGS.vocabulary)
    b, real, n, height, slots = batch_summary(batch)
    print(f"{b} trees, {real} nodes, N = {n}, height {height}", flush=True)
    results = {}
    for composition in FLAGS.compositions:
        print(f"{COMPOSITIONS[composition][1]}: tracing, then {FLAGS.rounds} rounds...", flush=True)
        results[composition] = measure(composition, batch, FLAGS.rounds, FLAGS.input_dim, FLAGS.units,
                                       FLAGS.vocabulary, FLAGS.seed, composition in FLAGS.graph_baseline)
        for name, seconds in results[composition][0].items():
            print(f"  {name:28s} {statistics.median(seconds) * 1e3:9.0f} ms/batch", flush=True)
    report.publish(section(results, batch), FLAGS.output, "benchmarks.trees")


if __name__ == "__main__":
    define_flags()
    run(main)
