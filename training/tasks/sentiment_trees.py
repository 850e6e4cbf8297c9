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
"""

import os

import tensorflow as tf

from training.data import trees
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
