"""Vocabulary: tokens <-> integer ids, as Python data, as a file (one token per line) and as in-graph lookup tables
that SavedModels carry under `assets/`."""

import collections
import collections.abc
import os

import tensorflow as tf

SPECIALS = ("<pad>", "<unk>", "<bos>", "<eos>")


class Vocabulary(tf.Module):
    """A fixed token list; a token's id is its index. Ids 0..3 are the specials, in the roles padding, unknown,
    beginning and end of sequence (`pad_id` 0, `unk_id` 1, `bos_id` 2, `eos_id` 3).

    Build one from data (`Vocabulary.build`), or load one from its file (`Vocabulary.load`). The file holds one
    token per line, UTF-8, "\\n" line endings; line n (from 0) is the token with id n.

    In the graph, a vocabulary is two `tf.lookup.StaticHashTable`s read from its file by
    `tf.lookup.TextFileInitializer`: `lookup_table(path)` (tf.string -> int64, unknown tokens -> `unk_id`) and
    `inverse_table(path)` (int64 -> tf.string, unknown ids -> the unknown token). `tf.saved_model.save` copies the
    file under the export's `assets/` and the loaders (including TF Serving's TF1 session loader) initialize the
    tables from that copy, so an export does not depend on the original file.

    `encode` and `decode` use the vocabulary's own pair of tables, made from its file when it is saved or loaded.
    The vocabulary is a `tf.Module` that owns them: assign it to an attribute of the module you export
    (`module.vocabulary = vocabulary`) so that the tables are tracked and saved with the functions that use them.

    Args:
        tokens: every token, the specials first (in the order of `specials`); distinct, non-empty, no line breaks.
        specials: the four special tokens, in the roles (pad, unk, bos, eos).

    Example:
        vocabulary = Vocabulary.build([["the", "cat"], ["the", "mat"]])
        vocabulary.tokens  # ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "mat"]
        vocabulary.save(path)
        vocabulary.encode(tf.ragged.constant([["the", "dog"]]), bos=True)  # [[2, 4, 1]]
    """

    def __init__(self, tokens, specials=SPECIALS):
        super().__init__(name="vocabulary")
        specials = _checked_specials(specials)
        tokens = list(tokens)
        for index, token in enumerate(tokens):
            _check_token(token, f"tokens[{index}]")
        for index, special in enumerate(specials):
            if index >= len(tokens) or tokens[index] != special:
                found = repr(tokens[index]) if index < len(tokens) else "nothing"
                raise ValueError(
                    f"tokens[{index}] must be the special {special!r} (the specials {specials} come first), got {found}"
                )
        first_index = {}
        for index, token in enumerate(tokens):
            if token in first_index:
                raise ValueError(f"tokens[{index}] repeats {token!r} (first at tokens[{first_index[token]}])")
            first_index[token] = index
        self._tokens = tuple(tokens)
        self._specials = specials
        self._path = None

    @classmethod
    def build(cls, token_lists_or_counter, min_count=1, max_size=None, specials=SPECIALS):
        """A vocabulary of the tokens in the data: the specials, then tokens by descending count, ties in code point
        order (deterministic).

        Args:
            token_lists_or_counter: an iterable of token lists (tokens as str, or UTF-8 bytes as the NumPy values of
                tf.string tensors give them; e.g. `tokenizer.tokenize(lines).to_list()` or a tf.data pipeline's
                `as_numpy_iterator()`), a RaggedTensor of tokens, or a mapping {token: count}
                (`collections.Counter`). Occurrences of a special token count for nothing: it is in already.
            min_count: tokens seen fewer times are left out (they map to the unknown token).
            max_size: at most this many tokens, the specials included; None for no limit.
            specials: see the class.
        """
        specials = _checked_specials(specials)
        if not isinstance(min_count, int) or isinstance(min_count, bool) or min_count < 1:
            raise ValueError(f"min_count must be a positive int, got {min_count!r}")
        if max_size is not None and (
            not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < len(specials)
        ):
            raise ValueError(
                f"max_size must be None or an int of at least {len(specials)} (the specials), got {max_size!r}"
            )
        counts = _counts(token_lists_or_counter)
        for special in specials:
            counts.pop(special, None)
        kept = sorted((token for token, count in counts.items() if count >= min_count), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - len(specials)]
        return cls(list(specials) + kept, specials=specials)

    @classmethod
    def load(cls, path, specials=SPECIALS):
        """The vocabulary in the file at `path` (written by `save`), with its tables made from that file."""
        vocabulary = cls(_read_tokens(path, _checked_specials(specials)), specials=specials)
        vocabulary._use_file(path)
        return vocabulary

    def save(self, path):
        """Writes the vocabulary file (one token per line, UTF-8) and makes `encode`/`decode`'s tables from it."""
        path = os.fspath(path)
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="\n") as file:
            file.write("".join(token + "\n" for token in self._tokens))
        self._use_file(path)

    @property
    def tokens(self):
        """Every token, in id order (a new list)."""
        return list(self._tokens)

    @property
    def specials(self):
        return tuple(self._specials)

    @property
    def size(self):
        return len(self._tokens)

    @property
    def pad_id(self):
        return 0

    @property
    def unk_id(self):
        return 1

    @property
    def bos_id(self):
        return 2

    @property
    def eos_id(self):
        return 3

    @property
    def path(self):
        """The file that `encode`/`decode`'s tables were made from (last `save` or `load`), or None."""
        return self._path

    def lookup_table(self, path):
        """A new tf.string -> int64 `StaticHashTable` from the vocabulary file at `path` (which must hold exactly
        this vocabulary); unknown tokens -> `unk_id`."""
        return self._file_table(path, tf.string, tf.lookup.TextFileIndex.WHOLE_LINE, tf.int64,
                                tf.lookup.TextFileIndex.LINE_NUMBER, tf.constant(self.unk_id, tf.int64))

    def inverse_table(self, path):
        """A new int64 -> tf.string `StaticHashTable` from the vocabulary file at `path` (which must hold exactly
        this vocabulary); ids outside [0, size) -> the unknown token."""
        return self._file_table(path, tf.int64, tf.lookup.TextFileIndex.LINE_NUMBER, tf.string,
                                tf.lookup.TextFileIndex.WHOLE_LINE, self._specials[1])

    def _file_table(self, path, key_dtype, key_index, value_dtype, value_index, default_value):
        initializer = tf.lookup.TextFileInitializer(
            self._checked_file(path),
            key_dtype=key_dtype,
            key_index=key_index,
            value_dtype=value_dtype,
            value_index=value_index,
            vocab_size=self.size,
        )
        return tf.lookup.StaticHashTable(initializer, default_value=default_value)

    def encode(self, tokens, bos=False, eos=False):
        """Ids of tokens (unknown tokens -> `unk_id`).

        Args:
            tokens: tf.string, a RaggedTensor [batch, (tokens)] or a dense tensor of any shape.
            bos, eos: put `bos_id` first / `eos_id` last in every sequence; for ragged [batch, (tokens)] or dense
                [tokens] only (a padded dense batch has no single place to put `eos_id`).

        Returns:
            int64 ids, in the structure of `tokens` (plus the added ids).
        """
        table = self._table("encode", "_lookup")
        tokens = tokens if isinstance(tokens, tf.RaggedTensor) else tf.convert_to_tensor(tokens, tf.string)
        if tokens.dtype != tf.string:
            raise ValueError(f"encode takes tf.string tokens, got {tokens.dtype.name}")
        ids = _map_values(table.lookup, tokens)
        if not (bos or eos):
            return ids
        ragged_batch = isinstance(ids, tf.RaggedTensor) and ids.shape.rank == 2
        if not (ragged_batch or (not isinstance(ids, tf.RaggedTensor) and ids.shape.rank == 1)):
            raise ValueError(
                f"bos/eos need tokens as ragged [batch, (tokens)] or dense [tokens], got shape {tokens.shape}"
            )
        if ragged_batch:
            column = lambda id_: tf.fill(tf.stack([ids.nrows(), 1]), tf.constant(id_, tf.int64))  # noqa: E731
            axis = 1
        else:
            column = lambda id_: tf.constant([id_], tf.int64)  # noqa: E731
            axis = 0
        parts = ([column(self.bos_id)] if bos else []) + [ids] + ([column(self.eos_id)] if eos else [])
        return tf.concat(parts, axis=axis)

    def decode(self, ids, drop_specials=False):
        """Tokens of ids (ids outside [0, size) -> the unknown token).

        Args:
            ids: integer ids, a RaggedTensor [batch, (ids)] or a dense tensor [ids] or [batch, max_ids].
            drop_specials: leave out the padding, beginning and end ids (the unknown token stays: it stands for a
                real token).

        Returns:
            tf.string tokens in the structure of `ids`; with `drop_specials`, [batch, max_ids] becomes ragged
            [batch, (tokens)] (feed it to `Tokenizer.detokenize`).
        """
        table = self._table("decode", "_inverse")
        ids = ids if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer:
            raise ValueError(f"decode takes integer ids, got {ids.dtype.name}")
        ids = tf.cast(ids, tf.int64)
        if drop_specials:
            if ids.shape.rank not in (1, 2):
                raise ValueError(f"drop_specials needs ids [ids] or [batch, (ids)], got shape {ids.shape}")
            dropped = tf.constant([self.pad_id, self.bos_id, self.eos_id], tf.int64)
            keep = _map_values(lambda v: tf.reduce_all(tf.not_equal(v[..., tf.newaxis], dropped), axis=-1), ids)
            if isinstance(ids, tf.RaggedTensor) or ids.shape.rank == 2:
                ids = tf.ragged.boolean_mask(ids, keep)
            else:
                ids = tf.boolean_mask(ids, keep)
        return _map_values(table.lookup, ids)

    # Internals.

    def _use_file(self, path):
        """Makes `encode`/`decode`'s tables from the file at `path` (they are tracked attributes of this module)."""
        path = os.path.abspath(os.fspath(path))
        with tf.init_scope():
            self._lookup = self.lookup_table(path)
            self._inverse = self.inverse_table(path)
        self._path = path

    def _table(self, method, attribute):
        table = getattr(self, attribute, None)
        if table is None:
            raise ValueError(
                f"{method} needs the vocabulary's tables, made from its file: call save(path) first, or build the "
                "vocabulary with Vocabulary.load(path)"
            )
        return table

    def _checked_file(self, path):
        """The absolute path of the file at `path`, after checking that it holds exactly this vocabulary."""
        path = os.path.abspath(os.fspath(path))
        found = _read_tokens(path, self._specials)
        for index, (token, expected) in enumerate(zip(found, self._tokens)):
            if token != expected:
                raise ValueError(
                    f"vocabulary file {path!r} does not hold this vocabulary: line {index + 1} is {token!r}, expected "
                    f"{expected!r}"
                )
        if len(found) != self.size:
            raise ValueError(
                f"vocabulary file {path!r} does not hold this vocabulary: it has {len(found)} tokens, expected "
                f"{self.size}"
            )
        return path


