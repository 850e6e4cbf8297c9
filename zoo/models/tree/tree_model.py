"""TreeModel: a recursive network that classifies every node of a batch of trees (Socher et al. 2011, 2013; Tai,
Socher & Manning 2015), composed level by level by `zoo.layers.TreeEncoder`."""

import keras
from keras import ops

from zoo import arguments
from zoo.layers.binary_tree_lstm_composition import BinaryTreeLSTMComposition
from zoo.layers.child_sum_tree_lstm_composition import ChildSumTreeLSTMComposition
from zoo.layers.tree_encoder import TreeEncoder
from zoo.layers.tree_rnn_composition import TreeRNNComposition

COMPOSITIONS = {
    "tree_rnn": TreeRNNComposition,
    "binary_tree_lstm": BinaryTreeLSTMComposition,
    "child_sum_tree_lstm": ChildSumTreeLSTMComposition,
}
INPUT_KEYS = ("words", "children", "heights")


def root_rows(per_node, roots):
    """The rows of `per_node` [batch, N, ...] at each tree's root `roots` [batch]: [batch, ...]."""
    roots = ops.cast(roots, "int32")
    index = ops.reshape(roots, (-1,) + (1,) * (len(per_node.shape) - 1))
    return ops.take_along_axis(per_node, index, axis=1)[:, 0]


