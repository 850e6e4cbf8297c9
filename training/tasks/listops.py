"""ListOps (Nangia & Bowman 2018): the value of a nested list expression, a recursive network composing over its true
tree (`training.data.listops` generates the expressions, seeded).

Data: three splits drawn from the run's seed, the test split first, each from its own random stream, an expression
already drawn for another split drawn again (so no test expression is a training one). Training and validation lists
have bracket depth 1..`max_depth` (5) and at most `max_length` tokens (100); the test lists are deeper:
`test_min_depth`..`test_max_depth` (5..7), at most `test_max_length` tokens (300). With the default generator
(`max_args` 5, `list_p` 0.25; seed 0, the default splits) 74% of the training lists have depth 4 or less (36% depth 1,
19% depth 2, 11% depth 3, 8% depth 4, 26% depth 5: the generator's depth cut-off piles lists at the deepest level),
while the test lists have depth 5 (14%), 6 (11%) or 7 (75%): every test list is as deep as the deepest training
lists and most are deeper, so the held-out set tests composition beyond the depths mostly seen, as the issue's
result asks.

Budget: 100,000 training lists seen 4 times (6,250 steps of 64). Fewer lists seen more often are memorised: with
20,000 lists and 20 epochs (the same steps), the Tree-LSTM (seed 0) answered 99.96% of its training lists right but
88.2% of the validation lists and 72.3% of the deeper test lists (with every list's value supervised: 99.99%, 93.1%,
81.4%), so the default draws five times as many lists. Drawing and encoding them takes about a minute.

Trees: the tree of `training.data.listops.parse` (a list node's first child is the operator leaf, then the arguments;
every list and digit node labelled with its value, 0..9; the operator leaves unlabelled). The binary compositions
(`tree_lstm`, `tree_rnn` presets: K = 2) read it binarised left-branching (`binarize`, default "left":
((([MAX 2) 9) 0)), the shape of the paper's trees: each new node takes the next argument, the operator first); the
chain's inner nodes carry no label. The Child-Sum Tree-LSTM (`child_sum` preset) reads the n-ary tree as it is
(K = `max_args` + 1). Words are the operator tokens and the digits (ids 1.., `<pad>` 0).

Loss: the cross-entropy of the root's value (the ListOps task), plus `node_loss_weight` (default 0: the task's
supervision is the root alone, as in the paper) times the mean cross-entropy over the tree's labelled nodes (every
list's and digit's value: a stronger signal that the option makes available). Metrics: `root_accuracy` (the task's
accuracy) and `node_accuracy` (every labelled node's value).

Batches (`training.tasks.tree_task`, `training.data.tree_batching`): node counts padded to powers of two, training
batches grouped by size by pre-sorting windows of `sort_window` batches; heights within `max_height` (None: the
tallest tree of the splits: 26 levels with seed 0 over 2,000 training and 500 test lists, binarised, the largest
tree 373 nodes), so training compiles under `--jit_compile`.

The `lstm` preset is the sequence baseline: the zoo's `lstm` (StackedRNN, one LSTM layer, `model_options` units 128)
over the flattened expression, every token ("]" included) one-hot ([T, 15] floats; padding steps all zero, masked),
the last state classified into the 10 values; same data, same optimization and epochs as the tree presets.

Export: a tree model's `serving_default` (`ListOpsServing`) takes the expression as a string, parses it in the graph
into the tree the model trains on (binarised as `binarize` says for the binary compositions), and returns the value,
its probabilities, the model's value at every list and digit node and each node's token span; the `lstm` preset's
(`_SequenceServing`) takes the same string and returns the value and its probabilities.
"""

import numpy as np
import tensorflow as tf

import zoo
from training.data import batching
from training.data import listops as listops_data
from training.data import trees
from training.data import trees_in_graph
from training.tasks.tree_serving import TreeServing
from training.tasks.tree_task import SPLITS
from training.tasks.tree_task import TreeData
from training.tasks.tree_task import TreeTask
from zoo.models.stacked_rnn.stacked_rnn_presets import STACKED_RNN_PRESETS

PAD = "<pad>"
TOKEN_IDS = {PAD: 0, **{token: index + 1 for index, token in enumerate(listops_data.VOCABULARY)}}
NUM_VALUES = 10
BINARY_COMPOSITIONS = ("binary_tree_lstm", "tree_rnn")

