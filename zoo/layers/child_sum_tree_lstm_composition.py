"""ChildSumTreeLSTMComposition: the Child-Sum Tree-LSTM's composition, over any number of unordered children (Tai,
Socher & Manning 2015, "Improved semantic representations from tree-structured long short-term memory networks",
§3.1, equations 2-8)."""

import keras
from keras import ops

from zoo.layers.tree_composition import TreeLSTMComposition


def child_sum_tree_lstm_step(z_x, children_h, children_c, recurrent_kernel, activation, recurrent_activation):
    """One Child-Sum Tree-LSTM composition.

    Args:
        z_x: [nodes, 4 * units], x W + b: the gates' terms in the nodes' inputs x, in the order i, f, u, o.
        children_h, children_c: [nodes, K, units], the children's states, zero at absent children.
        recurrent_kernel: [units, 4 * units], U^(i), U^(f), U^(u), U^(o) side by side.
        activation: tanh.      recurrent_activation: sigmoid.

    Returns:
        (h [nodes, units], c [nodes, units]).
    """
    units = children_h.shape[2]
    z_i, z_f, z_u, z_o = ops.split(z_x, 4, axis=-1)
    u_i, u_f, u_u, u_o = ops.split(recurrent_kernel, 4, axis=-1)
    h_sum = ops.sum(children_h, axis=1)
    i = recurrent_activation(z_i + ops.matmul(h_sum, u_i))
    u = activation(z_u + ops.matmul(h_sum, u_u))
    o = recurrent_activation(z_o + ops.matmul(h_sum, u_o))
    # f_k from each child's own h_k; an absent child's c_k is 0, so its f_k multiplies nothing.
    f = recurrent_activation(ops.expand_dims(z_f, 1) + ops.reshape(
        ops.matmul(ops.reshape(children_h, (-1, units)), u_f), (-1, children_h.shape[1], units)))
    c = i * u + ops.sum(f * children_c, axis=1)
    return o * activation(c), c


@keras.saving.register_keras_serializable(package="zoo")
class ChildSumTreeLSTMComposition(TreeLSTMComposition):
    """The Child-Sum Tree-LSTM's composition: the gates see the sum of the children's states, and each child has its
    own forget gate, computed from its own state with shared weights, so the children's order does not matter.

    Equations (Tai et al. 2015, eq. 2-8; the sums run over the node's children; row vectors):

        h~  = Σ_k h_k
        i   = sigmoid(x W^(i) + h~ U^(i) + b^(i))
        f_k = sigmoid(x W^(f) + h_k U^(f) + b^(f))
        o   = sigmoid(x W^(o) + h~ U^(o) + b^(o))
        u   = tanh(x W^(u) + h~ U^(u) + b^(u))
        c   = i * u + Σ_k f_k * c_k
        h   = o * tanh(c)

        W^(i), W^(f), W^(u), W^(o): `kernel` [input_dim, 4 * units], blocks in the order i, f, u, o
        U^(i), U^(f), U^(u), U^(o): `recurrent_kernel` [units, 4 * units], same order
        b^(i), b^(f), b^(u), b^(o): `bias` [4 * units] (b^(f) starts at 1 with `unit_forget_bias`)

    The weights do not depend on K, the number of child slots: the same layer composes nodes of any arity, and
    permuting a node's children (with their mask) leaves its states unchanged. A leaf (no children) computes from x
    alone. In a dependency tree every node reads its word as x; in a constituency tree internal nodes read x = 0.

    Args:
        units: positive int, the size of h and c.
        The other arguments are those of the Tree-LSTM compositions: `activation` (`"tanh"`), `recurrent_activation`
        (`"sigmoid"`), `unit_forget_bias` (`True`), `kernel_initializer` (`"glorot_uniform"`),
        `recurrent_initializer` (`"orthogonal"`), `bias_initializer` (`"zeros"`).

    Call arguments:
        inputs: [nodes, input_dim], x.
        children_states: `[children_h, children_c]`, each [nodes, K, units].
        children_mask: optional [nodes, K] bool, `True` where slot k holds a child; `None` means every slot does.

    Returns:
        `[h, c]`, each [nodes, units].

    Masking: an absent child adds nothing to h~ nor to c, whatever its slot holds.

    Example:
        ```python
        compose = zoo.layers.ChildSumTreeLSTMComposition(8)
        h, c = compose(x, [children_h, children_c], children_mask=children >= 0)  # children_h [n, K, 8]
        ```

    Reference: K. S. Tai, R. Socher, C. D. Manning, "Improved semantic representations from tree-structured long
    short-term memory networks", ACL 2015.
    """

    def build_weights(self, input_dim, arity):
        self.build_input_weights(input_dim)
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, 4 * self.units), name="recurrent_kernel", initializer=self.recurrent_initializer
        )

    def compose_states(self, projected_inputs, children_states, mask):
        children_h, children_c = children_states
        return list(child_sum_tree_lstm_step(projected_inputs, children_h, children_c, self.recurrent_kernel,
                                             self.activation, self.recurrent_activation))
