"""Parallel corpora as line-aligned text files: `DIR/{train,valid,test}.{SRC,TGT}`, e.g. `train.de` and
`train.en`, where line n of `train.de` translates to line n of `train.en` (the layout of the WMT and IWSLT
releases, Multi30k and the files that OpenNMT and fairseq read).

Reading rules:
- UTF-8, read by `training.data.text_files`: a leading byte-order mark is dropped; lines end at "\\n" (a "\\r\\n"
  ending loses its "\\r"); the final newline ends the last line, it does not start another.
- Each line is stripped of surrounding whitespace; inner whitespace is kept.
- A line blank on both sides is skipped (a separator, or a blank last line): it is not a pair.
- A line blank on one side only is an error: in a line-aligned corpus it means the files have slipped against each
  other (or a sentence lost its translation), and training on what follows would pair sentences with the wrong
  translations. Clean the corpus (drop the line in both files) rather than have the reader guess.
- Files of a split with different numbers of lines, a missing file, bytes that are not UTF-8, and a split without
  any pair are errors. Every error names the file (and the line, counted from 1, where there is one).
"""

import os
import re

from training.data import text_files

# {split: file stem}: the splits in the order they are read, and the stems of their files.
SPLIT_STEMS = {"train": "train", "validation": "valid", "test": "test"}

_LANGUAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def read_parallel_corpus(data_dir, source_language, target_language, splits=tuple(SPLIT_STEMS)):
    """The sentence pairs of every split.

    Args:
        data_dir: the corpus directory.
        source_language, target_language: the file extensions of the two sides, e.g. "de" and "en" (letters,
            digits, "_" and "-"; distinct).
        splits: which of "train", "validation", "test" to read (files `train.*`, `valid.*`, `test.*`).

    Returns:
        {split: (sources, targets)}: two line-aligned lists of str per split, in file order.

    Raises:
        FileNotFoundError: no directory `data_dir`, or no file for a split and side.
        ValueError: the rules in the module docstring are broken (the message names the file and the line).
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
        raise FileNotFoundError(f"parallel corpus directory {data_dir!r} {what}")
    for name, language in (("source_language", source_language), ("target_language", target_language)):
        if not isinstance(language, str) or not _LANGUAGE.fullmatch(language):
            raise ValueError(
                f"{name} must be a file extension like 'de' or 'zh' (letters, digits, '_' and '-'), got {language!r}"
            )
    if source_language == target_language:
        raise ValueError(f"source_language and target_language must differ, both are {source_language!r}")
    if isinstance(splits, str) or not splits:
        raise ValueError(f"splits must be a non-empty list of split names from {tuple(SPLIT_STEMS)}, got {splits!r}")
    for split in splits:
        if split not in SPLIT_STEMS:
            raise ValueError(f"unknown split {split!r}; expected some of {tuple(SPLIT_STEMS)}")
    corpus = {}
    for split in splits:
        paths = [os.path.join(data_dir, f"{SPLIT_STEMS[split]}.{language}")
                 for language in (source_language, target_language)]
        missing = [path for path in paths if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(
                f"no {split} file {missing[0]!r}: a parallel corpus needs {os.path.basename(paths[0])} and "
                f"{os.path.basename(paths[1])} in {data_dir!r}"
            )
        corpus[split] = read_pair(*paths)
    return corpus


def read_pair(source_path, target_path):
    """The (sources, targets) of two line-aligned files, by the rules in the module docstring."""
    source_lines, target_lines = read_lines(source_path), read_lines(target_path)
    if len(source_lines) != len(target_lines):
        longer, shorter = (
            (source_path, target_path) if len(source_lines) > len(target_lines) else (target_path, source_path)
        )
        first_extra = min(len(source_lines), len(target_lines)) + 1
        raise ValueError(
            f"{source_path!r} has {len(source_lines)} lines and {target_path!r} has {len(target_lines)}: line "
            f"{first_extra} of {longer!r} has no partner in {shorter!r}; line-aligned files must have equally many "
            "lines"
        )
    sources, targets = [], []
    for number, (source, target) in enumerate(zip(source_lines, target_lines), start=1):
        if not source and not target:
            continue
        if not source or not target:
            blank, other = (source_path, target_path) if not source else (target_path, source_path)
            raise ValueError(
                f"line {number} of {blank!r} is blank but line {number} of {other!r} is not: the files are out of "
                "line or a sentence lost its translation; drop the line from both files"
            )
        sources.append(source)
        targets.append(target)
    if not sources:
        raise ValueError(f"{source_path!r} and {target_path!r} hold no sentence pair")
    return sources, targets


def read_lines(path):
    """Every line of the UTF-8 file at `path`, stripped (blank lines kept as "", so that line numbers stay)."""
    return [line.strip() for line in text_files.read_lines(path)]