_COMMON = {
    "train_size": 100000,
    "validation_size": 1000,
    "test_size": 1000,
    "max_depth": 5,
    "max_length": 100,
    "test_min_depth": 5,
    "test_max_depth": 7,
    "test_max_length": 300,
    "max_args": 5,
    "list_p": 0.25,
    "binarize": "left",
    "node_loss_weight": 0.0,
    "max_height": None,
    "sort_window": 8,
    "buckets": None,
    "serving_max_nodes": None,
    "batch_size": 64,
    "epochs": 4,
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "clip_global_norm": 5.0,
}

PRESETS = {
    # The binary Tree-LSTM over the left-branching binarised trees.
    "tree_lstm": {**_COMMON, "model": "tree_lstm", "model_options": {"units": 128, "embedding_dim": 128}},
    # Socher et al.'s Tree-RNN: tanh of the children's concatenation (embedding_dim = units).
    "tree_rnn": {**_COMMON, "model": "tree_rnn", "model_options": {"units": 128, "embedding_dim": 128}},
    # The Child-Sum Tree-LSTM over the n-ary trees.
    "child_sum": {**_COMMON, "model": "child_sum_tree_lstm", "model_options": {"units": 128, "embedding_dim": 128}},
    # The sequence baseline over the flattened string (module docstring).
    "lstm": {**_COMMON, "model": "lstm", "model_options": {"units": 128}},
}


