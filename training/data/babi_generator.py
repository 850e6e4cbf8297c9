"""Seeded bAbI stories in the released file format (see `training.data.babi`), for tasks 1, 2 and 6.

    python -m training.data.babi_generator --out_dir=DIR [--seed=0] [--tasks=1,2,6] [--train_questions=1000]
        [--test_questions=1000]

writes `qa1_single-supporting-fact_{train,test}.txt`, `qa2_two-supporting-facts_{train,test}.txt` and
`qa6_yes-no-questions_{train,test}.txt` into DIR: 1,000 training and 1,000 test questions per task by default (the
"1k" setting of the released `en/` folder), which `training.data.babi.read_babi(DIR)` reads.

The world is the released tasks': actors Mary, John, Daniel, Sandra; places bathroom, hallway, garden, office,
bedroom, kitchen; objects football, apple, milk. Actors move ("Mary moved to the bathroom.", also went / journeyed /
travelled / went back to), pick objects up where they are ("John got the milk there.", also picked up / grabbed) and
put down what they hold ("John dropped the milk.", also discarded / put down / left); an object goes with its holder.

- QA1 (single supporting fact): moves only; "Where is Mary?<TAB>bathroom<TAB>1", supported by Mary's last move.
- QA2 (two supporting facts): moves, pick-ups and drops; "Where is the football?" answered by where its holder is
  (supported by the pick-up and the holder's last move), or by where it was dropped (the drop and the dropper's last
  move before it).
- QA6 (yes/no): moves only; "Is Daniel in the hallway?<TAB>no<TAB>3", supported by Daniel's last move; yes and no
  equally likely.

Every story has 5 questions (the last story of a file fewer, when the count is no multiple of 5), each after a group
of statements: 2 in QA1 and QA6 (as the released tasks, so a question sees 2, 4, ... 10 statements), 2 to 10 in QA2
(its released stories are longer too). A question is only asked about what the story so far answers (an actor who
has moved, an object someone has picked up), so every answer and supporting fact is right by construction.

The training and test files of a task are drawn from separate seeded streams; the same seed writes the same files.

Example:
    write_tasks("data/babi", tasks=[1, 2, 6], seed=0)  # the files, for `read_babi("data/babi")`
    splits = generated_splits(tasks=[1], seed=0)  # or the examples at once: {"train": [...], "validation": ...}
"""

import os
import sys
import tempfile

import numpy as np

from training.data import babi

NAMES = {1: "single-supporting-fact", 2: "two-supporting-facts", 6: "yes-no-questions"}
ACTORS = ("Mary", "John", "Daniel", "Sandra")
PLACES = ("bathroom", "hallway", "garden", "office", "bedroom", "kitchen")
OBJECTS = ("football", "apple", "milk")
MOVES = ("moved to", "went to", "journeyed to", "travelled to", "went back to")
PICK_UPS = ("got", "picked up", "grabbed")
DROPS = ("dropped", "discarded", "put down", "left")

QUESTIONS_PER_STORY = 5
# {task: (fewest, most) statements before each question}.
GROUP_SIZES = {1: (2, 2), 2: (2, 10), 6: (2, 2)}
# At most this many statements more than a group's size are added while waiting for an answerable question (QA2).
_WAIT = 50


def task_file_name(task, split):
    """The released file name of a task's split, e.g. "qa1_single-supporting-fact_train.txt"."""
    return f"qa{task}_{NAMES[task]}_{split}.txt"


def generate_lines(task, questions, rng):
    """The lines ("ID text", questions "ID question?<TAB>answer<TAB>IDs") of `questions` questions of `task`.

    Args:
        task: 1, 2 or 6.
        questions: the number of questions (stories of `QUESTIONS_PER_STORY` questions, the last one shorter).
        rng: a `numpy.random.Generator`.
    """
    lines = []
    while questions > 0:
        count = min(QUESTIONS_PER_STORY, questions)
        lines += _Story(task, rng).lines(count)
        questions -= count
    return lines


