"""The bAbI question-answering tasks (Weston et al. 2015, "Towards AI-complete question answering: a set of
prerequisite toy tasks") in their released text format, as the `en/` and `en-10k/` folders hold them.

Layout: a directory with `qaN_<name>_train.txt` and `qaN_<name>_test.txt` per task N (1..20), e.g.
`qa1_single-supporting-fact_train.txt`. Each line is "ID text". IDs count the lines of one story from 1; an ID of 1
starts a new story. A statement line is "ID sentence."; a question line is
"ID question?<TAB>answer<TAB>supporting fact IDs", e.g.

    1 Mary moved to the bathroom.
    2 John went to the hallway.
    3 Where is Mary? <TAB>bathroom<TAB>1

The supporting fact IDs (space-separated) are the IDs of the statements that answer the question. Some tasks answer
with a comma-separated list (qa8 "apple,football", qa19 "n,s"): the answer is kept as that one string, one answer
class, as the memory-network papers treat it.

Reading rules:
- UTF-8, read by `training.data.text_files` (a leading byte-order mark is dropped; "\\r\\n" endings read as "\\n");
  blank lines are skipped.
- Every question sees the story so far: all the statements of its story before it (questions are not statements, so
  they are not part of the story), as in the papers' setup. `Example.supporting` holds the positions (from 0) of the
  supporting statements in `Example.story`, not the file's line IDs.
- Errors name the file and the line (counted from 1 in the file): an ID that is not a positive integer; an ID that is
  neither 1 (a new story) nor one more than the line before; a question line without its three tab-separated fields
  (a line that ends in "?" without tabs counts as one), or with an empty question or answer; a supporting fact ID that
  is not an integer, or that names no statement before the question (past the story, or a question line); a question
  with no statement before it in its story.

Tokenisation (`tokenize`): lower case, then words (runs of letters, digits and "_") and every other non-space
character as a token of its own: "Where is Mary?" -> ["where", "is", "mary", "?"], "Mary moved to the bathroom." ->
["mary", "moved", "to", "the", "bathroom", "."]. The punctuation is kept, as a token, so that a statement and a
question of the same words stay apart.

Validation: carved from each task's training file, a seeded `validation_fraction` (10% by default, as Sukhbaatar et
al. 2015) of its stories (whole stories, so that no story's questions are on both sides).

Example:
    splits = read_babi("tasks_1-20_v1-2/en", tasks=[1, 2, 6], seed=0)
    splits["train"][0]  # Example(story=[['mary', 'moved', 'to', 'the', 'bathroom', '.'], ...],
                        #         query=['where', 'is', 'mary', '?'], answer='bathroom', task=1, supporting=[0])
    words, answers = vocabulary(splits["train"]), answer_vocabulary(splits["train"])
"""

import collections
import os
import re

import numpy as np

from training.data import text_files

SPLITS = ("train", "validation", "test")

Example = collections.namedtuple("Example", "story query answer task supporting")
Example.__doc__ = """One question: `story` (the statements of its story before it, each a list of tokens), `query`
(the question's tokens), `answer` (the answer string, as in the file: a word, or a comma-separated list), `task` (the
task number N of `qaN_...`) and `supporting` (the positions, from 0, of the supporting statements in `story`)."""

_TOKEN = re.compile(r"\w+|[^\w\s]")
_FILE = re.compile(r"qa([0-9]+)_(.+)_(train|test)\.txt")


def tokenize(text):
    """The tokens of `text`: lower-cased words and single punctuation characters ("Where is Mary?" -> where is mary ?)."""
    return _TOKEN.findall(text.lower())


def find_task_files(data_dir, tasks=None):
    """The files of each task in `data_dir`.

    Args:
        data_dir: a directory in the bAbI layout (`qaN_<name>_train.txt`, `qaN_<name>_test.txt`).
        tasks: the task numbers to find (ints), or None for every task found.

    Returns:
        {task: {"train": path, "test": path}}, in the order of `tasks` (by number when None).

    Raises:
        FileNotFoundError: no directory `data_dir`, no bAbI file in it, or a requested task without both files.
        ValueError: `tasks` is not a non-empty list of distinct positive ints, or a task has two files of one split.
    """
    data_dir = os.fspath(data_dir)
    if not os.path.isdir(data_dir):
        what = "is not a directory" if os.path.exists(data_dir) else "does not exist"
        raise FileNotFoundError(f"bAbI directory {data_dir!r} {what}")
    if tasks is not None:
        if (isinstance(tasks, (str, int)) or not tasks
                or not all(isinstance(t, int) and not isinstance(t, bool) and t > 0 for t in tasks)):
            raise ValueError(f"tasks must be None (every task found) or a non-empty list of task numbers like "
                             f"[1, 2, 6], got {tasks!r}")
        if len(set(tasks)) != len(tasks):
            raise ValueError(f"tasks repeats a task number: {list(tasks)}")
    found = collections.defaultdict(dict)
    for name in sorted(os.listdir(data_dir)):
        match = _FILE.fullmatch(name)
        if not match:
            continue
        task, split = int(match.group(1)), match.group(3)
        if split in found[task]:
            raise ValueError(f"task {task} has two {split} files in {data_dir!r}: "
                             f"{os.path.basename(found[task][split])!r} and {name!r}; keep one")
        found[task][split] = os.path.join(data_dir, name)
    if not found:
        raise FileNotFoundError(f"no bAbI files (qaN_<name>_train.txt, qaN_<name>_test.txt) in {data_dir!r}")
    for task in tasks if tasks is not None else sorted(found):
        for split in ("train", "test"):
            if split not in found.get(task, {}):
                raise FileNotFoundError(
                    f"no {split} file for task {task} in {data_dir!r}: looked for qa{task}_<name>_{split}.txt; found "
                    f"tasks {sorted(found) or 'none'}"
                )
    return {task: found[task] for task in (tasks if tasks is not None else sorted(found))}


