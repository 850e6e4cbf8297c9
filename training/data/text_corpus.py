"""Plain-text corpora: the Penn Treebank layout (one sentence per line, one UTF-8 file per split), and a single text
file split by position.

The language-model PTB (Mikolov's preprocessing) ships `ptb.train.txt`, `ptb.valid.txt` and `ptb.test.txt`, with
words already lowercased, numbers as "N" and rare words as "<unk>"; other corpora in the same layout are often named
`train.txt`, `valid.txt`, `test.txt`. `read_corpus` reads them as sentences: lines stripped, blank lines left out.

A text corpus (`read_text_corpus`) is read verbatim instead, for character-level models: every line as it is
(surrounding spaces kept) and blank lines kept as empty lines, so that the lines of a split joined by "\\n" give back
its text (less "\\r" before a "\\n" and a leading byte-order mark, as `training.data.text_files` reads a file). It is
either one UTF-8 file, cut by position into train / validation / test (`split_text`: 90 / 5 / 5% of its characters,
each cut at the nearest line boundary), or a directory in the Penn Treebank layout. Without a path it is the tiny
Shakespeare text bundled with this package (`TINY_SHAKESPEARE`; provenance in `corpora/README.md`). Files whose name
ends in ".gz" are decompressed as they are read.
"""

import bisect
import os

import tensorflow as tf

from training.data import text_files

# The bundled text corpus: Karpathy's char-rnn "tiny Shakespeare" (1,115,394 characters), gzip-compressed.
TINY_SHAKESPEARE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpora", "tinyshakespeare.txt.gz")
# The SHA-256 and length (characters, all ASCII, so also bytes) of its decompressed text.
TINY_SHAKESPEARE_SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
TINY_SHAKESPEARE_CHARACTERS = 1115394

# The fractions of a single text file's characters in its train, validation and test splits, in that order, by
# position (not lines at random: neighbouring lines of a text are not independent), as char-rnn (95/5) and nanoGPT
# (90/10) split tiny Shakespeare into train and validation, with a test split besides.
SPLIT_FRACTIONS = {"train": 0.9, "validation": 0.05, "test": 0.05}

# {split: file names looked for, in order; the first that exists is read}.
SPLIT_FILES = {
    "train": ("ptb.train.txt", "train.txt"),
    "validation": ("ptb.valid.txt", "valid.txt"),
    "test": ("ptb.test.txt", "test.txt"),
}


