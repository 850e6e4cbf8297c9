"""SentenceEncoding: a sentence's word embeddings summed into one vector, as bag of words or with position encoding
(Sukhbaatar, Szlam, Weston & Fergus 2015, "End-To-End Memory Networks", §4.1)."""

import keras
from keras import ops

from zoo import arguments

ENCODINGS = ("bow", "position")


def position_encoding(word_mask, dim, dtype="float32"):
    """The position-encoding weights l_kj = (1 - j/J) - (k/d)(1 - 2j/J) of every word of every sentence.

    j = 1..J counts the valid words of a sentence in order (padding words are skipped, wherever they are) and J is the
    number of valid words of that sentence, so padding never moves a word's weights; k = 1..d is the embedding
    dimension. Padding words get all-zero weights.

    Args:
        word_mask: [..., sentence_length] bool (or 0/1), `True` at the sentence's words.
        dim: d, the embedding size (a Python int).

    Returns:
        l [..., sentence_length, d] of `dtype`.
    """
    valid = ops.cast(word_mask, dtype)
    j = ops.cumsum(valid, axis=-1)  # 1-based position among the valid words
    length = ops.maximum(ops.sum(valid, axis=-1, keepdims=True), 1.0)  # J; an empty sentence divides by 1
    ratio = ops.expand_dims(j / length, -1)  # j/J  [..., J, 1]
    k = ops.arange(1, dim + 1, dtype=dtype) / dim  # k/d  [d]
    weights = (1.0 - ratio) - k * (1.0 - 2.0 * ratio)
    return weights * ops.expand_dims(valid, -1)


def encode_sentences(embedded, word_mask, encoding):
    """m = Σ_j l_j · x_j over the valid words: the bag of words (l_j = 1) or the position encoding.

    Args:
        embedded: [..., sentence_length, d] word embeddings x_j.
        word_mask: [..., sentence_length] bool, `True` at the words; `None` means every word is valid.
        encoding: "bow" or "position".

    Returns:
        [..., d]: padding words never contribute.
    """
    if word_mask is None:
        word_mask = ops.ones(ops.shape(embedded)[:-1], "bool")
    if encoding == "position":
        weights = position_encoding(word_mask, embedded.shape[-1], embedded.dtype)
    else:
        weights = ops.expand_dims(ops.cast(word_mask, embedded.dtype), -1)
    return ops.sum(embedded * weights, axis=-2)


@keras.saving.register_keras_serializable(package="zoo")
class SentenceEncoding(keras.layers.Layer):
    """Sums the word embeddings of each sentence into one vector: bag of words or position encoding.

    Equations (Sukhbaatar et al. 2015, §4.1; no weights):

        bag of words:       m_i = Σ_j x_ij
        position encoding:  m_i = Σ_j l_j · x_ij,   l_kj = (1 - j/J) - (k/d)(1 - 2j/J)

    with x_ij the embedding of word j of sentence i, J the number of words of sentence i, d the embedding size and ·
    the element-wise product (the order of the words now changes m_i).

    Args:
        encoding: "bow" or "position" (default "position").

    Call arguments:
        embedded: [..., sentence_length, d] float, the word embeddings (any number of leading axes: a story
            [batch, memory_size, sentence_length, d] or a query [batch, sentence_length, d]).
        word_mask: [..., sentence_length] bool, `True` at words, `False` at padding; `None` means all are words.

    Returns [..., d].

    Masking: padding words are left out of the sum and out of j and J, so padding a sentence (anywhere) never changes
    its encoding.

    Example:
        ```python
        encode = zoo.layers.SentenceEncoding("position")
        m = encode(embedding(story), word_mask=story != 0)  # (batch, memory_size, d)
        ```

    Reference: S. Sukhbaatar, A. Szlam, J. Weston, R. Fergus, "End-to-end memory networks", NeurIPS 2015.
    """

    def __init__(self, encoding="position", **kwargs):
        super().__init__(**kwargs)
        self.encoding = arguments.one_of("encoding", encoding, ENCODINGS)

    def call(self, embedded, word_mask=None):
        return encode_sentences(embedded, word_mask, self.encoding)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-2]) + (input_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "encoding": self.encoding}