class ListOpsTask(TreeTask):
    name = "listops"
    presets = PRESETS
    default_preset = "tree_lstm"

    def is_tree_model(self, config):
        """Whether the config's model composes over trees (a TreeModel preset) rather than reading the string."""
        return "composition" in zoo.models.preset(config["model"])

    def check_config(self, config):
        if config["model"] not in zoo.models.names() or not self.is_tree_model(config):
            if config["model"] not in STACKED_RNN_PRESETS:
                raise ValueError(f"model must be a tree model preset ('tree_lstm', 'tree_rnn', 'child_sum_tree_lstm') "
                                 f"or a StackedRNN preset such as 'lstm' (the sequence baseline), got "
                                 f"{config['model']!r}")
            super(TreeTask, self).check_config(config)  # Task's: the tree checks do not apply
        else:
            super().check_config(config)
        for key in ("max_depth", "max_length", "test_min_depth", "test_max_depth", "test_max_length", "max_args"):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")
        if config["max_args"] < 2:
            raise ValueError(f"max_args must be >= 2 (every list has 2..max_args arguments), got {config['max_args']}")
        if config["test_min_depth"] > config["test_max_depth"]:
            raise ValueError(f"test_min_depth must be <= test_max_depth, got {config['test_min_depth']} > "
                             f"{config['test_max_depth']}")
        list_p = config["list_p"]
        if isinstance(list_p, bool) or not isinstance(list_p, (int, float)) or not 0 <= list_p < 1:
            raise ValueError(f"list_p must be a number in [0, 1), got {list_p!r}")
        if config["binarize"] not in ("left", "right"):
            raise ValueError(f"binarize must be 'left' or 'right', got {config['binarize']!r}")
        weight = config["node_loss_weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(f"node_loss_weight must be a number >= 0 (0: the root's loss alone), got {weight!r}")

    # Data.

    def examples(self, config):
        """{split: list of `listops.Example`} (module docstring): the test split drawn first, no expression in two
        splits."""
        common = {"max_args": config["max_args"], "list_p": config["list_p"]}
        options = {
            "test": dict(common, min_depth=config["test_min_depth"], max_depth=config["test_max_depth"],
                         max_length=config["test_max_length"]),
            "validation": dict(common, max_depth=config["max_depth"], max_length=config["max_length"]),
            "train": dict(common, max_depth=config["max_depth"], max_length=config["max_length"]),
        }
        taken, result = set(), {}
        for split in ("test", "validation", "train"):
            rng = np.random.default_rng([config["seed"], SPLITS.index(split)])
            size, drawn, own = config[f"{split}_size"], [], set()
            for _ in range(20 * size + 100):
                if len(drawn) == size:
                    break
                example = listops_data.generate(rng, **options[split])
                if example.expression not in taken:
                    drawn.append(example)
                    own.add(example.expression)
            if len(drawn) < size:
                raise ValueError(f"could not draw {size} {split} expressions that no other split holds; lower "
                                 f"{split}_size or widen the depth and length limits")
            taken |= own
            result[split] = drawn
        return {split: result[split] for split in SPLITS}

    def tree_splits(self, config):
        examples = self.examples(config)
        if not self.is_tree_model(config):
            return _SequenceData(examples)
        if self.composition(config) in BINARY_COMPOSITIONS:
            shaped = {split: [trees.binarize(e.tree, how=config["binarize"]) for e in items]
                      for split, items in examples.items()}
            arity = 2
        else:
            shaped = {split: [e.tree for e in items] for split, items in examples.items()}
            arity = config["max_args"] + 1
        return TreeData(shaped, TOKEN_IDS, NUM_VALUES, arity, config["max_height"])

    def split_data(self, config):
        if self.is_tree_model(config):
            return super().split_data(config)
        return self.data(config).splits

    def steps_per_epoch(self, config, global_batch_size):
        if self.is_tree_model(config):
            return super().steps_per_epoch(config, global_batch_size)
        return super(TreeTask, self).steps_per_epoch(config, global_batch_size)

    def dataset(self, config, split, batch_size, *, input_context=None, skip_batches=0, pad_to_multiple=None):
        if self.is_tree_model(config):
            return super().dataset(config, split, batch_size, input_context=input_context,
                                   skip_batches=skip_batches, pad_to_multiple=pad_to_multiple)
        inputs, values = self.split_data(config)[split]
        training = split == "train"
        return batching.sequence_dataset(
            inputs, values, batch_size, input_context=input_context, shuffle_seed=config["seed"] if training else None,
            skip_batches=skip_batches, pad_to_multiple=None if training else pad_to_multiple,
            sort_window=config["sort_window"])

    # Model, loss, metrics.

    def build_model(self, config):
        if self.is_tree_model(config):
            return super().build_model(config)
        return zoo.models.get(config["model"], **{**config["model_options"], "output_units": NUM_VALUES})

    def loss(self, config, targets, predictions):
        if not self.is_tree_model(config):
            return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(targets, tf.int32),
                                                                  logits=tf.cast(predictions, tf.float32))
        labels, roots = targets
        losses, mask = self.node_losses(labels, predictions)
        root = tf.gather(losses, tf.cast(roots, tf.int32), batch_dims=1)
        if not config["node_loss_weight"]:
            return root
        nodes = tf.reduce_sum(losses, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return root + float(config["node_loss_weight"]) * nodes

    def metrics(self, config, targets, predictions):
        if self.is_tree_model(config):
            return super().metrics(config, targets, predictions)
        best = tf.argmax(predictions, axis=-1, output_type=tf.int32)
        correct = tf.cast(tf.equal(best, tf.cast(targets, tf.int32)), tf.float32)
        return {"root_correct": correct, "root_labelled": tf.ones_like(correct)}

    def model_head(self, config):
        if self.is_tree_model(config):
            return super().model_head(config)
        return {"output_units": NUM_VALUES}

    def chance_levels(self, config):
        values = [e.value for e in self.examples(config)["train"]]
        majority = max(set(values), key=values.count)
        return {"root_accuracy": float(np.mean([e.value == majority for e in self.examples(config)["test"]]))}

    # Serving.

    def serving_module(self, config, model):
        if self.is_tree_model(config):
            return ListOpsServing(self, config, model)
        return _SequenceServing(model)

    def warmup_inputs(self, config, count=2):
        """The first `count` test expressions (for a tree model, of those that fit the signature's `max_nodes`: none
        with a `serving_max_nodes` below every test tree, an empty request)."""
        examples = self.examples(config)["test"]
        if self.is_tree_model(config):
            data, limit = self.data(config), self.serving_max_nodes(config)
            examples = [e for e, item in zip(examples, data.encoded["test"]) if len(item["words"]) <= limit]
        return {"expression": tf.constant([e.expression for e in examples[:count]], tf.string)}


class _SequenceData:
    """The sequence baseline's data: `splits` {split: (list of one-hot [T, 15] float32 arrays, values [count])}."""

    def __init__(self, examples):
        eye = np.eye(len(listops_data.VOCABULARY), dtype="float32")
        index = {token: i for i, token in enumerate(listops_data.VOCABULARY)}
        self.splits = {
            split: ([eye[[index[token] for token in e.expression.split()]] for e in items],
                    np.array([e.value for e in items], np.int32))
            for split, items in examples.items()
        }


class ListOpsServing(TreeServing):
    """The signature of an exported ListOps tree model: the expression is parsed in the graph
    (`trees_in_graph.parse_listops`, binarised as in training), composed by the model, and read out at every node.

    serving_default(expression: string [batch]) -> with N the signature's `max_nodes` (the config's
        `serving_max_nodes`; None: `trees.bucket` of the data's largest tree):
        value: int32 [batch], the expression's value as the model computes it (the argmax at the root);
        probabilities: float32 [batch, 10], the root's softmax over the values 0..9;
        node_values: int32 [batch, N], the model's value (argmax) at every node that has one, lists and digits, in
            post-order (the root is node `nodes - 1`); -1 at the operator leaves, at the inner nodes of a binarised
            list (they hold part of a list, which has no value of its own) and on padding;
        starts, ends: int32 [batch, N], the first and last token (0-based, tokens split at white space) of each
            node's sub-expression: a digit or an operator its own token, a list from its operator to its "]"; -1 on
            padding;
        nodes: int32 [batch], the tree's real node count.

    A malformed expression (an unknown token, a list never closed or without arguments, text after the end), one of
    more nodes than N or with a list of more arguments than the model's trees hold (the n-ary `child_sum` preset:
    `max_args`), or a tree taller than the model's `max_height` fails the request with INVALID_ARGUMENT naming the
    problem and the limit.
    """

    def __init__(self, task, config, model):
        data = task.data(config)
        super().__init__(model, task.serving_max_nodes(config), data.max_children, data.max_height)
        self.binarize = config["binarize"] if task.composition(config) in BINARY_COMPOSITIONS else None
        tokens = [token for token in TOKEN_IDS if token != PAD]
        self.token_ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tokens, [TOKEN_IDS[token] for token in tokens], tf.string, tf.int64),
            default_value=tf.constant(-1, tf.int64))
        self.functions = {"serving_default": tf.function(self._evaluate, input_signature=[
            tf.TensorSpec([None], tf.string, name="expression")])}

    def parse(self, expression):
        """The batch format of the expressions' trees, as the model was trained on them, with `starts`/`ends`."""
        return trees_in_graph.parse_listops(expression, self.token_ids, self.max_nodes, self.max_children,
                                            binarize=self.binarize, spans=True)

    def _evaluate(self, expression):
        batch = self.parse(expression)
        outputs = self.read_out(batch)
        return {
            "value": outputs["root"],
            "probabilities": outputs["probabilities"],
            "node_values": tf.where(batch["labels"] >= 0, outputs["best"], -1),
            "starts": batch["starts"],
            "ends": batch["ends"],
            "nodes": outputs["nodes"],
        }