def _checked_specials(specials):
    specials = tuple(specials) if isinstance(specials, (list, tuple)) else specials
    if not isinstance(specials, tuple) or len(specials) != 4:
        raise ValueError(f"specials must be 4 tokens in the roles (pad, unk, bos, eos), got {specials!r}")
    for index, special in enumerate(specials):
        _check_token(special, f"specials[{index}]")
    if len(set(specials)) != 4:
        raise ValueError(f"specials must be distinct, got {specials!r}")
    return specials


def _check_token(token, where):
    if not isinstance(token, str) or not token or "\n" in token or "\r" in token:
        raise ValueError(
            f"{where} must be a non-empty string without line breaks (the file holds one token per line), got "
            f"{token!r}"
        )


def _text(token):
    """A token as str: bytes (tf.string values in NumPy) are decoded as UTF-8."""
    if isinstance(token, bytes):
        try:
            return token.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(f"token {token!r} is not UTF-8 (byte offset {error.start})") from None
    if isinstance(token, str):
        return token
    raise ValueError(f"tokens must be str or UTF-8 bytes, got {token!r} of type {type(token).__name__}")


def _counts(data):
    """{token: count} (a Counter) of a mapping, a RaggedTensor or an iterable of token lists; tokens checked."""
    if isinstance(data, tf.RaggedTensor):
        data = data.to_list()
    counts = collections.Counter()
    if isinstance(data, collections.abc.Mapping):
        for token, count in data.items():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"the count of {token!r} must be a non-negative int, got {count!r}")
            counts[_text(token)] += count
    else:
        for index, tokens in enumerate(data):
            if isinstance(tokens, (str, bytes)):
                raise ValueError(
                    f"expected token lists, got the string {tokens!r} at position {index}: tokenize it first"
                )
            counts.update(_text(token) for token in tokens)
    for token in counts:
        _check_token(token, "a token of the data")
    return counts


