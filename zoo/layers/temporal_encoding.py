"""TemporalEncoding: a learned vector per memory slot's age, added to each memory (Sukhbaatar, Szlam, Weston &
Fergus 2015, "End-To-End Memory Networks", §4.1)."""

import keras
from keras import ops

from zoo import arguments


def temporal_indices(slot_mask):
    """The age of every memory slot, counted back from the most recent sentence: 0 for the last valid slot.

    Slot i gets `last - i`, with `last` the index of the last valid slot of its story; empty slots before it count
    (they are time steps: the paper's "dummy memories" of random noise shift the older sentences back), slots after
    it (trailing padding) get 0 and are masked by the memory read anyway.

    Args:
        slot_mask: [batch, memory_size] bool, `True` at the slots that hold a sentence.

    Returns:
        [batch, memory_size] int32.
    """
    valid = ops.cast(slot_mask, "int32")
    positions = ops.arange(ops.shape(valid)[-1], dtype="int32")
    last = ops.max(valid * positions, axis=-1, keepdims=True)
    return ops.maximum(last - positions, 0)


@keras.saving.register_keras_serializable(package="zoo")
class TemporalEncoding(keras.layers.Layer):
    """Adds T(i), a learned row per memory slot's age, to the memory vectors.

    Equations (Sukhbaatar et al. 2015, §4.1):

        m_i = Σ_j A x_ij + T_A(i)        T_A: `temporal` [memory_size, d]

    where i is the age of sentence i: 0 for the most recent sentence of the story, 1 for the one before, and so on
    (see `temporal_indices`). The model holds one such layer per embedding (T_A and T_C).

    Args:
        memory_size: positive int, the number of rows of T (the most memory slots a story may have).
        embeddings_initializer: initializer of T (default N(0, 0.1), as the paper).

    Call arguments:
        memories: [batch, memory_size', d] float, memory_size' <= memory_size.
        slot_mask: [batch, memory_size'] bool, `True` at slots that hold a sentence; `None` means all do.

    Returns [batch, memory_size', d].

    Masking: the ages count from the last valid slot, so trailing padding slots change nothing; padding slots get
    T(0) added (they are masked out of the memory read).

    Reference: S. Sukhbaatar, A. Szlam, J. Weston, R. Fergus, "End-to-end memory networks", NeurIPS 2015.
    """

    def __init__(self, memory_size, embeddings_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.memory_size = arguments.positive_int("memory_size", memory_size)
        if embeddings_initializer is None:
            embeddings_initializer = keras.initializers.RandomNormal(stddev=0.1)
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)

    def build(self, memories_shape):
        slots, dim = memories_shape[-2], memories_shape[-1]
        if len(memories_shape) != 3 or dim is None:
            raise ValueError(
                f"TemporalEncoding expects memories of shape (batch, memory_size, d) with a known d, got "
                f"{tuple(memories_shape)}"
            )
        if slots is not None and slots > self.memory_size:
            raise ValueError(
                f"TemporalEncoding has {self.memory_size} rows (memory_size) but the memories have {slots} slots; "
                f"expected at most {self.memory_size}"
            )
        self.temporal = self.add_weight(
            shape=(self.memory_size, dim), name="temporal", initializer=self.embeddings_initializer
        )

    def call(self, memories, slot_mask=None):
        if slot_mask is None:
            slot_mask = ops.ones(ops.shape(memories)[:-1], "bool")
        ages = ops.minimum(temporal_indices(slot_mask), self.memory_size - 1)
        return memories + ops.take(self.temporal, ages, axis=0)

    def compute_output_shape(self, memories_shape):
        return tuple(memories_shape)

    def get_config(self):
        return {
            **super().get_config(),
            "memory_size": self.memory_size,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }
