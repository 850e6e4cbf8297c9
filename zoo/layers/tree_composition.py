"""TreeComposition: what the recursive networks' composition functions share (shapes, the children mask, weights).

A composition function maps the states of a node's children (and the node's own input x) to the node's state. The
zoo has three: `TreeRNNComposition` (Socher et al. 2011), `BinaryTreeLSTMComposition` (the N-ary Tree-LSTM) and
`ChildSumTreeLSTMComposition` (Tai, Socher & Manning 2015). `zoo.layers.TreeEncoder` applies one to every node of a
batch of trees, level by level.
"""

import keras
from keras import ops

from zoo import arguments


def children_mask_or_all(children_mask, children_h):
    """The children mask as a float 0/1 tensor [nodes, K, 1] in the states' dtype; `None` means every slot is a child.

    Args:
        children_mask: [nodes, K] bool (or 0/1 numbers), `True` where slot k holds a child; or `None`.
        children_h: [nodes, K, units], the children's states (for the shape and dtype).

    Returns:
        [nodes, K, 1] float, ready to multiply a [nodes, K, units] state.
    """
    if children_mask is None:
        return ops.ones_like(children_h[..., :1])
    return ops.expand_dims(ops.cast(ops.cast(children_mask, "bool"), children_h.dtype), -1)


def forget_bias_ones(units, bias_initializer, forget_index=1, gates=4):
    """An initializer of a [gates * units] bias that starts the forget gate's block at 1 and the others with
    `bias_initializer` (Jozefowicz et al. 2015: the cell remembers by default)."""

    def initializer(shape, dtype=None):
        blocks = [bias_initializer((units,), dtype=dtype) for _ in range(gates)]
        blocks[forget_index] = keras.initializers.Ones()((units,), dtype=dtype)
        return ops.concatenate(blocks)

    return initializer


class TreeComposition(keras.layers.Layer):
    """Base of the zoo's tree composition functions: children's states and the node's input -> the node's state.

    A subclass lists its states in `state_size` (like a Keras cell: `[units]` for h, `[units, units]` for h and c),
    creates its weights in `build_weights(input_dim, arity)`, computes the terms in x alone in `project_inputs` and the
    new states in `compose_states`. The call is `compose(project_inputs(inputs), children_states, children_mask)`,
    in two steps so that `zoo.layers.TreeEncoder` projects each node's x once for all levels. The base class
    checks the shapes, zeroes the states of absent children before `compose` sees them (so whatever sits in an absent
    child's slot never changes a result) and serializes the arguments it owns.

    Args:
        units: positive int, the size of each state.
        recurrent_initializer: initializer of the weights that multiply the children's states (default
            `"orthogonal"`).
        bias_initializer: initializer of the bias (default `"zeros"`).

    Call arguments:
        inputs: [nodes, input_dim], x of each node (a leaf's word vector; zeros where a node has no input).
        children_states: a list with one [nodes, K, units] tensor per state of `state_size` (h_k, and c_k for the
            LSTMs): the states of each node's children, slot k holding the k-th child from the left.
        children_mask: optional [nodes, K] bool (or 0/1 numbers), `True` where slot k holds a child; `None` means
            every slot does. A leaf has no child.

    Returns:
        the list of the nodes' new states, one [nodes, units] tensor per entry of `state_size` (h first).
    """

    # Whether the composition reads x at internal nodes (the Tree-LSTMs do; the Tree-RNN reads x at leaves only).
    reads_internal_inputs = True

    def __init__(self, units, recurrent_initializer="orthogonal", bias_initializer="zeros", **kwargs):
        super().__init__(**kwargs)
        self.units = arguments.positive_int("units", units)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = [self.units]

    def build(self, inputs_shape, children_states_shape, children_mask_shape=None):
        name = type(self).__name__
        inputs_shape = tuple(inputs_shape)
        if len(inputs_shape) != 2 or inputs_shape[-1] is None:
            raise ValueError(
                f"{name} expects inputs of shape (nodes, input_dim) with a known input_dim, got shape {inputs_shape}"
            )
        if not isinstance(children_states_shape, (list, tuple)) or len(children_states_shape) != len(
            self.state_size
        ) or not all(isinstance(s, (list, tuple)) for s in children_states_shape):
            raise ValueError(
                f"{name} expects children_states as a list of {len(self.state_size)} tensor(s) of shape "
                f"(nodes, K, units), one per state of state_size={self.state_size}, got {children_states_shape!r}"
            )
        arity = None
        for index, shape in enumerate(children_states_shape):
            shape = tuple(shape)
            if len(shape) != 3 or shape[1] is None or shape[2] != self.units:
                raise ValueError(
                    f"{name} expects children_states[{index}] of shape (nodes, K, units={self.units}) with a known "
                    f"number of child slots K, got shape {shape}"
                )
            if arity is not None and shape[1] != arity:
                raise ValueError(f"{name} expects every children state to have the same K, got shapes "
                                 f"{[tuple(s) for s in children_states_shape]}")
            arity = shape[1]
        if children_mask_shape is not None and (len(children_mask_shape) != 2 or children_mask_shape[1] not in (
                None, arity)):
            raise ValueError(
                f"{name} expects a children_mask of shape (nodes, K={arity}), got shape {tuple(children_mask_shape)}"
            )
        self.input_dim, self.arity = int(inputs_shape[-1]), int(arity)
        self.build_weights(self.input_dim, self.arity)

    def build_weights(self, input_dim, arity):
        raise NotImplementedError(f"{type(self).__name__} must create its weights in build_weights")

    def call(self, inputs, children_states, children_mask=None):
        return self.compose(self.project_inputs(inputs), children_states, children_mask)

    def project_inputs(self, inputs):
        """What the composition computes from x alone, [nodes, ...]: it does not change from one level of a tree to the
        next, so `zoo.layers.TreeEncoder` computes it once per node, not once per level (as an attention mechanism
        computes its keys once per source). x itself by default."""
        return inputs

    def compose(self, projected_inputs, children_states, children_mask=None):
        """The nodes' new states from `project_inputs(inputs)` and their children's states and mask (the call's
        arguments): the call without the input projection. Absent children's states are zeroed here."""
        children_states = list(children_states)
        mask = children_mask_or_all(children_mask, children_states[0])
        # `where`, not a product: an absent slot holding inf or NaN must not leak into the result.
        zeroed = [ops.where(mask > 0, s, ops.zeros_like(s)) for s in children_states]
        return self.compose_states(projected_inputs, zeroed, mask)

    def compose_states(self, projected_inputs, children_states, mask):
        """The subclass's equations: the nodes' new states from `project_inputs(inputs)`, their children's states
        (each [nodes, K, units], zero at absent children) and the children mask [nodes, K, 1] (float 0/1); a list of
        [nodes, units] tensors."""
        raise NotImplementedError(f"{type(self).__name__} must compute its states in compose_states")

    def compute_output_shape(self, inputs_shape, children_states_shape, children_mask_shape=None):
        return [(inputs_shape[0], size) for size in self.state_size]

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "recurrent_initializer": keras.initializers.serialize(self.recurrent_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
        }


