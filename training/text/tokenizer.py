"""Tokenizer: strings to tokens and back, in the graph (TF Text), for tf.data pipelines and SavedModel signatures."""

import os

import tensorflow as tf
import tensorflow_text as tf_text

LEVELS = ("word", "char")
SPLITS = ("whitespace", "unicode_script", "unspaced_scripts")
# Characters of scripts written without spaces between words, each a token of its own with split="unspaced_scripts"
# (a RE2 character class body): Han (Chinese; Japanese kanji), Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, CJK
# punctuation (U+3001..U+303F, after the ideographic space U+3000) and full- and half-width forms (U+FF01..U+FF9F).
UNSPACED = r"\p{Han}\p{Hiragana}\p{Katakana}\p{Thai}\p{Lao}\p{Khmer}\p{Myanmar}\x{3001}-\x{303F}\x{FF01}-\x{FF9F}"
# Unicode whitespace (RE2's \s is ASCII only): \p{Z} adds the ideographic space and the other Unicode spaces.
_WHITESPACE = r"[\s\p{Z}]+"
# WordPiece conventions, as TF Text (and BERT's vocabularies) have them.
SUFFIX_INDICATOR = "##"
UNKNOWN_TOKEN = "[UNK]"


class Tokenizer(tf.Module):
    """Splits strings into string tokens and joins tokens back into strings, with TF core and TF Text ops only.

    Levels:
    - `"word"`: `split="whitespace"` cuts at Unicode whitespace (`tensorflow_text.WhitespaceTokenizer`);
      `split="unicode_script"` also cuts where the Unicode script changes, so punctuation and digits become their
      own tokens (`tensorflow_text.UnicodeScriptTokenizer`; whitespace is dropped); `split="unspaced_scripts"`
      cuts at Unicode whitespace and makes every character of a script written without spaces (Chinese, Japanese
      kana, Thai ...: `UNSPACED`) a token of its own, so "我用Python写代码。" -> "我", "用", "Python", "写", "代",
      "码", "。" (`tensorflow_text.regex_split`): words for the spaced parts, characters for the rest; detokenizing
      joins tokens with one space except next to such a character, so text that has no space next to one and single
      spaces elsewhere comes back exactly. With a `wordpiece_vocabulary` each word is then split into the longest
      wordpieces of that vocabulary (`tensorflow_text.WordpieceTokenizer`): a piece that continues a word starts
      with the suffix indicator `"##"` ("unaffable" -> "un", "##aff", "##able"), and a word that cannot be covered
      (or is longer than 100 bytes) becomes the one token `"[UNK]"`.
    - `"char"`: Unicode characters of the UTF-8 text (`tf.strings.unicode_split`), spaces and other whitespace
      kept as tokens, so `detokenize(tokenize(s)) == s` for valid UTF-8 (invalid bytes become U+FFFD).

    `lowercase` applies `tf.strings.lower(..., encoding="utf-8")` first: Unicode lowercasing (a TF core op), not
    TF Text's `case_fold_utf8`, whose NFKC case folding would also rewrite characters ("ß" -> "ss",
    "ﬁ" -> "fi", full-width letters -> ASCII) that a detokenized output should keep.

    A `tf.Module`: assign it to an attribute of the module you export and the wordpiece table (its file under
    `assets/` when given as a path) travels with the SavedModel.

    Args:
        level: "word" (default) or "char".
        split: for words, "whitespace" (default), "unicode_script" or "unspaced_scripts".
        lowercase: lowercase before splitting (default False).
        wordpiece_vocabulary: None (default), a list of wordpieces (continuations with the "##" prefix), or the path
            of a vocabulary file with one wordpiece per line. Word level only.

    Example:
        tokenizer = Tokenizer(level="word", lowercase=True)
        tokens = tokenizer.tokenize(tf.constant(["The cat sat", "On the mat"]))  # ragged [2, (3)]
        tokenizer.detokenize(tokens)  # ["the cat sat", "on the mat"]
    """

    def __init__(self, level="word", split="whitespace", lowercase=False, wordpiece_vocabulary=None):
        super().__init__(name="tokenizer")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if level == "char" and split != "whitespace":
            raise ValueError(f"split only applies to level 'word'; got split={split!r} with level='char'")
        if not isinstance(lowercase, bool):
            raise ValueError(f"lowercase must be a bool, got {lowercase!r}")
        if wordpiece_vocabulary is not None and level != "word":
            raise ValueError(f"a wordpiece_vocabulary needs level 'word', got level={level!r}")
        self._level = level
        self._split = split
        self._lowercase = lowercase
        self._wordpiece_vocabulary = _checked_wordpieces(wordpiece_vocabulary)
        if level == "word" and split != "unspaced_scripts":
            splitter = tf_text.WhitespaceTokenizer if split == "whitespace" else tf_text.UnicodeScriptTokenizer
            self._splitter = splitter()
        self._wordpiece = None
        if self._wordpiece_vocabulary is not None:
            self._wordpiece = tf_text.WordpieceTokenizer(
                _wordpiece_table(self._wordpiece_vocabulary),
                suffix_indicator=SUFFIX_INDICATOR,
                unknown_token=UNKNOWN_TOKEN,
                token_out_type=tf.string,
            )

    def tokenize(self, strings):
        """Tokens of each string.

        Args:
            strings: tf.string [batch], or a scalar (one element of an unbatched tf.data pipeline).

        Returns:
            tf.string tokens: a RaggedTensor [batch, (tokens)]; a dense [tokens] for a scalar. For a signature
            output, make it dense: `tokens.to_tensor("")` with `tokens.row_lengths()`.
        """
        strings = tf.convert_to_tensor(strings, tf.string)
        rank = strings.shape.rank
        if rank == 0:
            return self.tokenize(strings[tf.newaxis])[0]
        if rank != 1:
            raise ValueError(f"tokenize takes a scalar or a [batch] vector of strings, got shape {strings.shape}")
        if self._lowercase:
            strings = tf.strings.lower(strings, encoding="utf-8")
        if self._level == "char":
            return tf.strings.unicode_split(strings, "UTF-8")
        if self._split == "unspaced_scripts":
            words = tf_text.regex_split(strings, f"{_WHITESPACE}|[{UNSPACED}]", f"[{UNSPACED}]")
        else:
            words = self._splitter.tokenize(strings)
        if self._wordpiece is None:
            return words
        # [batch, (words), (pieces)] -> [batch, (pieces)].
        return self._wordpiece.tokenize(words).merge_dims(1, 2)

    def detokenize(self, tokens):
        """Strings from tokens: words joined by one space, characters concatenated, wordpieces merged (a piece that
        starts with "##" joins the piece before it, without the "##"); with split="unspaced_scripts", no space next to
        a character of a script written without spaces.

        Args:
            tokens: tf.string, a RaggedTensor [batch, (tokens)]; or dense [batch, max_tokens] padded at the end
                with "" (no tokenizer level makes an empty token); or dense [tokens].

        Returns:
            tf.string [batch]; a scalar for dense [tokens].
        """
        if isinstance(tokens, tf.RaggedTensor):
            if tokens.dtype != tf.string or tokens.shape.rank != 2:
                raise ValueError(
                    f"detokenize takes tf.string tokens [batch, (tokens)], got a {tokens.dtype.name} RaggedTensor "
                    f"of shape {tokens.shape}"
                )
        else:
            tokens = tf.convert_to_tensor(tokens)
            if tokens.dtype != tf.string:
                raise ValueError(f"detokenize takes tf.string tokens, got {tokens.dtype.name}")
            rank = tokens.shape.rank
            if rank == 1:
                return self.detokenize(tokens[tf.newaxis])[0]
            if rank != 2:
                raise ValueError(
                    f"detokenize takes tokens [tokens], [batch, max_tokens] or ragged [batch, (tokens)], got shape "
                    f"{tokens.shape}"
                )
            tokens = tf.RaggedTensor.from_tensor(tokens, padding="")
        if self._level == "char":
            return tf.strings.reduce_join(tokens, axis=-1)
        strings = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
        if self._wordpiece is not None:
            strings = tf.strings.regex_replace(strings, " " + SUFFIX_INDICATOR, "")
        if self._split == "unspaced_scripts":
            # Tokens are joined by single spaces, so removing the one after and the one before every such character
            # (two non-overlapping passes) leaves none next to it.
            strings = tf.strings.regex_replace(strings, f"([{UNSPACED}]) ", r"\1")
            strings = tf.strings.regex_replace(strings, f" ([{UNSPACED}])", r"\1")
        return strings

    def get_config(self):
        """The constructor arguments, as plain JSON values."""
        vocabulary = self._wordpiece_vocabulary
        return {
            "level": self._level,
            "split": self._split,
            "lowercase": self._lowercase,
            "wordpiece_vocabulary": (
                vocabulary if vocabulary is None or isinstance(vocabulary, str) else list(vocabulary)
            ),
        }

    @classmethod
    def from_config(cls, config):
        expected = {"level", "split", "lowercase", "wordpiece_vocabulary"}
        unknown = set(config) - expected
        if unknown:
            raise ValueError(f"unknown Tokenizer config keys {sorted(unknown)}; expected some of {sorted(expected)}")
        return cls(**config)


