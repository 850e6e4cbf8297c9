"""AttentionMechanism: what the Bahdanau and Luong mechanisms share (memory projection, masking, context)."""

import keras

from zoo.layers import attention_functions


class AttentionMechanism(keras.layers.Layer):
    """Base of the zoo's attention mechanisms: scores a query against a memory, returns (context, alignment).

    A subclass supplies its weights and the size of its keys (`build_weights` sets `key_size`), the keys it
    pre-computes from the memory (`project_memory`) and its score (`score`). The keys are computed once per source
    sequence, not once per decoder step:
    `keys = mechanism.project_memory(memory)` once, then `mechanism.attend(query, keys, memory, memory_mask)` at
    each step (the `AttentionWrapperCell` carries the keys in its state).

    Call arguments:
        query: [batch, query_dim], the decoder state h_t.
        memory: [batch, S, memory_dim], the encoder states h̄_s.
        memory_mask: optional [batch, S] bool (or 0/1 floats), `True` at valid source positions
            (`zoo.layers.sequence_mask(lengths, S)` builds it from source lengths); `None` means all valid.
        keys: optional [batch, S, key_dim], `project_memory(memory)` computed beforehand.

    Returns:
        (context c_t [batch, memory_dim], alignment α_t [batch, S]); masked positions get weight 0, and a row with no
        valid position gets a zero alignment and a zero context.
    """

    def __init__(self, kernel_initializer="glorot_uniform", kernel_regularizer=None, kernel_constraint=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.kernel_constraint = keras.constraints.get(kernel_constraint)

    def _add_kernel(self, shape, name):
        """A weight with the mechanism's kernel initializer, regularizer and constraint."""
        return self.add_weight(
            shape=shape, name=name, initializer=self.kernel_initializer, regularizer=self.kernel_regularizer,
            constraint=self.kernel_constraint,
        )

    def build(self, query_shape, memory_shape):
        query_shape, memory_shape = tuple(query_shape), tuple(memory_shape)
        name = type(self).__name__
        if len(query_shape) != 2 or query_shape[-1] is None:
            raise ValueError(
                f"{name} expects a query of shape (batch, query_dim) with a known query_dim, got shape {query_shape}"
            )
        if len(memory_shape) != 3 or memory_shape[-1] is None:
            raise ValueError(
                f"{name} expects a memory of shape (batch, source_time, memory_dim) with a known memory_dim, "
                f"got shape {memory_shape}"
            )
        self.query_dim, self.memory_dim = int(query_shape[-1]), int(memory_shape[-1])
        self.build_weights(self.query_dim, self.memory_dim)

    def build_weights(self, query_dim, memory_dim):
        raise NotImplementedError(f"{type(self).__name__} must create its weights and set key_size in build_weights")

    def project_memory(self, memory):
        """The keys k_s of every source position, [batch, S, key_dim], from the memory [batch, S, memory_dim]."""
        raise NotImplementedError(f"{type(self).__name__} must define project_memory")

    def score(self, query, keys):
        """The scores e_t [batch, S] of the query [batch, query_dim] against the keys [batch, S, key_dim]; or, for
        the queries of T steps at once [batch, T, query_dim], the scores [batch, T, S]."""
        raise NotImplementedError(f"{type(self).__name__} must define score")

    def attend(self, query, keys, memory, memory_mask=None):
        """One attention read from pre-computed keys: (context [batch, memory_dim], alignment [batch, S]); or the
        reads of T steps at once, for queries [batch, T, query_dim]: (contexts [batch, T, memory_dim], alignments
        [batch, T, S]), each step's equal to its own read."""
        alignment = attention_functions.masked_softmax(self.score(query, keys), memory_mask)
        return attention_functions.context_vector(alignment, memory), alignment

    def call(self, query, memory, memory_mask=None, keys=None):
        if keys is None:
            keys = self.project_memory(memory)
        return self.attend(query, keys, memory, memory_mask)

    def compute_output_shape(self, query_shape, memory_shape, memory_mask_shape=None, keys_shape=None):
        return (query_shape[0], memory_shape[-1]), (query_shape[0], memory_shape[1])

    def get_config(self):
        return {
            **super().get_config(),
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
        }
