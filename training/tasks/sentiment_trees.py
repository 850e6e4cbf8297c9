"""Sentiment over parse trees: the Stanford Sentiment Treebank task (Socher et al. 2013) of Tai, Socher & Manning
(2015), a class for every phrase of a sentence's tree.

Data: `--data_dir=DIR` holding `train.txt`, `dev.txt` and `test.txt` (the training, validation and test splits), one
tree a line in the treebank's bracketed layout with a label 0..4 on every node (`training.data.trees.read_trees`:
"(3 (2 It) (4 (2 's) (3 fine)))"); a malformed tree is an error naming the file, line and column. The trees are
binarised right-branching where a node has more than two children (the treebank's are binary already); unary nodes
are kept (K = 2 holds them).

Labels (`training.data.trees.sentiment_labels`): preset `fine`, the five classes 0..4; preset `binary`, negative (0, 1)
-> 0 and positive (3, 4) -> 1, neutral nodes unlabelled (-1 in the batch: the loss and the metrics skip them), and
the sentences whose root is neutral left out of every split, as Tai et al. do (the treebank keeps 6,920 / 872 / 1,821
of 8,544 / 1,101 / 2,210 sentences).

Vocabulary: from the training split, `<pad>` 0 (what internal and padding nodes hold), `<unk>` 1 (a word only the
validation or test split holds), then every training word, sorted; words are taken as they are written (no
lower-casing).

Loss: the cross-entropy summed over the tree's labelled nodes (Tai et al.'s objective: every phrase's label; the
trainer divides by the batch size). Metrics: `root_accuracy` (the sentence's label: the task's accuracy) and
`node_accuracy` (every labelled phrase). The model is `model` (a TreeModel preset; default `tree_lstm`, the binary
Tree-LSTM of 150 units), with `model_options` replacing its arguments; the optimization is Tai et al.'s (AdaGrad,
learning rate 0.05, batches of 25, dropout 0.5 on the read-out's input), without their pretrained GloVe vectors:
the embedding is learned from scratch here.

Export (`SentimentServing`): an unlabelled bracketed parse in ("(It ('s fine))"), the sentence's class, its
probabilities and every phrase's class out; a second signature `labelled_tree` takes the treebank's labelled lines.
"""

import os
import tempfile

import tensorflow as tf

from training.data import trees
from training.data import trees_in_graph
from training.tasks.tree_serving import TreeServing
from training.tasks.tree_task import TreeData
from training.tasks.tree_task import TreeTask

PAD, UNK = "<pad>", "<unk>"
FILES = {"train": "train.txt", "validation": "dev.txt", "test": "test.txt"}

_COMMON = {
    "data_dir": None,
    "model": "tree_lstm",
    "model_options": {"dropout": 0.5},
    "max_height": None,
    "sort_window": 8,
    "buckets": None,
    "serving_max_nodes": None,
    "batch_size": 25,
    "epochs": 10,
    "optimizer": "adagrad",
    "learning_rate": 0.05,
    "clip_global_norm": None,
}

PRESETS = {
    "fine": {**_COMMON, "binary": False},
    "binary": {**_COMMON, "binary": True},
}


class SentimentTreesTask(TreeTask):
    name = "sentiment_trees"
    presets = PRESETS
    default_preset = "fine"

    def check_config(self, config):
        super().check_config(config)
        if not isinstance(config["binary"], bool):
            raise ValueError(f"binary must be true or false, got {config['binary']!r}")

    def tree_splits(self, config):
        if config["data_dir"] is None:
            raise ValueError("sentiment_trees reads the treebank from files: pass --data_dir=DIR, a directory holding "
                             "train.txt, dev.txt and test.txt (one bracketed tree a line, e.g. "
                             "'(3 (2 It) (4 (2 's) (3 fine)))')")
        missing = [name for name in FILES.values() if not os.path.isfile(os.path.join(config["data_dir"], name))]
        if missing:
            raise ValueError(f"data_dir {config['data_dir']!r} lacks {missing}; expected train.txt, dev.txt and "
                             "test.txt (the Stanford Sentiment Treebank layout)")
        split_trees = {}
        for split, name in FILES.items():
            labelled = [trees.sentiment_labels(tree, binary=config["binary"])
                        for tree in trees.read_trees(os.path.join(config["data_dir"], name))]
            if config["binary"]:
                labelled = [tree for tree in labelled if tree.label is not None]
            if not labelled:
                raise ValueError(f"{os.path.join(config['data_dir'], name)} holds no tree"
                                 + (" with a non-neutral root" if config["binary"] else "")
                                 + "; expected at least one")
            split_trees[split] = [trees.binarize(tree, how="right") for tree in labelled]
        words = sorted({word for tree in split_trees["train"] for word in trees.leaves(tree)} - {PAD, UNK})
        vocabulary = {PAD: 0, UNK: 1, **{word: index + 2 for index, word in enumerate(words)}}
        return TreeData(split_trees, vocabulary, 2 if config["binary"] else 5, 2, config["max_height"],
                        unknown_id=1)

    def loss(self, config, targets, predictions):
        labels, _ = targets
        losses, _ = self.node_losses(labels, predictions)
        return tf.reduce_sum(losses, axis=1)

    def serving_module(self, config, model):
        return SentimentServing(self, config, model)

    def warmup_inputs(self, config, count=2):
        """The first `count` test trees of more than one node that fit the signature's `max_nodes` (none: an empty
        request), written unlabelled."""
        data, limit = self.data(config), self.serving_max_nodes(config)
        fitting = [tree for tree, item in zip(data.trees["test"], data.encoded["test"])
                   if 1 < len(item["words"]) <= limit]
        return {"tree": tf.constant([unlabelled_text(tree) for tree in fitting[:count]], tf.string)}