class _SequenceServing(tf.Module):
    """The signature of the `lstm` preset's export (the sequence baseline), which reads the flattened expression:

    serving_default(expression: string [batch]) -> value int32 [batch] (the argmax of the model's logits) and
        probabilities float32 [batch, 10].

    Every token is one-hot over `listops.VOCABULARY` as in training (padding steps all zero, masked). An expression
    without tokens, with a token outside the vocabulary, or whose brackets do not balance fails with
    INVALID_ARGUMENT; the list structure is not checked further (the model reads any token sequence)."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        vocabulary = list(listops_data.VOCABULARY)
        self.token_index = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(vocabulary, list(range(len(vocabulary))), tf.string, tf.int64),
            default_value=tf.constant(-1, tf.int64))
        self.functions = {"serving_default": tf.function(self._evaluate, input_signature=[
            tf.TensorSpec([None], tf.string, name="expression")])}

    def close(self):
        """Nothing to remove: the vocabulary is a constant of the graph."""

    def _evaluate(self, expression):
        tokens = tf.strings.split(expression)
        dense = tokens.to_tensor(default_value="")
        in_row = tf.sequence_mask(tokens.row_lengths(), tf.shape(dense)[1])
        index = tf.cast(self.token_index.lookup(dense), tf.int32)
        opens = tf.reduce_any(dense[..., None] == tf.constant(listops_data.OPERATORS), axis=-1)
        steps = tf.where(in_row, tf.cast(opens, tf.int32) - tf.cast(dense == listops_data.END, tf.int32), 0)
        depth = tf.cumsum(steps, axis=1)  # open lists after each token
        balanced = tf.reduce_all(depth >= 0, axis=1) & tf.equal(tf.reduce_sum(steps, axis=1), 0)
        checks = [
            tf.debugging.assert_positive(tokens.row_lengths(), message="expression: an expression without tokens; "
                                                                       "expected one like [MAX 2 9 ]"),
            tf.debugging.assert_equal(tf.reduce_all((index >= 0) | ~in_row), True, message=(
                "expression: an unknown token; expected tokens separated by white space, each one of "
                + " ".join(listops_data.VOCABULARY))),
            tf.debugging.assert_equal(tf.reduce_all(balanced), True, message=(
                "expression: unbalanced brackets; expected one ] closing each list, after its operator")),
        ]
        with tf.control_dependencies(checks):
            index = tf.identity(index)
        onehot = tf.one_hot(tf.where(in_row, index, -1), len(listops_data.VOCABULARY), dtype=tf.float32)
        logits = tf.cast(self.model(onehot, training=False), tf.float32)
        return {"value": tf.argmax(logits, axis=-1, output_type=tf.int32),
                "probabilities": tf.nn.softmax(logits, axis=-1)}
