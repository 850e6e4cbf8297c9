"""BahdanauAttention: additive attention (Bahdanau, Cho & Bengio 2015), optionally weight-normalised."""

import math

import keras

from zoo import arguments
from zoo.layers import attention_functions
from zoo.layers.attention_mechanism import AttentionMechanism


@keras.saving.register_keras_serializable(package="zoo")
class BahdanauAttention(AttentionMechanism):
    """Additive attention: a one-hidden-layer network scores each source position against the query.

    Equations (row vectors; weights in brackets):

        k_s  = h̄_s W_k                                   keys, computed once per source sequence
        e_ts = vᵀ tanh(h_t W_q + k_s)                     score
        α_ts = softmax over the valid s of e_ts           alignment (0 at masked positions)
        c_t  = Σ_s α_ts h̄_s                              context

        W_q: `query_kernel` [query_dim, units]    W_k: `memory_kernel` [memory_dim, units]    v: `attention_v` [units]

    With `normalize=True` (weight normalisation, Salimans & Kingma 2016, as TensorFlow Addons' `normalize=True`) the
    score is e_ts = (g v / ‖v‖)ᵀ tanh(h_t W_q + k_s + b), with g: `attention_g` (scalar, starts at sqrt(1/units)) and
    b: `attention_b` [units] (starts at 0).

    Args:
        units: positive int, the size of the hidden layer (of W_q, W_k and v).
        normalize: whether v is weight-normalised (default `False`).
        kernel_initializer: initializer of W_q, W_k and v (default `"glorot_uniform"`).
        kernel_regularizer, kernel_constraint: optional, for W_q, W_k and v.

    Call arguments, returns, masking: see `zoo.layers.AttentionMechanism`.

    Example:
        ```python
        attention = zoo.layers.BahdanauAttention(16)
        keys = attention.project_memory(memory)              # once per source sequence
        context, alignment = attention(query, memory, memory_mask=mask, keys=keys)  # (B, M), (B, S)
        ```

    References: D. Bahdanau, K. Cho, Y. Bengio, "Neural machine translation by jointly learning to align and
    translate", ICLR 2015; T. Salimans, D. P. Kingma, "Weight normalization", NeurIPS 2016.
    """

    def __init__(
        self, units, normalize=False, kernel_initializer="glorot_uniform", kernel_regularizer=None,
        kernel_constraint=None, **kwargs,
    ):
        super().__init__(kernel_initializer, kernel_regularizer, kernel_constraint, **kwargs)
        self.units = arguments.positive_int("units", units)
        self.normalize = arguments.boolean("normalize", normalize)

    def build_weights(self, query_dim, memory_dim):
        self.key_size = self.units
        self.query_kernel = self._add_kernel((query_dim, self.units), "query_kernel")
        self.memory_kernel = self._add_kernel((memory_dim, self.units), "memory_kernel")
        self.attention_v = self._add_kernel((self.units,), "attention_v")
        self.attention_g = self.attention_b = None
        if self.normalize:
            self.attention_g = self.add_weight(
                shape=(), name="attention_g", initializer=keras.initializers.Constant(math.sqrt(1.0 / self.units))
            )
            self.attention_b = self.add_weight(shape=(self.units,), name="attention_b", initializer="zeros")

    def project_memory(self, memory):
        return keras.ops.matmul(memory, self.memory_kernel)

    def score(self, query, keys):
        v = self.attention_v
        if self.normalize:
            v = attention_functions.weight_normalized(v, self.attention_g)
        return attention_functions.additive_score(keras.ops.matmul(query, self.query_kernel), keys, v, self.attention_b)

    def get_config(self):
        return {
            **super().get_config(),
            "units": self.units,
            "normalize": self.normalize,
        }
