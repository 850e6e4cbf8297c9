import re
import subprocess
import sys

import numpy as np
import pytest

from training.data import babi
from training.data import babi_generator

# The test's own reading of the stories (typed here, not taken from the module).
MOVE = re.compile(r"(Mary|John|Daniel|Sandra) (?:moved|went|journeyed|travelled|went back) to the "
                  r"(bathroom|hallway|garden|office|bedroom|kitchen)\.")
PICK_UP = re.compile(r"(Mary|John|Daniel|Sandra) (?:got|picked up|grabbed) the (football|apple|milk) there\.")
DROP = re.compile(r"(Mary|John|Daniel|Sandra) (?:dropped|discarded|put down|left) the (football|apple|milk)\.")
WHERE_ACTOR = re.compile(r"Where is (Mary|John|Daniel|Sandra)\?")
WHERE_OBJECT = re.compile(r"Where is the (football|apple|milk)\?")
IS_IN = re.compile(r"Is (Mary|John|Daniel|Sandra) in the (bathroom|hallway|garden|office|bedroom|kitchen)\?")
FILES = {1: "qa1_single-supporting-fact", 2: "qa2_two-supporting-facts", 6: "qa6_yes-no-questions"}


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    directory = tmp_path_factory.mktemp("babi")
    written = babi_generator.write_tasks(directory, seed=0)
    return directory, written


def simulate(lines, task):
    """Checks every question of a file against the story told so far; returns what it saw, per kind of question."""
    seen = {"stories": 0, "questions": 0, "yes": 0, "no": 0, "held": 0, "dropped": 0, "groups": []}
    group = 0
    for line in lines:
        head, text = line.split(" ", 1)
        line_id = int(head)
        if line_id == 1:
            seen["stories"] += 1
            place, held, lying, questions = {}, {}, {}, 0  # actor -> (place, move ID); object -> (actor, ID) ...
        if "\t" not in text:
            group += 1
            if match := MOVE.fullmatch(text):
                actor, where = match.groups()
                assert place.get(actor, (None,))[0] != where, line
                place[actor] = (where, line_id)
            elif match := PICK_UP.fullmatch(text):
                assert task == 2, line
                actor, thing = match.groups()
                assert actor in place and thing not in held, f"{line}: a pick-up by an actor nowhere, or of a held object"
                assert lying.get(thing, (place[actor][0],))[0] == place[actor][0], f"{line}: the object is elsewhere"
                lying.pop(thing, None)
                held[thing] = (actor, line_id)
            elif match := DROP.fullmatch(text):
                actor, thing = match.groups()
                assert held.get(thing, (None,))[0] == actor, f"{line}: {actor} does not hold the {thing}"
                del held[thing]
                lying[thing] = (place[actor][0], line_id, place[actor][1])
            else:
                raise AssertionError(f"not a statement of the bAbI world: {line!r}")
            continue
        question, answer, supporting = text.split("\t")
        supporting = [int(i) for i in supporting.split()]
        seen["questions"] += 1
        seen["groups"].append(group)
        group = 0
        questions += 1
        assert questions <= 5, "five questions per story"
        if task == 1:
            (actor,) = WHERE_ACTOR.fullmatch(question).groups()
            assert (answer, supporting) == (place[actor][0], [place[actor][1]]), line
        elif task == 6:
            actor, where = IS_IN.fullmatch(question).groups()
            expected = "yes" if place[actor][0] == where else "no"
            assert (answer, supporting) == (expected, [place[actor][1]]), line
            seen[expected] += 1
        else:
            (thing,) = WHERE_OBJECT.fullmatch(question).groups()
            if thing in held:
                actor, picked_at = held[thing]
                expected = (place[actor][0], sorted([picked_at, place[actor][1]]))
                seen["held"] += 1
            else:
                where, dropped_at, moved_at = lying[thing]
                expected = (where, sorted([dropped_at, moved_at]))
                seen["dropped"] += 1
            assert (answer, supporting) == expected, line
            assert len(set(supporting)) == 2, f"{line}: two supporting facts"
    return seen


@pytest.mark.parametrize("task", [1, 2, 6])
def test_every_answer_and_supporting_fact_is_right_when_the_story_is_replayed(generated, task):
    directory, written = generated
    for split in ("train", "test"):
        path = directory / f"{FILES[task]}_{split}.txt"
        assert written[task][split] == str(path)
        seen = simulate(path.read_text(encoding="utf-8").splitlines(), task)
        # The 1k setting: 1,000 questions, five per story.
        assert (seen["questions"], seen["stories"]) == (1000, 200)
        if task in (1, 6):
            assert set(seen["groups"]) == {2}, "two statements before each question, as the released tasks"
        else:
            assert min(seen["groups"]) >= 2 and max(seen["groups"]) > 5
            assert seen["held"] > 100 and seen["dropped"] > 100, seen
        if task == 6:
            assert 400 < seen["yes"] < 600, "yes and no about equally often"


