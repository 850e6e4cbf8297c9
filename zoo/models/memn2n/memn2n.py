"""MemN2N: the End-to-End Memory Network of Sukhbaatar, Szlam, Weston & Fergus (2015), "End-To-End Memory Networks",
for question answering over a story (bAbI)."""

import numbers

import keras
from keras import ops

from zoo import arguments
from zoo.layers.memory_read import MemoryRead
from zoo.layers.sentence_encoding import ENCODINGS
from zoo.layers.sentence_encoding import SentenceEncoding
from zoo.layers.temporal_encoding import TemporalEncoding

TYINGS = ("adjacent", "layer_wise")


@keras.saving.register_keras_serializable(package="zoo")
class MemN2N(keras.Model):
    """K hops of attention over a story's sentences, then an answer word.

    Equations (the paper's notation, §2; weights in brackets; x_ij word j of sentence i, q the question):

        m_i = Σ_j l_j · A^k x_ij + T_A^k(i)          input memories of hop k
        c_i = Σ_j l_j · C^k x_ij + T_C^k(i)          output memories of hop k
        u^1 = Σ_j l_j · B q_j
        p^k = softmax((u^k)ᵀ m_i)                    over the slots that hold a sentence (no softmax in linear start);
                                                      with `empty_memories`, also over memory_size - n empty ones
        o^k = Σ_i p^k_i c_i
        u^{k+1} = u^k + o^k                           (H u^k + o^k with `hop_map`)
        â = softmax(W u^{K+1})                        the call returns the logits W u^{K+1}

    l_j is the position encoding (all ones for "bow", see `zoo.layers.SentenceEncoding`); T(i) the temporal encoding
    of the sentence's age i (0 = most recent; see `zoo.layers.TemporalEncoding`).

    Weight tying and the weights it creates (V = vocab_size, d = embedding_dim, M = memory_size, K = hops):
        "adjacent": A^{k+1} = C^k, B = A^1, W = (C^K)ᵀ: embeddings E_0..E_K, `embedding_k/embeddings` [V, d] with
            A^k = E_{k-1}, C^k = E_k; with `temporal_encoding`, `temporal_k/temporal` [M, d] tied the same way.
        "layer_wise": A^1 = ... = A^K, C^1 = ... = C^K: `memory_embedding`, `output_embedding`, `query_embedding`
            [V, d], `answer/kernel` [d, V] (W), and `temporal_a`, `temporal_c` [M, d].
        `hop_map` adds H: `hop_map/kernel` [d, d] (the paper uses it with layer-wise tying).

    Every weight starts N(0, 0.1) (the paper's `initializer_stddev`).

    Args:
        vocab_size: positive int, the words (id 0 is padding and never read).
        memory_size: positive int, the most sentences a story may hold (the rows of T; default 50, the paper's last 50
            sentences).
        embedding_dim: d, positive int (default 20).
        hops: K, positive int (default 3).
        tying: "adjacent" (default) or "layer_wise".
        encoding: "position" (default) or "bow".
        temporal_encoding: whether T_A, T_C are added (default `True`).
        hop_map: whether u^{k+1} = H u^k + o^k (default `False`).
        linear_start: the initial value of the linear-start switch (default `False`): while on, every softmax over the
            memory is removed. The switch is the non-trainable variable `linear_start_switch`; a training task turns
            it off with `set_linear_start(False)` when the validation loss stops falling (no retrace needed).
        initializer_stddev: the standard deviation of every weight's N(0, σ) initialiser (default 0.1).
        empty_memories: whether the memory's empty slots take part in each softmax (default `False`): a story of n
            sentences has memory_size - n empty memories, each with score 0 and output 0, as in the authors' code
            (MemN2N-babi-matlab: a memory of fixed size filled with the nil word, whose embedding is zero, and a
            softmax over all of it). Then p sums to less than 1 unless a sentence scores well above 0, so the read
            carries how well the best sentence matches: the bAbI yes/no task (QA6) is not learned without it, since
            the answer is linear in the reads and a softmax over the sentences alone always sums to 1.

    Call arguments:
        inputs: (story, query): story [batch, memory_size', sentence_length] int ids, memory_size' <= memory_size
            (0 = padding word; an all-padding sentence is an empty slot), query [batch, query_length] int ids.

    Returns the answer logits [batch, vocab_size]. `attention(inputs)` returns p [batch, hops, memory_size'], and
    `call_with_attention(inputs)` both.

    Masking: padding words, empty slots and trailing padding slots never change a result (with `empty_memories` the
    softmax counts memory_size - n empty memories, n the sentences, however the story is padded). Empty slots in the
    middle of a story count as time steps for the temporal encoding (the paper's random noise adds such "dummy"
    memories in training; that belongs to the data pipeline, which inserts all-padding sentences).

    Example:
        ```python
        model = zoo.models.get("memn2n_babi", vocab_size=40)
        logits = model((story, query))            # (batch, 40)
        p = model.attention((story, query))       # (batch, 3, memory_size)
        ```

    Reference: S. Sukhbaatar, A. Szlam, J. Weston, R. Fergus, "End-to-end memory networks", NeurIPS 2015.
    """

    def __init__(
        self,
        vocab_size,
        memory_size=50,
        embedding_dim=20,
        hops=3,
        tying="adjacent",
        encoding="position",
        temporal_encoding=True,
        hop_map=False,
        linear_start=False,
        initializer_stddev=0.1,
        empty_memories=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = arguments.positive_int("vocab_size", vocab_size)
        self.memory_size = arguments.positive_int("memory_size", memory_size)
        self.embedding_dim = arguments.positive_int("embedding_dim", embedding_dim)
        self.hops = arguments.positive_int("hops", hops)
        self.tying = arguments.one_of("tying", tying, TYINGS)
        self.encoding = arguments.one_of("encoding", encoding, ENCODINGS)
        self.temporal_encoding = arguments.boolean("temporal_encoding", temporal_encoding)
        self.hop_map = arguments.boolean("hop_map", hop_map)
        self.linear_start = arguments.boolean("linear_start", linear_start)
        self.empty_memories = arguments.boolean("empty_memories", empty_memories)
        if (
            isinstance(initializer_stddev, bool) or not isinstance(initializer_stddev, numbers.Real)
            or not initializer_stddev > 0
        ):
            raise ValueError(f"initializer_stddev must be a positive float, got {initializer_stddev!r}")
        self.initializer_stddev = float(initializer_stddev)

        def normal():
            return keras.initializers.RandomNormal(stddev=self.initializer_stddev)

        def embedding(name):
            return keras.layers.Embedding(
                self.vocab_size, self.embedding_dim, embeddings_initializer=normal(), name=name
            )

        def temporal(name):
            return TemporalEncoding(self.memory_size, embeddings_initializer=normal(), name=name)

        if self.tying == "adjacent":
            self.embeddings = [embedding(f"embedding_{k}") for k in range(self.hops + 1)]
            self.temporals = [temporal(f"temporal_{k}") for k in range(self.hops + 1)] if self.temporal_encoding else []
        else:
            self.memory_embedding = embedding("memory_embedding")
            self.output_embedding = embedding("output_embedding")
            self.query_embedding = embedding("query_embedding")
            self.answer = keras.layers.Dense(
                self.vocab_size, use_bias=False, kernel_initializer=normal(), name="answer"
            )
            if self.temporal_encoding:
                self.temporal_a = temporal("temporal_a")
                self.temporal_c = temporal("temporal_c")
        self.hop_map_layer = None
        if self.hop_map:
            self.hop_map_layer = keras.layers.Dense(
                self.embedding_dim, use_bias=False, kernel_initializer=normal(), name="hop_map"
            )
        self.sentence_encoding = SentenceEncoding(self.encoding, name="sentence_encoding")
        self.memory_read = MemoryRead(name="memory_read")

    def build(self, input_shape=None):
        d = self.embedding_dim
        memories = (None, self.memory_size, d)
        if self.tying == "adjacent":
            for layer in self.embeddings:
                layer.build((None,))
            for layer in self.temporals:
                layer.build(memories)
        else:
            for layer in (self.memory_embedding, self.output_embedding, self.query_embedding):
                layer.build((None,))
            self.answer.build((None, d))
            if self.temporal_encoding:
                self.temporal_a.build(memories)
                self.temporal_c.build(memories)
        if self.hop_map_layer is not None:
            self.hop_map_layer.build((None, d))
        self.linear_start_switch = self.add_weight(
            shape=(), name="linear_start_switch", trainable=False,
            initializer=keras.initializers.Constant(1.0 if self.linear_start else 0.0),
        )

    def set_linear_start(self, on):
        """Turns linear start on (softmaxes over the memory removed) or off (the paper's model)."""
        self.linear_start_switch.assign(1.0 if arguments.boolean("on", on) else 0.0)

    def _memories(self, embedding, temporal, story, word_mask, slot_mask):
        """Σ_j l_j · E x_ij (+ T(i)) of every slot: [batch, memory_size', d]."""
        m = self.sentence_encoding(embedding(story), word_mask=word_mask)
        return m if temporal is None else temporal(m, slot_mask=slot_mask)

    def call_with_attention(self, inputs):
        """(logits [batch, vocab_size], p [batch, hops, memory_size'])."""
        story, query = inputs
        story = ops.cast(story, "int32")
        query = ops.cast(query, "int32")
        slots = story.shape[1]
        if slots is not None and slots > self.memory_size:
            raise ValueError(
                f"MemN2N got a story of {slots} sentences; expected at most memory_size={self.memory_size} (older "
                f"sentences are dropped by the data pipeline)"
            )
        word_mask = ops.not_equal(story, 0)
        slot_mask = ops.any(word_mask, axis=-1)
        linear = ops.greater(self.linear_start_switch, 0.5)
        # The memory's slots that hold no sentence, up to memory_size: the same for any padding of the story.
        empty = None
        if self.empty_memories:
            empty = self.memory_size - ops.sum(ops.cast(slot_mask, "float32"), axis=-1)

        if self.tying == "adjacent":
            # E_k's memories serve as C^k and as A^{k+1}: encoded once.
            temporals = self.temporals or [None] * (self.hops + 1)
            encoded = [
                self._memories(self.embeddings[k], temporals[k], story, word_mask, slot_mask)
                for k in range(self.hops + 1)
            ]
            keys, values = encoded[:-1], encoded[1:]  # A^k = E_{k-1}, C^k = E_k
            u = self.sentence_encoding(self.embeddings[0](query), word_mask=ops.not_equal(query, 0))  # B = A^1
        else:
            temporal_a = self.temporal_a if self.temporal_encoding else None
            temporal_c = self.temporal_c if self.temporal_encoding else None
            keys = [self._memories(self.memory_embedding, temporal_a, story, word_mask, slot_mask)] * self.hops
            values = [self._memories(self.output_embedding, temporal_c, story, word_mask, slot_mask)] * self.hops
            u = self.sentence_encoding(self.query_embedding(query), word_mask=ops.not_equal(query, 0))

        attention = []
        for k in range(self.hops):
            o, p = self.memory_read(u, keys[k], values[k], slot_mask=slot_mask, linear=linear, empty_slots=empty)
            attention.append(p)
            u = (u if self.hop_map_layer is None else self.hop_map_layer(u)) + o

        if self.tying == "adjacent":
            logits = ops.matmul(u, ops.transpose(self.embeddings[-1].embeddings))  # W = (C^K)ᵀ
        else:
            logits = self.answer(u)
        return logits, ops.stack(attention, axis=1)

    def call(self, inputs):
        logits, _ = self.call_with_attention(inputs)
        return logits

    def attention(self, inputs):
        """The attention p^k of every hop: [batch, hops, memory_size']."""
        _, attention = self.call_with_attention(inputs)
        return attention

    def get_config(self):
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "memory_size": self.memory_size,
            "embedding_dim": self.embedding_dim,
            "hops": self.hops,
            "tying": self.tying,
            "encoding": self.encoding,
            "temporal_encoding": self.temporal_encoding,
            "hop_map": self.hop_map,
            "linear_start": self.linear_start,
            "initializer_stddev": self.initializer_stddev,
            "empty_memories": self.empty_memories,
        }