def _checked_wordpieces(vocabulary):
    """None, the path (str) of an existing file, or a tuple of distinct, non-empty, single-line wordpieces."""
    if vocabulary is None:
        return None
    if isinstance(vocabulary, (str, os.PathLike)):
        path = os.fspath(vocabulary)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"no wordpiece vocabulary file at {path!r}")
        return path
    if not isinstance(vocabulary, (list, tuple)) or not vocabulary:
        raise ValueError(f"wordpiece_vocabulary must be a path or a non-empty list of wordpieces, got {vocabulary!r}")
    seen = set()
    for index, piece in enumerate(vocabulary):
        if not isinstance(piece, str) or not piece or "\n" in piece or "\r" in piece:
            raise ValueError(
                f"wordpiece_vocabulary[{index}] must be a non-empty string on one line, got {piece!r}"
            )
        if piece in seen:
            raise ValueError(f"wordpiece_vocabulary[{index}] repeats {piece!r}; wordpieces must be distinct")
        seen.add(piece)
    return tuple(vocabulary)


def _wordpiece_table(vocabulary):
    """What `WordpieceTokenizer` takes: a file path as is (TF Text makes a file table, an asset), or a table of the
    listed pieces (ids only mark membership; -1, the kernel's "not found", is the default)."""
    if isinstance(vocabulary, str):
        return vocabulary
    initializer = tf.lookup.KeyValueTensorInitializer(
        tf.constant(vocabulary, tf.string), tf.range(len(vocabulary), dtype=tf.int64)
    )
    return tf.lookup.StaticHashTable(initializer, default_value=-1)
