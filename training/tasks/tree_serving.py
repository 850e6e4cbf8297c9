"""TreeServing: what the tree tasks' exports share (`listops`, `sentiment_trees`): a batch of trees parsed in the graph
(`training.data.trees_in_graph`) checked against the model's height limit, composed by the model, and read out at
the root and at every node.

Every output has the batch dimension first and a shape that does not depend on the other rows of the request (the
node axis is the signature's static `max_nodes`), so a server can batch requests; padding rows and padding nodes
never change a result.
"""

import tensorflow as tf

from zoo.models.tree.tree_model import INPUT_KEYS


class TreeServing(tf.Module):
    """The shared half of a tree task's serving module: a subclass parses its strings into the batch format (with the
    spans `starts`/`ends`), then calls `read_out`, and keeps its signatures in `functions`.

    Args:
        model: the task's `TreeModel`.
        max_nodes: N, the static node count of the parsed batch: a request with more nodes fails (the parser says
            so).
        max_children: K, the child slots of the model's trees (2 for binary trees).
        max_height: the model's `max_height`: it composes `max_height + 1` levels, so a taller tree would never
            reach its root; such a request fails with INVALID_ARGUMENT naming the tree's height and the limit.
    """

    def __init__(self, model, max_nodes, max_children, max_height):
        super().__init__()
        self.model = model
        self.max_nodes = int(max_nodes)
        self.max_children = int(max_children)
        self.max_height = int(max_height)

    def close(self):
        """Removes what the module wrote for the save (nothing here); the export calls it after saving."""

    def checked_heights(self, batch):
        """`batch["heights"]` [B, N], depending on the assertion that every tree's height (its root's) is at most
        `max_height` (module docstring): an InvalidArgumentError naming the first row too tall, its height and the
        limit."""
        heights = batch["heights"]
        tallest = tf.reduce_max(tf.concat([heights, tf.zeros([tf.shape(heights)[0], 1], heights.dtype)], 1), axis=1)
        too_tall = tallest > self.max_height
        limit = (f", more than max_height={self.max_height} (the model composes {self.max_height + 1} levels, leaves "
                 f"included, and would never reach its root); expected a tree of height at most {self.max_height}")

        def message():  # built only when a row is too tall (so never on an empty batch)
            row = tf.argmax(tf.cast(too_tall, tf.int32), output_type=tf.int32)
            return tf.strings.join([
                "tree too tall: row ", tf.strings.as_string(row), " has height ", tf.strings.as_string(tallest[row]),
                limit])

        assertion = tf.debugging.Assert(~tf.reduce_any(too_tall),
                                        [tf.cond(tf.reduce_any(too_tall), message, lambda: tf.constant(""))])
        with tf.control_dependencies([assertion]):
            return tf.identity(heights)

    def read_out(self, batch):
        """The model on a parsed batch: {"logits" float32 [B, N, C], "probabilities" float32 [B, C] (the root's
        softmax), "root" int32 [B] (the root's argmax), "best" int32 [B, N] (every node's argmax, -1 on padding),
        "nodes" int32 [B]}."""
        inputs = {key: batch[key] for key in INPUT_KEYS}
        inputs["heights"] = self.checked_heights(batch)
        logits = tf.cast(self.model(inputs, training=False), tf.float32)
        roots = batch["roots"]
        root_logits = tf.gather(logits, roots, batch_dims=1)
        best = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "logits": logits,
            "probabilities": tf.nn.softmax(root_logits, axis=-1),
            "root": tf.argmax(root_logits, axis=-1, output_type=tf.int32),
            "best": tf.where(batch["heights"] >= 0, best, -1),
            "nodes": roots + 1,
        }