@keras.saving.register_keras_serializable(package="zoo")
class TreeModel(keras.Model):
    """Logits for every node of a batch of trees in the batch format of `training.data.trees`:

        e_n = E[words_n]                           E: `embedding/embeddings` [vocab_size, embedding_dim]
        h_n = composition(e_n, h of n's children)  (the encoder's composition: its own weights)
        z_n = dropout(h_n) W_y + b_y               W_y: `readout/kernel` [units, num_classes], b_y: `readout/bias`

    Every node gets logits, so a task can put its loss on every node (the sentiment treebank labels every phrase) or
    on the root alone (ListOps); the root's row is `roots[b]` (`root_rows`). Leaves read their word's vector;
    internal nodes read one only with `internal_inputs=True` (dependency trees, where every node is a word; the
    Tree-RNN reads none there), as `zoo.layers.TreeEncoder` describes.

    Args:
        vocab_size: positive int, number of word ids (id 0 is what internal and padding nodes hold).
        num_classes: positive int, the logits' size.
        composition: "tree_rnn" (Socher et al. 2011), "binary_tree_lstm" (the N-ary Tree-LSTM; N = K, the child
            slots of the inputs, 2 for binary trees) or "child_sum_tree_lstm" (any K) (default "binary_tree_lstm").
        units: positive int, the size of every node's state (default 150).
        embedding_dim: positive int, the size of a word vector, or None for `units` (default None). The Tree-RNN uses
            a leaf's word vector as its state (Socher et al. 2011), so with "tree_rnn" it must equal `units`.
        max_height: non-negative int, the tallest tree the model composes (the encoder's levels are
            `max_height + 1`); a node above it and every node over it keep zero states, so the input pipeline must
            reject or filter taller trees (default 32).
        internal_inputs: whether internal nodes read their word's vector (default `False`).
        dropout: rate in [0, 1) of the dropout on h before the read-out (default 0.0).
        composition_options: dict of further arguments for the composition (e.g. `{"activation": "relu"}`).

    Call arguments:
        inputs: a dict {"words": int [batch, N], "children": int [batch, N, K], "heights": int [batch, N]}; further
            keys (e.g. the batch's "labels" and "roots") are ignored.
        training: whether dropout is active.

    Returns [batch, N, num_classes] logits; rows of padding nodes hold b_y alone (h is zero there) and mean nothing.

    Example:
        ```python
        model = zoo.models.get("tree_lstm", vocab_size=20000, num_classes=5, max_height=64)
        batch = training.data.trees.encode_batch(trees, token_ids, max_nodes=64, max_children=2)
        logits = model(batch)                               # [batch, 64, 5]
        root_logits = root_rows(logits, batch["roots"])     # [batch, 5]
        ```

    References: R. Socher, C. C.-Y. Lin, A. Y. Ng, C. D. Manning, ICML 2011; K. S. Tai, R. Socher, C. D. Manning,
    ACL 2015.
    """

    def __init__(self, vocab_size, num_classes, composition="binary_tree_lstm", units=150, embedding_dim=None,
                 max_height=32, internal_inputs=False, dropout=0.0, composition_options=None, **kwargs):
        super().__init__(**kwargs)
        self.vocab_size = arguments.positive_int("vocab_size", vocab_size)
        self.num_classes = arguments.positive_int("num_classes", num_classes)
        self.composition = arguments.one_of("composition", composition, tuple(COMPOSITIONS))
        self.units = arguments.positive_int("units", units)
        self.embedding_dim = arguments.positive_int("embedding_dim", self.units if embedding_dim is None else
                                                    embedding_dim)
        if self.composition == "tree_rnn" and self.embedding_dim != self.units:
            raise ValueError(f"the tree_rnn composition uses a leaf's word vector as its state, so embedding_dim must "
                             f"equal units={self.units} (or be None), got embedding_dim={self.embedding_dim}")
        if isinstance(max_height, bool) or not isinstance(max_height, int) or max_height < 0:
            raise ValueError(f"max_height must be a non-negative int, got {max_height!r}")
        self.max_height = max_height
        self.internal_inputs = arguments.boolean("internal_inputs", internal_inputs)
        self.dropout = arguments.rate("dropout", dropout)
        self.composition_options = arguments.options("composition_options", composition_options)

        self.embedding = keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")
        composition_layer = COMPOSITIONS[self.composition](self.units, name=self.composition,
                                                           **self.composition_options)
        self.encoder = TreeEncoder(composition_layer, self.max_height, internal_inputs=self.internal_inputs,
                                   name="encoder")
        self.dropout_layer = keras.layers.Dropout(self.dropout, name="dropout")
        self.readout = keras.layers.Dense(self.num_classes, name="readout")

    def build(self, input_shape):
        if not isinstance(input_shape, dict) or "children" not in input_shape:
            got = sorted(input_shape) if isinstance(input_shape, dict) else input_shape
            raise ValueError(f"TreeModel takes a dict with the keys {list(INPUT_KEYS)} (the tree batch format of "
                             f"training.data.trees), got {got}")
        children_shape = input_shape["children"]
        arity = children_shape[-1]
        if arity is None:
            raise ValueError(f"TreeModel needs the number of child slots K (children's last axis) to be known, got "
                             f"children of shape {tuple(children_shape)}")
        self.embedding.build((None, None))
        self.encoder.build((None, None, self.embedding_dim), (None, None, arity), (None, None))
        self.readout.build((None, None, self.units))

    def call(self, inputs, training=False):
        if not isinstance(inputs, dict) or any(key not in inputs for key in INPUT_KEYS):
            got = sorted(inputs) if isinstance(inputs, dict) else type(inputs).__name__
            raise ValueError(f"TreeModel takes a dict with the keys {list(INPUT_KEYS)} (the tree batch format of "
                             f"training.data.trees), got {got}")
        words = ops.cast(inputs["words"], "int32")
        # Cast like the token ids: Keras traces a subclassed model's default save signature with float inputs.
        children, heights = ops.cast(inputs["children"], "int32"), ops.cast(inputs["heights"], "int32")
        h = self.encoder(self.embedding(words), children, heights)
        return self.readout(self.dropout_layer(h, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "num_classes": self.num_classes,
            "composition": self.composition,
            "units": self.units,
            "embedding_dim": self.embedding_dim,
            "max_height": self.max_height,
            "internal_inputs": self.internal_inputs,
            "dropout": self.dropout,
            "composition_options": self.composition_options,
        }
