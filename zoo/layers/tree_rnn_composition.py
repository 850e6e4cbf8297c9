"""TreeRNNComposition: the recursive neural network's composition, p = tanh(W [c_1; c_2] + b) (Socher, Lin, Ng &
Manning 2011, "Parsing natural scenes and natural language with recursive neural networks")."""

import keras
from keras import ops

from zoo import arguments
from zoo.layers.tree_composition import TreeComposition


def tree_rnn_step(x, children_h, has_child, recurrent_kernel, bias, activation):
    """h = activation(W [h_1; ...; h_K] + b) at a node with a child, h = x at a leaf.

    Args:
        x: [nodes, units], the leaves' word vectors.
        children_h: [nodes, K, units], the children's states, zero at absent children.
        has_child: [nodes, 1] float, the node's number of children (> 0: not a leaf).
        recurrent_kernel: [K * units, units], W.      bias: [units], b.

    Returns:
        h [nodes, units].
    """
    concatenated = ops.reshape(children_h, (-1, children_h.shape[1] * children_h.shape[2]))
    parent = activation(ops.matmul(concatenated, recurrent_kernel) + bias)
    return ops.where(has_child > 0, parent, x)


@keras.saving.register_keras_serializable(package="zoo")
class TreeRNNComposition(TreeComposition):
    """The Tree-RNN's composition: a parent's vector is a non-linear map of its children's vectors, concatenated.

    Equations (Socher et al. 2011, §4; weights in brackets; row vectors, so W acts on the right):

        h = tanh([h_1; h_2; ...; h_K] W + b)    at an internal node, h_k the k-th child's state, 0 where absent
        h = x                                   at a leaf: its word vector is its state

        W: `recurrent_kernel` [K * units, units]     b: `bias` [units]

    K is the number of child slots (K = 2 for binary trees); a unary node (one child) sees zeros in the empty slot.
    The leaves' word vectors are the states themselves, as in the paper, so the inputs must have `units` features;
    x at internal nodes is not read (`reads_internal_inputs = False`).

    Args:
        units: positive int, the size of h (and of the word vectors).
        activation: the non-linearity (default `"tanh"`).
        recurrent_initializer, bias_initializer: as in `zoo.layers.TreeComposition` (defaults `"orthogonal"`,
            `"zeros"`).

    Call arguments:
        inputs: [nodes, units], x: the word vector of each leaf (ignored at internal nodes).
        children_states: `[children_h]`, [nodes, K, units].
        children_mask: optional [nodes, K] bool, `True` where slot k holds a child; `None` means every slot does.
            A node with no child is a leaf.

    Returns:
        `[h]`, h [nodes, units].

    Masking: an absent child counts as a zero vector whatever its slot holds; a node with no child returns x.

    Example:
        ```python
        compose = zoo.layers.TreeRNNComposition(8)
        [h] = compose(x, [children_h], children_mask=children >= 0)  # x [n, 8], children_h [n, 2, 8]
        ```

    Reference: R. Socher, C. C.-Y. Lin, A. Y. Ng, C. D. Manning, "Parsing natural scenes and natural language with
    recursive neural networks", ICML 2011.
    """

    reads_internal_inputs = False

    def __init__(self, units, activation="tanh", **kwargs):
        super().__init__(units, **kwargs)
        self.activation = arguments.activation("activation", activation)

    def build_weights(self, input_dim, arity):
        if input_dim != self.units:
            raise ValueError(
                f"TreeRNNComposition uses a leaf's word vector as its state, so inputs must have units={self.units} "
                f"features, got input_dim={input_dim}"
            )
        self.recurrent_kernel = self.add_weight(
            shape=(arity * self.units, self.units), name="recurrent_kernel", initializer=self.recurrent_initializer
        )
        self.bias = self.add_weight(shape=(self.units,), name="bias", initializer=self.bias_initializer)

    def compose_states(self, inputs, children_states, mask):
        has_child = ops.sum(mask, axis=1)
        return [tree_rnn_step(inputs, children_states[0], has_child, self.recurrent_kernel, self.bias,
                              self.activation)]

    def get_config(self):
        return {**super().get_config(), "activation": keras.activations.serialize(self.activation)}