def test_the_reader_reads_the_files_back(generated):
    directory, _ = generated
    splits = babi.read_babi(directory, seed=0)
    for task in (1, 2, 6):
        counts = {split: sum(example.task == task for example in examples) for split, examples in splits.items()}
        # 20 of the 200 training stories held out, five questions each.
        assert counts == {"train": 900, "validation": 100, "test": 1000}
    # 200 QA1 test stories: each begins with a question that sees two statements.
    assert sum(example.task == 1 and len(example.story) == 2 for example in splits["test"]) == 200
    # The vocabulary is the released tasks' words.
    words = set(babi.vocabulary(splits["train"] + splits["test"]))
    world = {"mary", "john", "daniel", "sandra", "bathroom", "hallway", "garden", "office", "bedroom", "kitchen",
             "football", "apple", "milk", "moved", "went", "journeyed", "travelled", "back", "to", "the", "got",
             "picked", "up", "grabbed", "there", "dropped", "discarded", "put", "down", "left", "where", "is", "in",
             "yes", "no", ".", "?"}
    assert words == world
    assert babi.answer_vocabulary(splits["test"]) == sorted(
        ["bathroom", "hallway", "garden", "office", "bedroom", "kitchen", "yes", "no"])
    # The supporting positions, read back, name the statements that answer.
    for example in splits["test"]:
        if example.task == 1:
            (position,) = example.supporting
            assert example.story[position][0] == example.query[2] and example.story[position][-2] == example.answer


def test_generated_splits_are_the_written_files_read_back(generated):
    directory, _ = generated
    splits = babi_generator.generated_splits(tasks=[6, 1], seed=0)
    assert splits == babi.read_babi(directory, tasks=[6, 1], seed=0)
    assert [len(examples) for examples in splits.values()] == [1800, 200, 2000]


def test_seeded_and_train_and_test_drawn_apart(tmp_path):
    first = babi_generator.write_tasks(tmp_path / "a", tasks=[2], seed=5, train_questions=50, test_questions=50)
    again = babi_generator.write_tasks(tmp_path / "b", tasks=[2], seed=5, train_questions=50, test_questions=50)
    other = babi_generator.write_tasks(tmp_path / "c", tasks=[2], seed=6, train_questions=50, test_questions=50)

    def text(written, split):
        with open(written[2][split], encoding="utf-8") as file:
            return file.read()

    assert text(first, "train") == text(again, "train") and text(first, "test") == text(again, "test")
    assert text(first, "train") != text(other, "train")
    assert text(first, "train") != text(first, "test")
    # A count that is no multiple of five ends with a shorter story.
    lines = babi_generator.generate_lines(1, 7, np.random.default_rng(0))
    assert sum("\t" in line for line in lines) == 7 and [line.split()[0] for line in lines[-3:]] == ["4", "5", "6"]


def test_bad_arguments_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match=r"tasks must be a non-empty list of task numbers from \[1, 2, 6\], got \[3\]"):
        babi_generator.write_tasks(tmp_path, tasks=[3])
    with pytest.raises(ValueError, match=r"train_questions must be a positive int, got 0"):
        babi_generator.write_tasks(tmp_path, train_questions=0)


def test_the_command_writes_the_files(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "training.data.babi_generator", f"--out_dir={tmp_path / 'en'}", "--seed=0",
         "--tasks=1,6", "--train_questions=20", "--test_questions=10"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(path.name for path in (tmp_path / "en").iterdir()) == [
        "qa1_single-supporting-fact_test.txt", "qa1_single-supporting-fact_train.txt",
        "qa6_yes-no-questions_test.txt", "qa6_yes-no-questions_train.txt"]
    assert "task 6: 20 training questions in" in result.stdout
    expected = babi_generator.write_tasks(tmp_path / "api", tasks=[1, 6], seed=0, train_questions=20,
                                          test_questions=10)
    with open(expected[6]["test"], encoding="utf-8") as file:
        assert (tmp_path / "en" / "qa6_yes-no-questions_test.txt").read_text(encoding="utf-8") == file.read()
    bad = subprocess.run([sys.executable, "-m", "training.data.babi_generator", f"--out_dir={tmp_path}", "--tasks=4"],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "error: tasks must be a non-empty list of task numbers" in bad.stderr, bad.stderr
    missing = subprocess.run([sys.executable, "-m", "training.data.babi_generator"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "--out_dir" in missing.stderr, missing.stderr