class TreeLSTMComposition(TreeComposition):
    """Base of the two Tree-LSTM compositions: the states are (h, c), x enters through `kernel`, and the gates'
    blocks sit side by side in the order i, f, u, o (Keras's LSTM order i, f, c, o, with u the candidate).

    Args:
        units: positive int, the size of h and c.
        activation: the candidate's and the memory's non-linearity (default `"tanh"`).
        recurrent_activation: the gates' non-linearity (default `"sigmoid"`).
        unit_forget_bias: start the forget gate's bias at 1 (default `True`).
        kernel_initializer: initializer of `kernel`, the weights on x (default `"glorot_uniform"`).
        recurrent_initializer, bias_initializer: as in `TreeComposition`.
    """

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", unit_forget_bias=True,
                 kernel_initializer="glorot_uniform", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = arguments.activation("activation", activation)
        self.recurrent_activation = arguments.activation("recurrent_activation", recurrent_activation)
        self.unit_forget_bias = arguments.boolean("unit_forget_bias", unit_forget_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.state_size = [self.units, self.units]

    def project_inputs(self, inputs):
        """x W + b, [nodes, 4 * units]: the gates' terms in x, in the order i, f, u, o."""
        return ops.matmul(inputs, self.kernel) + self.bias

    def build_input_weights(self, input_dim):
        """`kernel` [input_dim, 4 * units] and `bias` [4 * units], the gates' terms in x (order i, f, u, o)."""
        self.kernel = self.add_weight(
            shape=(input_dim, 4 * self.units), name="kernel", initializer=self.kernel_initializer
        )
        bias_initializer = (
            forget_bias_ones(self.units, self.bias_initializer) if self.unit_forget_bias else self.bias_initializer
        )
        self.bias = self.add_weight(shape=(4 * self.units,), name="bias", initializer=bias_initializer)

    def get_config(self):
        return {
            **super().get_config(),
            "activation": keras.activations.serialize(self.activation),
            "recurrent_activation": keras.activations.serialize(self.recurrent_activation),
            "unit_forget_bias": self.unit_forget_bias,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
        }
