"""TextEncoder: one side of a translation (or any text model) — strings to ids and ids back to strings."""

import os

import numpy as np
import tensorflow as tf

from training.text.tokenizer import Tokenizer
from training.text.vocabulary import SPECIALS
from training.text.vocabulary import Vocabulary


class TextEncoder(tf.Module):
    """A `Tokenizer` and a `Vocabulary` together: strings -> token ids -> strings, in the graph (for tf.data and
    SavedModel signatures) and in Python (to prepare a corpus once).

    A translation task has two: the source side's (e.g. characters of Chinese, `split="unspaced_scripts"`) and the
    target side's (e.g. English words), each with its own vocabulary and the specials `<pad>` 0, `<unk>` 1,
    `<bos>` 2, `<eos>` 3.

    `encode` and `decode` read the vocabulary's tables, made from its file: `save_vocabulary(path)` once (for an
    export, into a directory that exists until the module is saved; saving copies the file under `assets/`), or
    build the vocabulary with `Vocabulary.load`. `encode_lines` needs no file.

    Args:
        tokenizer: a `Tokenizer`.
        vocabulary: a `Vocabulary`.

    Example:
        target = TextEncoder.build(["I love you .", "you love me ."], {"level": "word"})
        target.save_vocabulary(path)
        ids = target.encode(tf.constant(["I love cats ."]), eos=True)  # [[4, 5, 1, 7, 3]] (cats -> <unk>)
        target.decode(ids)  # ["I love <unk> ."]
    """

    def __init__(self, tokenizer, vocabulary):
        super().__init__(name="text_encoder")
        if not isinstance(tokenizer, Tokenizer):
            raise ValueError(f"tokenizer must be a Tokenizer, got {tokenizer!r}")
        if not isinstance(vocabulary, Vocabulary):
            raise ValueError(f"vocabulary must be a Vocabulary, got {vocabulary!r}")
        self.tokenizer = tokenizer
        self.vocabulary = vocabulary

    @classmethod
    def build(cls, lines, tokenizer_config, min_count=1, max_size=None, specials=SPECIALS):
        """An encoder whose vocabulary holds the tokens of `lines` (the training split's, for one side).

        Args:
            lines: a list of str.
            tokenizer_config: the `Tokenizer`'s arguments, e.g. {"level": "word", "split": "unspaced_scripts"}.
            min_count, max_size, specials: see `Vocabulary.build`.
        """
        tokenizer = Tokenizer.from_config(dict(tokenizer_config))
        tokens = _tokenized(tokenizer, lines)
        return cls(tokenizer, Vocabulary.build(tokens, min_count=min_count, max_size=max_size, specials=specials))

    def save_vocabulary(self, path):
        """Writes the vocabulary file at `path` and makes `encode`/`decode`'s tables from it."""
        self.vocabulary.save(path)
        return os.fspath(path)

    def encode_lines(self, lines, bos=False, eos=False):
        """Python: the ids of each line, as int32 NumPy arrays (unknown tokens -> `unk_id`), with `bos_id` first and
        `eos_id` last when asked. Tokenizes with the same graph tokenizer that `encode` uses."""
        index = {token: i for i, token in enumerate(self.vocabulary.tokens)}
        unk = self.vocabulary.unk_id
        head = [self.vocabulary.bos_id] if bos else []
        tail = [self.vocabulary.eos_id] if eos else []
        return [
            np.asarray(head + [index.get(token, unk) for token in tokens] + tail, "int32")
            for tokens in _tokenized(self.tokenizer, lines)
        ]

    def encode(self, strings, bos=False, eos=False):
        """In the graph: tf.string [batch] -> int64 ids, a RaggedTensor [batch, (ids)] (a scalar string gives dense
        [ids]); unknown tokens -> `unk_id`; `bos_id` first and `eos_id` last when asked."""
        return self.vocabulary.encode(self.tokenizer.tokenize(strings), bos=bos, eos=eos)

    def decode(self, ids):
        """In the graph: ids -> tf.string [batch]. Each row is read up to its first `eos_id` (what a decoder writes
        after it is not part of the output); `<pad>` and `<bos>` are dropped, unknown ids (and `<unk>`) become the
        unknown token, and the tokens are detokenized.

        Args:
            ids: integer ids, dense [batch, max_ids] (a decoder's output) or a RaggedTensor [batch, (ids)].
        """
        ids = ids if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer or ids.shape.rank != 2:
            raise ValueError(f"decode takes integer ids [batch, max_ids] or [batch, (ids)], got {ids.dtype.name} "
                             f"of shape {ids.shape}")
        ids = tf.cast(ids, tf.int64)
        if not isinstance(ids, tf.RaggedTensor):
            ids = tf.RaggedTensor.from_tensor(ids)
        ended = tf.cast(tf.equal(ids, self.vocabulary.eos_id), tf.int32)
        before_end = tf.equal(tf.math.cumsum(ended, axis=1), 0)
        ids = tf.ragged.boolean_mask(ids, before_end)
        return self.tokenizer.detokenize(self.vocabulary.decode(ids, drop_specials=True))

    def get_config(self):
        """The tokenizer's config and the vocabulary's tokens, as plain JSON values."""
        return {"tokenizer": self.tokenizer.get_config(), "tokens": list(self.vocabulary.tokens),
                "specials": list(self.vocabulary.specials)}

    @classmethod
    def from_config(cls, config):
        expected = {"tokenizer", "tokens", "specials"}
        if set(config) != expected:
            raise ValueError(f"a TextEncoder config has the keys {sorted(expected)}, got {sorted(config)}")
        return cls(Tokenizer.from_config(config["tokenizer"]),
                   Vocabulary(config["tokens"], specials=config["specials"]))


def _tokenized(tokenizer, lines):
    """The tokens of each line, as lists of str."""
    if isinstance(lines, (str, bytes)):
        raise ValueError(f"lines must be a list of strings, got the single string {lines[:40]!r}")
    lines = list(lines)
    if not lines:
        return []
    ragged = tokenizer.tokenize(tf.constant(lines, tf.string))
    return [[token.decode("utf-8") for token in row] for row in ragged.to_list()]