def write_tasks(out_dir, tasks=(1, 2, 6), seed=0, train_questions=1000, test_questions=1000):
    """Writes the train and test files of each task into `out_dir` (made if missing).

    Returns:
        {task: {"train": path, "test": path}}.
    """
    tasks = _checked_tasks(tasks)
    for name, value in (("train_questions", train_questions), ("test_questions", test_questions)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    for task in tasks:
        written[task] = {}
        for index, (split, questions) in enumerate((("train", train_questions), ("test", test_questions))):
            path = os.path.join(out_dir, task_file_name(task, split))
            lines = generate_lines(task, questions, np.random.default_rng([seed, task, index]))
            with open(path, "w", encoding="utf-8", newline="\n") as file:
                file.write("".join(line + "\n" for line in lines))
            written[task][split] = path
    return written


def generated_splits(tasks=(1, 2, 6), seed=0, train_questions=1000, test_questions=1000, validation_fraction=0.1):
    """The splits of freshly generated tasks, as `babi.read_babi` returns them for files that `write_tasks` wrote
    (the files go into a temporary directory, read back through the same reader, then removed).

    Returns:
        {"train": [babi.Example], "validation": [...], "test": [...]}; "validation" is carved from the training
        questions (`validation_fraction` of the stories, chosen with `seed`).
    """
    with tempfile.TemporaryDirectory() as directory:
        write_tasks(directory, tasks, seed, train_questions, test_questions)
        return babi.read_babi(directory, tasks=_checked_tasks(tasks), validation_fraction=validation_fraction,
                              seed=seed)


class _Story:
    """One story being told: the state of its world, and the IDs of the statements that set it."""

    def __init__(self, task, rng):
        self.task, self.rng = task, rng
        self.out = []  # the story's lines
        self.where = {}  # actor -> place
        self.moved_at = {}  # actor -> ID of its last move
        self.holder = {}  # object -> actor holding it
        self.picked_at = {}  # object -> ID of its pick-up by its holder
        self.dropped = {}  # object -> (place, ID of the drop, ID of the dropper's last move before it)

    def lines(self, questions):
        low, high = GROUP_SIZES[self.task]
        for _ in range(questions):
            size = int(self.rng.integers(low, high + 1))
            for _ in range(size):
                self.statement()
            for _ in range(_WAIT):
                question = self.question()
                if question is not None:
                    break
                self.statement()
            else:  # pragma: no cover - every statement of QA2 can lead to a pick-up; 50 in a row never do
                raise RuntimeError(f"task {self.task}: no answerable question after {size + _WAIT} statements")
            text, answer, supporting = question
            self.say(f"{text}\t{answer}\t{' '.join(str(i) for i in sorted(supporting))}")
        return self.out

    def say(self, text):
        self.out.append(f"{len(self.out) + 1} {text}")
        return len(self.out)

    def pick(self, items):
        return items[int(self.rng.integers(len(items)))]

    def statement(self):
        actions = []
        if self.task == 2:
            for actor, place in self.where.items():
                for thing in OBJECTS:
                    if thing not in self.holder and self.dropped.get(thing, (place,))[0] == place:
                        actions.append(("pick_up", actor, thing))
            actions += [("drop", actor, thing) for thing, actor in self.holder.items()]
        if not actions or self.rng.random() < 0.5:
            actor = self.pick(ACTORS)
            place = self.pick([p for p in PLACES if p != self.where.get(actor)])
            self.where[actor] = place
            self.moved_at[actor] = self.say(f"{actor} {self.pick(MOVES)} the {place}.")
            return
        kind, actor, thing = self.pick(actions)
        if kind == "pick_up":
            self.holder[thing] = actor
            self.dropped.pop(thing, None)
            self.picked_at[thing] = self.say(f"{actor} {self.pick(PICK_UPS)} the {thing} there.")
        else:
            del self.holder[thing]
            at = self.say(f"{actor} {self.pick(DROPS)} the {thing}.")
            self.dropped[thing] = (self.where[actor], at, self.moved_at[actor])

    def question(self):
        """(question, answer, supporting IDs) about what the story so far answers, or None if nothing yet."""
        if self.task in (1, 6):
            actor = self.pick(sorted(self.where, key=ACTORS.index))
            place = self.where[actor]
            if self.task == 1:
                return f"Where is {actor}?", place, [self.moved_at[actor]]
            asked = place if self.rng.random() < 0.5 else self.pick([p for p in PLACES if p != place])
            return f"Is {actor} in the {asked}?", "yes" if asked == place else "no", [self.moved_at[actor]]
        located = [thing for thing in OBJECTS if thing in self.holder or thing in self.dropped]
        if not located:
            return None
        thing = self.pick(located)
        if thing in self.holder:
            actor = self.holder[thing]
            return f"Where is the {thing}?", self.where[actor], [self.picked_at[thing], self.moved_at[actor]]
        place, dropped_at, moved_at = self.dropped[thing]
        return f"Where is the {thing}?", place, [dropped_at, moved_at]


def _checked_tasks(tasks):
    if isinstance(tasks, (str, int)) or not tasks or any(task not in NAMES for task in tasks):
        raise ValueError(f"tasks must be a non-empty list of task numbers from {sorted(NAMES)}, got {tasks!r}")
    if len(set(tasks)) != len(tasks):
        raise ValueError(f"tasks repeats a task number: {list(tasks)}")
    return list(tasks)


def main(argv):
    from absl import app
    from absl import flags

    from training.startup import absl_warnings_only

    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    options = flags.FLAGS
    try:
        tasks = [int(task) for task in options.tasks]
    except ValueError:
        print(f"error: --tasks must be task numbers from {sorted(NAMES)}, got {options.tasks}", file=sys.stderr)
        return 2
    try:
        written = write_tasks(options.out_dir, tasks, options.seed, options.train_questions, options.test_questions)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for task, paths in written.items():
        print(f"task {task}: {options.train_questions} training questions in {paths['train']}, "
              f"{options.test_questions} test questions in {paths['test']}")
    return 0


def _define_flags():
    # Defined only when run as a command: `training.train` imports this module for the task and has its own --seed.
    from absl import flags

    flags.DEFINE_string("out_dir", None, "Directory to write the task files into (made if missing).")
    flags.DEFINE_integer("seed", 0, "Seed of the stories; the same seed writes the same files.")
    flags.DEFINE_list("tasks", ["1", "2", "6"], f"The tasks to write: some of {sorted(NAMES)}.")
    flags.DEFINE_integer("train_questions", 1000, "Questions in each training file.", lower_bound=1)
    flags.DEFINE_integer("test_questions", 1000, "Questions in each test file.", lower_bound=1)
    flags.mark_flag_as_required("out_dir")


if __name__ == "__main__":
    from training.startup import run

    _define_flags()
    run(main)