def unlabelled_text(tree):
    """`tree` in the unlabelled layout that `serving_default` reads: its labels dropped, a leaf's word bare, e.g.
    "(It ('s fine))" for "(3 (2 It) (4 (2 's) (3 fine)))". A tree of one leaf, which has no unlabelled form (a bare
    word is no tree), is written "(word)": a node over the leaf."""
    done = {}
    for node in trees.postorder(tree):
        done[id(node)] = trees.Tree(None, node.word, tuple(done[id(child)] for child in node.children))
    if tree.is_leaf:
        return f"({tree.word})"
    return trees.format_tree(done[id(tree)])


class SentimentServing(TreeServing):
    """The signatures of an exported sentiment tree model: the tree is parsed in the graph
    (`trees_in_graph.parse_bracketed`), its words looked up in the training vocabulary, composed by the model, and
    read out at every node.

    serving_default(tree: string [batch]) -> with N the signature's `max_nodes` (the config's `serving_max_nodes`;
        None: `trees.bucket` of the data's largest tree) and C the classes (5, or 2 for the `binary` preset):
        label: int32 [batch], the sentence's class (the argmax at the root);
        probabilities: float32 [batch, C], the root's softmax;
        node_labels: int32 [batch, N], every node's class (argmax), in post-order (the root is node `nodes - 1`),
            -1 on padding;
        starts, ends: int32 [batch, N], the first and last word (0-based, counting the leaves left to right) under
            each node, -1 on padding;
        nodes: int32 [batch], the tree's real node count.
    The tree is an unlabelled parse, words bare: "(It ('s fine))" is the tree of the treebank's
    "(3 (2 It) (4 (2 's) (3 fine)))" (`unlabelled_text` writes one; a one-word sentence "(word)" is a node over its
    leaf, as the unlabelled layout has no bare word for a tree: the `labelled_tree` signature reads it exactly).

    labelled_tree(tree: string [batch]) -> the same outputs, from a line of the treebank's labelled layout
        ("(3 (2 It) (4 (2 's) (3 fine)))"); its labels are read and ignored.

    Words are taken as written (no lower-casing, as in training); a word the training vocabulary lacks is `<unk>`
    (id 1). Like the training trees (binarised right-branching, the treebank's are binary), a node may have one or
    two children. A malformed tree, one of more than N nodes or a node of more than two children, or a tree taller
    than the model's `max_height` fails the request with INVALID_ARGUMENT naming the problem and the limit.

    The vocabulary file that the table reads, and that saving copies under the SavedModel's assets/
    (`vocabulary.txt`), is written into a temporary directory of this module's own: `close()` removes it once the
    module has been saved.
    """

    def __init__(self, task, config, model):
        data = task.data(config)
        super().__init__(model, task.serving_max_nodes(config), data.max_children, data.max_height)
        ordered = sorted(data.vocabulary, key=data.vocabulary.get)
        if [data.vocabulary[word] for word in ordered] != list(range(len(ordered))):
            raise ValueError("the vocabulary's ids must be 0..size-1, one word each")
        self._scratch = tempfile.TemporaryDirectory(prefix="vocabulary-")
        path = os.path.join(self._scratch.name, "vocabulary.txt")
        with open(path, "w", encoding="utf-8", newline="\n") as file:
            file.write("".join(word + "\n" for word in ordered))
        self.token_ids = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                                          tf.lookup.TextFileIndex.LINE_NUMBER, vocab_size=len(ordered)),
            default_value=tf.constant(data.vocabulary[UNK], tf.int64))
        spec = [tf.TensorSpec([None], tf.string, name="tree")]
        self.functions = {
            "serving_default": tf.function(self._classify_unlabelled, input_signature=spec),
            "labelled_tree": tf.function(self._classify_labelled, input_signature=spec),
        }

    def close(self):
        """Removes the temporary vocabulary file. Call it after saving: the table cannot be rebuilt without it."""
        self._scratch.cleanup()

    def parse(self, tree, labelled=False):
        """The batch format of the trees, with `starts`/`ends`."""
        return trees_in_graph.parse_bracketed(tree, self.token_ids, self.max_nodes, self.max_children,
                                              labelled=labelled, spans=True)

    def _classify_unlabelled(self, tree):
        return self._classify(tree, labelled=False)

    def _classify_labelled(self, tree):
        return self._classify(tree, labelled=True)

    def _classify(self, tree, labelled):
        batch = self.parse(tree, labelled)
        outputs = self.read_out(batch)
        return {
            "label": outputs["root"],
            "probabilities": outputs["probabilities"],
            "node_labels": outputs["best"],
            "starts": batch["starts"],
            "ends": batch["ends"],
            "nodes": outputs["nodes"],
        }