def _read_tokens(path, specials):
    """The tokens of the vocabulary file at `path`, checked: UTF-8, not empty, specials first, distinct, no empty
    line. A trailing "\\r" (a "\\r\\n" line ending) is dropped, as TensorFlow's file tables drop it.

    Not `training.data.text_files.read_lines`: that reader drops a byte-order mark, which TensorFlow's file tables
    keep (as part of the first token), and this check must read the file as those tables will."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no vocabulary file at {path!r}; write one with Vocabulary.save(path)")
    with open(path, "rb") as file:
        data = file.read()
    if not data:
        raise ValueError(f"vocabulary file {path!r} is empty; expected the specials {specials} first, one per line")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(
            f"vocabulary file {path!r} is not UTF-8: byte offset {error.start} ({error.reason})"
        ) from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final newline ends the last line; it does not start another
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    for index, special in enumerate(specials):
        found = repr(lines[index]) if index < len(lines) else "the end of the file"
        if index >= len(lines) or lines[index] != special:
            raise ValueError(
                f"vocabulary file {path!r}, line {index + 1}: expected the special token {special!r}, found {found} "
                f"(the file starts with the specials {specials}, one per line)"
            )
    first_line = {}
    for number, token in enumerate(lines, start=1):
        if not token:
            raise ValueError(f"vocabulary file {path!r}, line {number} is empty; expected one token per line")
        if "\r" in token:
            raise ValueError(f"vocabulary file {path!r}, line {number} holds a carriage return: {token!r}")
        if token in first_line:
            raise ValueError(
                f"vocabulary file {path!r}, line {number}: token {token!r} already appears on line "
                f"{first_line[token]}; tokens must be distinct"
            )
        first_line[token] = number
    return lines


def _map_values(function, tensor):
    """`function` applied to the values of a RaggedTensor (its structure kept) or to a dense tensor."""
    if isinstance(tensor, tf.RaggedTensor):
        return tf.ragged.map_flat_values(function, tensor)
    return function(tensor)
