"""TreeEncoder: a recursive network over a batch of trees, composing every node of the same height across the batch at
once, level by level (topological batching; compare TensorFlow Fold's dynamic batching, Looks et al. 2017)."""

import keras
from keras import ops

from zoo import arguments
from zoo.layers.tree_composition import TreeComposition


def level_width(batch, nodes, level):
    """The most nodes of height `level` a batch of `batch` trees of `nodes` node slots holds: B * (N // (level + 1)).

    Two nodes of the same height are never one above the other, so their subtrees are disjoint, and the subtree of a
    node of height ℓ holds at least ℓ + 1 nodes (a path down to a leaf): a tree of N nodes has at most N // (ℓ + 1)
    nodes of height ℓ. The bound holds for every tree (unary chains included) and depends on shapes only, so it is
    static under XLA; summed over the levels it is B * N * (1 + 1/2 + ... + 1/(L + 1)), about B * N * ln(L + 1),
    instead of B * N * (L + 1) for composing every node slot at every level.
    """
    width = batch * (nodes // (level + 1))
    # At least one place (the spare row), so a level no tree reaches still composes a non-empty batch.
    return max(width, 1) if isinstance(width, int) else ops.maximum(width, 1)


@keras.saving.register_keras_serializable(package="zoo")
class TreeEncoder(keras.layers.Layer):
    """Runs a tree composition over every node of a batch of trees, bottom-up, one height level at a time.

    Every tree of the batch is padded to N nodes; node n of tree b has the children `children[b, n]` (indices into the
    same tree, -1 for an empty slot) and the height `heights[b, n]` (0 for a leaf, 1 + its children's largest height
    for an internal node, -1 for padding). The encoder sorts the batch's nodes by height once; then, level ℓ = 0, 1,
    ..., `max_height` in turn, it takes the nodes of height ℓ from every tree (a slice of the sorted nodes), gathers
    their children's states, which are final since the children are lower, composes them all in one call, and
    scatters the new states back. So a batch takes `max_height + 1` batched compositions in sequence, whatever its
    number of trees and nodes, instead of one composition per node.

    Static shapes: the loop over levels is a static Python loop, and each level composes a fixed number of places,
    `level_width` = B * (N // (ℓ + 1)), the most nodes of height ℓ that B trees of N nodes can hold (unused places
    compose a spare row that nothing reads). Every shape follows from B, N and K, so the encoder runs under
    `jit_compile=True` and exports to a SavedModel with the batch and node counts left open. The price is arithmetic:
    about B * N * ln(max_height + 1) compositions in all, for at most B * N real nodes; the terms in x
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
        batch, nodes, arity = ops.shape(inputs)[0], ops.shape(inputs)[1], children.shape[-1]
        total = batch * nodes
        # Every node of the batch gets a flat index b * N + n; index `total` is a spare row that absent children and
        # the unused places of a level point at (its states are never read unmasked, never returned).
        present = ops.logical_and(children >= 0, children < nodes)
        offsets = ops.reshape(ops.arange(batch, dtype="int32") * nodes, (-1, 1, 1))
        flat_children = ops.reshape(ops.where(present, children + offsets, total), (-1, arity))
        flat_children = ops.concatenate([flat_children, ops.full((1, arity), total, "int32")], axis=0)
        flat_present = ops.concatenate([ops.reshape(present, (-1, arity)), ops.zeros((1, arity), "bool")], axis=0)
        reads = heights == 0
        if self.internal_inputs:
            reads = heights >= 0
        x = ops.where(ops.expand_dims(reads, -1), inputs, ops.zeros_like(inputs))
        x = ops.concatenate([ops.reshape(x, (-1, inputs.shape[-1])), ops.zeros((1, inputs.shape[-1]), x.dtype)], 0)
        projected = self.composition.project_inputs(x)  # once for all levels
        # The nodes sorted by height: each level's nodes sit side by side, from the number of lower nodes on (padding,
        # height -1, first); the tail of spare indices lets a level's slice run past the end.
        flat_heights = ops.reshape(heights, (-1,))
        # (total + 1 spare indices: a level's places run to start + level_width - 1 <= total + max(total, 1) - 1, and
        # an empty batch, total 0, still has its spare row to compose.)
        order = ops.concatenate([ops.cast(ops.argsort(flat_heights), "int32"), ops.full((total + 1,), total, "int32")],
                                0)
        units = self.composition.units
        states = [ops.zeros((total + 1, units), dtype=self.compute_dtype) for _ in self.composition.state_size]
        for level in range(self.max_height + 1):
            start = ops.sum(ops.cast(flat_heights < level, "int32"))
            count = ops.sum(ops.cast(flat_heights == level, "int32"))
            places = ops.arange(level_width(batch, nodes, level), dtype="int32")
            rows = ops.where(places < count, ops.take(order, start + places), total)  # this level's nodes, or spare
            kids = ops.take(flat_children, rows, axis=0)
            children_states = [
                ops.reshape(ops.take(s, ops.reshape(kids, (-1,)), axis=0), (-1, arity, units)) for s in states
            ]
            new_states = self.composition.compose(
                ops.take(projected, rows, axis=0), children_states, children_mask=ops.take(flat_present, rows, axis=0)
            )
            states = [ops.scatter_update(s, ops.expand_dims(rows, -1), new) for s, new in zip(states, new_states)]
        states = [ops.reshape(s[:-1], (batch, nodes, units)) for s in states]
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