def read_stories(path, task):
    """The stories of one bAbI file: a list of stories, each a list of `Example`s (its questions, in file order).

    Raises ValueError, naming the file and line, where the rules of the module docstring are broken.
    """
    path = os.fspath(path)
    stories = []
    statements, line_kinds = None, None  # the story being read: its statements' tokens; {line ID: statement index}
    previous_id = None
    for number, line in _numbered_lines(path):
        where = f"line {number} of {path!r}"
        head, _, text = line.partition(" ")
        if not re.fullmatch(r"[0-9]+", head) or int(head) < 1:
            raise ValueError(f"{where}: the line ID {head!r} is not a positive integer; expected 'ID text', e.g. "
                             f"'1 Mary moved to the bathroom.'")
        line_id = int(head)
        if line_id == 1:
            statements, line_kinds = [], {}
            stories.append([])
        elif previous_id is None or line_id != previous_id + 1:
            expected = "1 (the file's first story)" if previous_id is None else f"{previous_id + 1} or 1 (a new story)"
            raise ValueError(f"{where}: line ID {line_id} is out of order; expected {expected}")
        previous_id = line_id
        if "\t" not in text:
            text = text.strip()
            if text.endswith("?"):
                raise ValueError(f"{where}: a question without its tab-separated fields; expected "
                                 f"'ID question?<TAB>answer<TAB>supporting fact IDs', got {line!r}")
            if not text:
                raise ValueError(f"{where}: line ID {line_id} has no text")
            line_kinds[line_id] = len(statements)
            statements.append(tokenize(text))
            continue
        fields = text.split("\t")  # a question with no supporting fact ends in a tab: three fields, the last empty
        if len(fields) != 3:
            raise ValueError(f"{where}: a question line needs 3 tab-separated fields (question, answer, supporting "
                             f"fact IDs), got {len(fields)}: {line!r}")
        question, answer, supporting = (field.strip() for field in fields)
        if not question or not answer:
            raise ValueError(f"{where}: the question and the answer must not be empty, got {line!r}")
        if not statements:
            raise ValueError(f"{where}: question {question!r} has no story (no statement before it since the story "
                             f"began at ID 1)")
        positions = []
        for field in supporting.split():
            if not re.fullmatch(r"[0-9]+", field):
                raise ValueError(f"{where}: supporting fact ID {field!r} is not an integer; expected the IDs of "
                                 f"statements before the question, separated by spaces")
            if int(field) not in line_kinds:
                reason = ("points past the story" if int(field) >= line_id or int(field) < 1
                          else "is a question, not a statement")
                raise ValueError(f"{where}: supporting fact ID {field} {reason}: the question is line ID {line_id}; "
                                 f"expected one of the statement IDs {sorted(line_kinds)}")
            positions.append(line_kinds[int(field)])
        stories[-1].append(Example(list(statements), tokenize(question), answer, task, positions))
    return stories


def read_babi(data_dir, tasks=None, validation_fraction=0.1, seed=0):
    """The examples of each split, all tasks together (each `Example` carries its task).

    Args:
        data_dir: a directory in the bAbI layout (e.g. the released `en/` or `en-10k/`, or a generator's output).
        tasks: the task numbers to read, or None (default) for every task found.
        validation_fraction: the share of each task's training stories held out as "validation" (0 <= f < 1).
        seed: int; the same seed picks the same validation stories.

    Returns:
        {"train": [Example], "validation": [Example], "test": [Example]}: by task (in the order of `tasks`), then in
        file order.
    """
    if isinstance(validation_fraction, bool) or not isinstance(validation_fraction, (int, float)) \
            or not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be a number in [0, 1), got {validation_fraction!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    splits = {split: [] for split in SPLITS}
    for task, paths in find_task_files(data_dir, tasks).items():
        train, validation = split_stories(read_stories(paths["train"], task), validation_fraction, [seed, task])
        splits["train"] += [example for story in train for example in story]
        splits["validation"] += [example for story in validation for example in story]
        splits["test"] += [example for story in read_stories(paths["test"], task) for example in story]
    return splits


def split_stories(stories, fraction, seed):
    """(kept, held_out): a seeded `fraction` of the stories (rounded) held out, both parts in their original order."""
    count = round(fraction * len(stories))
    held = set(np.random.default_rng(seed).permutation(len(stories))[:count].tolist())
    return ([s for i, s in enumerate(stories) if i not in held], [s for i, s in enumerate(stories) if i in held])


def vocabulary(examples):
    """Every token of the stories and queries of `examples`, and every answer string, sorted (a list of str).

    Answers join as whole strings (a comma-separated answer like "n,s" is one entry), so that a model that picks its
    answer from this vocabulary, as MemN2N does, can name every answer. Build the ids from it, e.g. with
    `training.text.vocabulary.Vocabulary`, from the training examples (or from all splits, as the papers do).
    """
    tokens = set()
    for example in examples:
        for sentence in example.story:
            tokens.update(sentence)
        tokens.update(example.query)
        tokens.add(example.answer)
    return sorted(tokens)


def answer_vocabulary(examples):
    """The distinct answer strings of `examples`, sorted."""
    return sorted({example.answer for example in examples})


def _numbered_lines(path):
    """(line number from 1, line) for every non-blank line of the UTF-8 file at `path`, without its line ending."""
    for number, line in enumerate(text_files.read_lines(path), start=1):
        if line.strip():
            yield number, line
