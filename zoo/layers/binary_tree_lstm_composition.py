"""BinaryTreeLSTMComposition: the N-ary Tree-LSTM's composition, a forget gate per child and weights per child
position (Tai, Socher & Manning 2015, "Improved semantic representations from tree-structured long short-term memory
networks", §3.2, equations 9-14)."""

import keras
from keras import ops

from zoo.layers.tree_composition import TreeLSTMComposition


def nary_tree_lstm_step(z_x, children_h, children_c, recurrent_kernel, activation, recurrent_activation):
    """One N-ary Tree-LSTM composition.

    Args:
        z_x: [nodes, 4 * units], x W + b: the gates' terms in the nodes' inputs x, in the order i, f, u, o (x W^(i) +
            b^(i), x W^(f) + b^(f), ...).
        children_h, children_c: [nodes, K, units], the children's states in slot order, zero at absent children.
        recurrent_kernel: [K * units, (K + 3) * units]: rows (l - 1) * units : l * units act on h_l (l = 1..K);
            columns in blocks i, f_1, ..., f_K, u, o, so the block at the rows of l and the columns of f_k is
            U^(f)_{kl}.
        activation: tanh.      recurrent_activation: sigmoid.

    Returns:
        (h [nodes, units], c [nodes, units]).
    """
    arity, units = children_h.shape[1], children_h.shape[2]
    z_i, z_f, z_u, z_o = ops.split(z_x, 4, axis=-1)
    recurrent = ops.split(ops.matmul(ops.reshape(children_h, (-1, arity * units)), recurrent_kernel), arity + 3,
                          axis=-1)
    r_i, r_f, r_u, r_o = recurrent[0], recurrent[1:arity + 1], recurrent[arity + 1], recurrent[arity + 2]
    i = recurrent_activation(z_i + r_i)
    u = activation(z_u + r_u)
    o = recurrent_activation(z_o + r_o)
    c = i * u
    for k in range(arity):
        c = c + recurrent_activation(z_f + r_f[k]) * children_c[:, k]
    return o * activation(c), c


@keras.saving.register_keras_serializable(package="zoo")
class BinaryTreeLSTMComposition(TreeLSTMComposition):
    """The N-ary (binary for K = 2) Tree-LSTM's composition: gates from the children's states, with separate weights
    for each child position, and one forget gate per child.

    Equations (Tai et al. 2015, eq. 9-14, N = K child slots; h_l, c_l the l-th child's states, 0 where absent; row
    vectors, so weights act on the right):

        i   = sigmoid(x W^(i) + Σ_l h_l U^(i)_l + b^(i))
        f_k = sigmoid(x W^(f) + Σ_l h_l U^(f)_{kl} + b^(f))        k = 1..K, one forget gate per child
        o   = sigmoid(x W^(o) + Σ_l h_l U^(o)_l + b^(o))
        u   = tanh(x W^(u) + Σ_l h_l U^(u)_l + b^(u))
        c   = i * u + Σ_k f_k * c_k
        h   = o * tanh(c)

        W^(i), W^(f), W^(u), W^(o): `kernel` [input_dim, 4 * units], blocks in the order i, f, u, o
        U: `recurrent_kernel` [K * units, (K + 3) * units]: rows (l - 1) * units : l * units act on h_l; column
            blocks i, f_1, ..., f_K, u, o. So U^(i)_l is `recurrent_kernel[(l-1)*units:l*units, :units]` and
            U^(f)_{kl} is `recurrent_kernel[(l-1)*units:l*units, k*units:(k+1)*units]` (the full N-ary form: every
            child's h reaches every child's forget gate)
        b^(i), b^(f), b^(u), b^(o): `bias` [4 * units] (b^(f) starts at 1 with `unit_forget_bias`)

    How x is given: a leaf reads its word vector x and has no children (all their terms are 0), so h = o * tanh(i *
    u) from x alone (the paper's equations at N children all absent); an internal node of a constituency tree has
    no word, x = 0, and is composed from its children alone (`zoo.layers.TreeEncoder` zeroes x at internal nodes
    unless told otherwise). A unary node sees zeros in its empty slot.

    Args:
        units: positive int, the size of h and c.
        The other arguments are those of the Tree-LSTM compositions: `activation` (`"tanh"`), `recurrent_activation`
        (`"sigmoid"`), `unit_forget_bias` (`True`), `kernel_initializer` (`"glorot_uniform"`),
        `recurrent_initializer` (`"orthogonal"`), `bias_initializer` (`"zeros"`).

    Call arguments:
        inputs: [nodes, input_dim], x.
        children_states: `[children_h, children_c]`, each [nodes, K, units]; K (static) fixes the weights' shapes.
        children_mask: optional [nodes, K] bool, `True` where slot k holds a child; `None` means every slot does.

    Returns:
        `[h, c]`, each [nodes, units].

    Masking: an absent child's h and c count as zeros whatever its slot holds.

    Example:
        ```python
        compose = zoo.layers.BinaryTreeLSTMComposition(8)
        h, c = compose(x, [children_h, children_c], children_mask=children >= 0)  # children_h [n, 2, 8]
        ```

    Reference: K. S. Tai, R. Socher, C. D. Manning, "Improved semantic representations from tree-structured long
    short-term memory networks", ACL 2015.
    """

    def build_weights(self, input_dim, arity):
        self.build_input_weights(input_dim)
        self.recurrent_kernel = self.add_weight(
            shape=(arity * self.units, (arity + 3) * self.units), name="recurrent_kernel",
            initializer=self.recurrent_initializer,
        )

    def compose_states(self, projected_inputs, children_states, mask):
        children_h, children_c = children_states
        return list(nary_tree_lstm_step(projected_inputs, children_h, children_c, self.recurrent_kernel,
                                        self.activation, self.recurrent_activation))
