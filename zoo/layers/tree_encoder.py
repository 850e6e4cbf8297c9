"""TreeEncoder: a recursive network over a batch of trees, composing every node of the same height across the batch at
once, level by level (topological batching; compare TensorFlow Fold's dynamic batching, Looks et al. 2017)."""

import keras
from keras import ops

from zoo import arguments
from zoo.layers.tree_composition import TreeComposition


def gather_children(states, children):
    """The states of every node's children: [batch, N, K, units] from states [batch, N, units] and the children's
    indices [batch, N, K] (already clipped to 0..N-1; the caller masks absent children)."""
    batch, nodes, arity = ops.shape(children)[0], ops.shape(children)[1], children.shape[2]
    offsets = ops.reshape(ops.arange(batch, dtype=children.dtype) * ops.cast(nodes, children.dtype), (-1, 1, 1))
    flat_states = ops.reshape(states, (-1, states.shape[-1]))
    gathered = ops.take(flat_states, ops.reshape(children + offsets, (-1,)), axis=0)
    return ops.reshape(gathered, (batch, nodes, arity, states.shape[-1]))


@keras.saving.register_keras_serializable(package="zoo")
class TreeEncoder(keras.layers.Layer):
    """Runs a tree composition over every node of a batch of trees, bottom-up, one height level at a time.

    Every tree of the batch is padded to N nodes; node n of tree b has the children `children[b, n]` (indices into the
    same tree, -1 for an empty slot) and the height `heights[b, n]` (0 for a leaf, 1 + its children's largest height
    for an internal node, -1 for padding). Level ℓ = 0, 1, ..., `max_height` in turn, the encoder gathers the states of
    every node's children, applies the composition to all B * N nodes at once, and keeps the result at the nodes of
    height ℓ: their children, all lower, are final by then. So a batch takes `max_height + 1` batched compositions in
    sequence, whatever its number of trees and nodes, instead of one composition per node; the loop is a static
    Python loop and every shape is static but the batch and node counts, so the encoder runs under
    `jit_compile=True` and exports to a SavedModel. The price of static shapes is arithmetic: each level composes all
    B * N node slots and keeps those of its height, (max_height + 1) * B * N compositions in all; the terms in x
    (`project_inputs`) are computed once per node, not per level.

    Inputs: x of a node is `inputs[b, n]` at a leaf; at internal nodes it is 0 (constituency trees, where only the
    words carry input: Tai et al.'s binary Tree-LSTM), unless `internal_inputs=True` (dependency trees, where every
    node is a word: the Child-Sum Tree-LSTM). Padding nodes read nothing. The encoder takes vectors, not word ids, so
    the model chooses the embedding (pretrained, frozen, or with its own learning rate).

    Args:
        composition: a `zoo.layers.TreeComposition` (`TreeRNNComposition`, `BinaryTreeLSTMComposition`,
            `ChildSumTreeLSTMComposition`), unbuilt or built; the encoder builds it for its inputs.
        max_height: non-negative int, the largest tree height the encoder composes: the number of levels is
            `max_height + 1`. A node higher than `max_height` (and every node above it) keeps zero states: the input
            pipeline pads heights to a bucket at most this.
        internal_inputs: whether internal nodes read their `inputs` row as x (default `False`: only leaves do).
        return_states: whether to return every state of the composition (`[h]` or `[h, c]`) rather than h alone
            (default `False`).

    Call arguments:
        inputs: [batch, N, input_dim] float, x of each node (e.g. embedded word ids; what sits at internal or padding
            nodes is ignored unless `internal_inputs`).
        children: [batch, N, K] int, each node's children's indices in slot order, -1 for an empty slot. An index
            outside 0..N-1 counts as an empty slot.
        heights: [batch, N] int, each node's height; -1 (any negative value) for padding.

    Returns:
        h [batch, N, units]: every node's state, zeros at padding nodes; with `return_states`, the list of every
        state of the composition, each [batch, N, units].

    Masking: padding nodes and empty child slots never change a real node's result, whatever their inputs hold. The
    heights say which nodes are real, so a Keras mask on `inputs` (e.g. from `Embedding(mask_zero=True)`, which would
    mask the internal nodes' id 0) is not used.

    Example:
        ```python
        encoder = zoo.layers.TreeEncoder(zoo.layers.BinaryTreeLSTMComposition(150), max_height=32)
        h = encoder(embedding(words), children, heights)  # [batch, N, 150]
        root_h = ops.take_along_axis(h, roots[:, None, None], axis=1)[:, 0]
        ```

    References: K. S. Tai, R. Socher, C. D. Manning, ACL 2015; M. Looks, M. Herreshoff, D. Hutchins, P. Norvig,
    "Deep learning with dynamic computation graphs", ICLR 2017.
    """

    def __init__(self, composition, max_height, internal_inputs=False, return_states=False, **kwargs):
        super().__init__(**kwargs)
        if isinstance(composition, dict):
            composition = keras.saving.deserialize_keras_object(composition)
        if not isinstance(composition, TreeComposition):
            raise ValueError(
                "composition must be a zoo.layers.TreeComposition such as TreeRNNComposition(units), "
                f"BinaryTreeLSTMComposition(units) or ChildSumTreeLSTMComposition(units), got {composition!r}"
            )
        if isinstance(max_height, bool) or not isinstance(max_height, int) or max_height < 0:
            raise ValueError(f"max_height must be a non-negative int, got {max_height!r}")
        self.composition = composition
        self.max_height = max_height
        self.internal_inputs = arguments.boolean("internal_inputs", internal_inputs)
        self.return_states = arguments.boolean("return_states", return_states)
        if self.internal_inputs and not composition.reads_internal_inputs:
            raise ValueError(
                f"internal_inputs=True needs a composition that reads x at internal nodes; "
                f"{type(composition).__name__} reads x at leaves only"
            )

    def build(self, inputs_shape, children_shape, heights_shape):
        inputs_shape, children_shape, heights_shape = tuple(inputs_shape), tuple(children_shape), tuple(heights_shape)
        if len(inputs_shape) != 3 or inputs_shape[-1] is None:
            raise ValueError(
                "TreeEncoder expects inputs of shape (batch, N, input_dim) with a known input_dim, got shape "
                f"{inputs_shape}"
            )
        if len(children_shape) != 3 or children_shape[-1] is None:
            raise ValueError(
                "TreeEncoder expects children of shape (batch, N, K) with a known number of child slots K, got shape "
                f"{children_shape}"
            )
        if len(heights_shape) != 2:
            raise ValueError(f"TreeEncoder expects heights of shape (batch, N), got shape {heights_shape}")
        for shape, what in ((children_shape, "children"), (heights_shape, "heights")):
            for axis, axis_name in ((0, "batch"), (1, "N")):
                if None not in (shape[axis], inputs_shape[axis]) and shape[axis] != inputs_shape[axis]:
                    raise ValueError(
                        f"TreeEncoder expects inputs, children and heights of the same {axis_name}, got inputs of "
                        f"shape {inputs_shape} and {what} of shape {shape}"
                    )
        units, arity = self.composition.units, children_shape[-1]
        if not self.composition.built:
            self.composition.build(
                (None, inputs_shape[-1]), [(None, arity, units)] * len(self.composition.state_size), (None, arity)
            )
        elif (self.composition.input_dim, self.composition.arity) != (inputs_shape[-1], arity):
            raise ValueError(
                f"TreeEncoder got a composition built for input_dim={self.composition.input_dim} and "
                f"K={self.composition.arity}, but inputs of shape {inputs_shape} and children of shape {children_shape}"
            )

    def call(self, inputs, children, heights):
        for tensor, what in ((children, "children"), (heights, "heights")):
            dtype = keras.backend.standardize_dtype(tensor.dtype)
            if "int" not in dtype:
                raise ValueError(f"TreeEncoder expects {what} as integers (node indices and heights), got dtype {dtype}")
        children, heights = ops.cast(children, "int32"), ops.cast(heights, "int32")
        nodes = ops.shape(inputs)[1]
        present = ops.logical_and(children >= 0, children < nodes)
        children = ops.where(present, children, ops.zeros_like(children))
        mask = ops.reshape(present, (-1, children.shape[-1]))
        reads = heights == 0
        if self.internal_inputs:
            reads = heights >= 0
        x = ops.where(ops.expand_dims(reads, -1), inputs, ops.zeros_like(inputs))
        projected = self.composition.project_inputs(ops.reshape(x, (-1, inputs.shape[-1])))  # once for all levels
        units = self.composition.units
        zeros = ops.zeros((ops.shape(inputs)[0], nodes, units), dtype=self.compute_dtype)
        states = [zeros for _ in self.composition.state_size]
        for level in range(self.max_height + 1):
            children_states = [
                ops.reshape(gather_children(s, children), (-1, children.shape[-1], units)) for s in states
            ]
            new_states = self.composition.compose(projected, children_states, children_mask=mask)
            at_level = ops.expand_dims(heights == level, -1)
            states = [
                ops.where(at_level, ops.reshape(new, ops.shape(old)), old) for new, old in zip(new_states, states)
            ]
        return states if self.return_states else states[0]

    def compute_output_shape(self, inputs_shape, children_shape, heights_shape):
        shape = (inputs_shape[0], inputs_shape[1], self.composition.units)
        return [shape] * len(self.composition.state_size) if self.return_states else shape

    def get_config(self):
        return {
            **super().get_config(),
            "composition": keras.saving.serialize_keras_object(self.composition),
            "max_height": self.max_height,
            "internal_inputs": self.internal_inputs,
            "return_states": self.return_states,
        }