def read_corpus(data_dir, files=None, verbatim=False):
    """The sentences of every split.

    Args:
        data_dir: the corpus directory.
        files: {split: file name, or a list of names tried in order}, relative to `data_dir`; only these splits
            are read. Default: `SPLIT_FILES`, the train, validation and test files of PTB (`ptb.train.txt` ...),
            or `train.txt`, `valid.txt`, `test.txt`.
        verbatim: False (default): lines stripped, blank lines left out (`read_lines`). True: every line as it is,
            blank lines kept (`read_verbatim_lines`), as a text corpus reads them.

    Returns:
        {split: [sentence str]}: each line stripped of surrounding whitespace, blank lines left out (unless
        `verbatim`), in file order.

    Raises:
        FileNotFoundError: no directory `data_dir`, or no file for a split (the message names the files looked for).
        ValueError: a file holds no sentence (with `verbatim`: no character), or is not UTF-8 (the message names the
            file, line, byte offset and byte).
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
        raise FileNotFoundError(f"corpus directory {data_dir!r} {what}")
    files = SPLIT_FILES if files is None else files
    if not isinstance(files, dict) or not files:
        raise ValueError(f"files must be a non-empty dict {{split: file name or list of names}}, got {files!r}")
    corpus = {}
    for split, names in files.items():
        names = (names,) if isinstance(names, (str, os.PathLike)) else tuple(names)
        if not names:
            raise ValueError(f"files[{split!r}] names no file")
        paths = [os.path.join(data_dir, os.fspath(name)) for name in names]
        found = [path for path in paths if os.path.isfile(path)]
        if not found:
            raise FileNotFoundError(
                f"no {split} file in corpus directory {data_dir!r}: looked for {', '.join(map(os.fspath, names))}"
            )
        corpus[split] = read_verbatim_lines(found[0]) if verbatim else read_lines(found[0])
    return corpus


def read_lines(path):
    """The non-blank lines of the UTF-8 text file at `path`, stripped (a leading byte-order mark is dropped).

    Lines end at "\\n" only, as `training.data.text_files` reads them ("\\r\\n" endings lose their "\\r"); other
    Unicode line separators stay inside a sentence. A file without a sentence, or with bytes that are not UTF-8, is a
    `ValueError`.
    """
    all_lines = text_files.read_lines(path)
    lines = [line.strip() for line in all_lines]
    lines = [line for line in lines if line]
    if not lines:
        state = "empty" if not all_lines else "blank (whitespace only)"
        raise ValueError(f"corpus file {path!r} is {state}; expected one sentence per line")
    return lines


def read_verbatim_lines(path):
    """Every line of the UTF-8 text file at `path` as it is, blank lines kept (`training.data.text_files.read_lines`:
    lines end at "\\n", a "\\r" before it goes with it). A file without a character is a `ValueError`."""
    lines = text_files.read_lines(path)
    if not lines:
        raise ValueError(f"text file {os.fspath(path)!r} is empty; expected UTF-8 text")
    return lines


def read_text_corpus(path=None):
    """The lines of every split of a text corpus, verbatim (see the module docstring).

    Args:
        path: a UTF-8 text file (".gz": gzip-compressed), split by position with `split_text`; or a directory in
            the Penn Treebank layout (`SPLIT_FILES`), one file per split; or None: the bundled tiny Shakespeare
            (`TINY_SHAKESPEARE`), split by position.

    Returns:
        {"train": [line], "validation": [line], "test": [line]}: every line without its "\\n", blank lines kept as
        "". A split's stream of characters with one `<eos>` per line is exactly its text, a newline for every
        `<eos>` (a text that does not end with a newline reads as if it did).

    Raises:
        FileNotFoundError: `path` does not exist (or a split's file in the directory is missing).
        ValueError: a file is empty or not UTF-8, or a single file is too short to give every split a line (each
            message names the file).
    """
    path = TINY_SHAKESPEARE if path is None else os.fspath(path)
    if os.path.isdir(path):
        return read_corpus(path, verbatim=True)
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"text corpus {path!r} does not exist; expected a UTF-8 text file (split 90/5/5 by position) or a "
            "directory in the Penn Treebank layout (ptb.train.txt, ptb.valid.txt, ptb.test.txt)"
        )
    text = text_files.read_text(path)
    if not text:
        raise ValueError(f"text file {path!r} is empty; expected UTF-8 text")
    try:
        texts = split_text(text)
    except ValueError as error:
        raise ValueError(f"text file {path!r}: {error}") from None
    return {split: text_files.split_lines(part) for split, part in texts.items()}


def split_text(text, fractions=None):
    """`text` cut by position into consecutive splits, each cut at a line boundary.

    The cut after split i is the line boundary (a position just after a "\\n") nearest to the running sum of the
    fractions up to i times the number of characters (ties go to the earlier boundary), and after the previous cut,
    so every split holds whole lines and at least one. With the default 90/5/5, the splits of tiny Shakespeare
    hold 1,003,856 / 55,780 / 55,758 of its 1,115,394 characters (90.0001 / 5.0009 / 4.9990%).

    Args:
        text: str.
        fractions: {split: fraction} of positive numbers summing to 1, in split order (default `SPLIT_FRACTIONS`).

    Returns:
        {split: str}: consecutive parts whose concatenation is `text`.

    Raises:
        ValueError: the fractions are not positive or do not sum to 1, or `text` has too few lines to give every
            split one.
    """
    fractions = SPLIT_FRACTIONS if fractions is None else fractions
    if not isinstance(fractions, dict) or not fractions or any(
        isinstance(f, bool) or not isinstance(f, (int, float)) or f <= 0 for f in fractions.values()
    ) or abs(sum(fractions.values()) - 1) > 1e-9:
        raise ValueError(f"fractions must be a dict {{split: fraction > 0}} summing to 1, got {fractions!r}")
    # Line boundaries strictly inside the text: a cut there leaves whole lines on both sides.
    boundaries, at = [], text.find("\n")
    while 0 <= at < len(text) - 1:
        boundaries.append(at + 1)
        at = text.find("\n", at + 1)
    names = list(fractions)
    if len(boundaries) < len(names) - 1:
        raise ValueError(
            f"{len(boundaries) + 1} line(s) cannot be split into {len(names)} parts ({', '.join(names)}) at line "
            f"boundaries; expected at least {len(names)} lines"
        )
    cuts, total = [0], 0.0
    for index, name in enumerate(names[:-1]):
        total += fractions[name]
        target = total * len(text)
        # Candidates: after the previous cut, and leaving a boundary for each later cut.
        low = bisect.bisect_right(boundaries, cuts[-1])
        high = len(boundaries) - (len(names) - 2 - index)
        if low >= high:
            raise ValueError(
                f"{len(boundaries) + 1} lines cannot be split into {len(names)} parts ({', '.join(names)}) at line "
                "boundaries"
            )
        at = min(max(bisect.bisect_left(boundaries, target, low, high), low), high - 1)
        if at > low and target - boundaries[at - 1] <= boundaries[at] - target:
            at -= 1
        cuts.append(boundaries[at])
    cuts.append(len(text))
    return {name: text[cuts[i]: cuts[i + 1]] for i, name in enumerate(names)}


def sentences_dataset(lines):
    """A `tf.data.Dataset` of the sentences, in order: scalar tf.string elements (tokenize them with
    `training.text.Tokenizer`, element by element or after `.batch`).

    Args:
        lines: a list of str (e.g. one split of `read_corpus`).
    """
    if isinstance(lines, (str, bytes)):
        raise ValueError(f"lines must be a list of strings, got the single string {lines[:40]!r}")
    lines = list(lines)
    for index, line in enumerate(lines):
        if not isinstance(line, (str, bytes)):
            raise ValueError(f"lines[{index}] must be a string, got {line!r} of type {type(line).__name__}")
    return tf.data.Dataset.from_tensor_slices(tf.constant(lines, dtype=tf.string, shape=[len(lines)]))
