"""LuongAttention: the "dot", "general" and "concat" scores of Luong, Pham & Manning (2015), optionally scaled."""

import keras

from zoo import arguments
from zoo.layers import attention_functions
from zoo.layers.attention_mechanism import AttentionMechanism

SCORES = ("dot", "general", "concat")


@keras.saving.register_keras_serializable(package="zoo")
class LuongAttention(AttentionMechanism):
    """Multiplicative (global) attention with Luong et al.'s three scores.

    Equations (row vectors; weights in brackets; keys k_s computed once per source sequence):

        "dot":      k_s = h̄_s                    e_ts = h_t · k_s                       (query_dim == memory_dim)
        "general":  k_s = h̄_s W_a                e_ts = h_t · k_s  (= h_tᵀ W_a h̄_s)
        "concat":   k_s = h̄_s W_k                e_ts = vᵀ tanh(h_t W_q + k_s)          (= vᵀ tanh(W_a [h_t; h̄_s]))
        with `scale=True`: e_ts ← g e_ts
        α_ts = softmax over the valid s of e_ts;   c_t = Σ_s α_ts h̄_s

        W_a: `memory_kernel` [memory_dim, query_dim]           ("general")
        W_k: `memory_kernel` [memory_dim, units], W_q: `query_kernel` [query_dim, units], v: `attention_v` [units]
                                                                ("concat")
        g: `attention_g`, a scalar that starts at 1              (`scale=True`, as TensorFlow Addons' `scale=True`)

    Args:
        score: `"dot"`, `"general"` (default) or `"concat"`.
        units: positive int, the hidden size of the "concat" score (required there, unused otherwise; default `None`).
        scale: whether the score is multiplied by the learned scalar g (default `False`).
        kernel_initializer: initializer of the kernels and v (default `"glorot_uniform"`).
        kernel_regularizer, kernel_constraint: optional, for the kernels and v.

    Call arguments, returns, masking: see `zoo.layers.AttentionMechanism`.

    Example:
        ```python
        attention = zoo.layers.LuongAttention("general", scale=True)
        context, alignment = attention(query, memory, memory_mask=mask)  # (B, M), (B, S)
        ```

    Reference: M.-T. Luong, H. Pham, C. D. Manning, "Effective approaches to attention-based neural machine
    translation", EMNLP 2015.
    """

    def __init__(
        self, score="general", units=None, scale=False, kernel_initializer="glorot_uniform", kernel_regularizer=None,
        kernel_constraint=None, **kwargs,
    ):
        super().__init__(kernel_initializer, kernel_regularizer, kernel_constraint, **kwargs)
        self.score_function = arguments.one_of("score", score, SCORES)
        if score == "concat":
            self.units = arguments.positive_int("units (of the 'concat' score)", units)
        elif units is not None:
            raise ValueError(f"units is the hidden size of the 'concat' score only; got units={units!r} with "
                             f"score={score!r}; expected None")
        else:
            self.units = None
        self.scale = arguments.boolean("scale", scale)

    def build_weights(self, query_dim, memory_dim):
        self.memory_kernel = self.query_kernel = self.attention_v = self.attention_g = None
        if self.score_function == "dot" and query_dim != memory_dim:
            raise ValueError(
                f"LuongAttention's 'dot' score needs query_dim == memory_dim, got query_dim={query_dim} and "
                f"memory_dim={memory_dim}; use score='general' or 'concat' for different sizes"
            )
        self.key_size = {"dot": memory_dim, "general": query_dim, "concat": self.units}[self.score_function]
        if self.score_function == "general":
            self.memory_kernel = self._add_kernel((memory_dim, query_dim), "memory_kernel")
        elif self.score_function == "concat":
            self.query_kernel = self._add_kernel((query_dim, self.units), "query_kernel")
            self.memory_kernel = self._add_kernel((memory_dim, self.units), "memory_kernel")
            self.attention_v = self._add_kernel((self.units,), "attention_v")
        if self.scale:
            self.attention_g = self.add_weight(shape=(), name="attention_g", initializer="ones")

    def project_memory(self, memory):
        if self.memory_kernel is None:
            return memory
        return keras.ops.matmul(memory, self.memory_kernel)

    def score(self, query, keys):
        if self.score_function == "concat":
            scores = attention_functions.additive_score(
                keras.ops.matmul(query, self.query_kernel), keys, self.attention_v
            )
        else:
            scores = attention_functions.multiplicative_score(query, keys)
        if self.scale:
            scores = self.attention_g * scores
        return scores

    def get_config(self):
        return {
            **super().get_config(),
            "score": self.score_function,
            "units": self.units,
            "scale": self.scale,
        }
