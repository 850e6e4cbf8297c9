import pytest

from training.data import babi

# Two stories of task 1 as the released files write them (a space before the first tab, supporting IDs that skip the
# question lines), and a task-8 story whose answer is a comma-separated list.
QA1 = [
    "1 Mary moved to the bathroom.",
    "2 John went to the hallway.",
    "3 Where is Mary? \tbathroom\t1",
    "4 Daniel went back to the hallway.",
    "5 Sandra moved to the garden.",
    "6 Where is Daniel? \thallway\t4",
    "1 Sandra travelled to the office.",
    "2 Where is Sandra? \toffice\t1",
]
QA8 = [
    "1 Mary got the apple there.",
    "2 Mary picked up the football there.",
    "3 What is Mary carrying?\tapple,football\t1 2",
]


def write(path, lines, ending="\n"):
    path.write_text("".join(line + ending for line in lines), encoding="utf-8")
    return path


def write_tasks(directory, train=QA1, test=QA1[:3]):
    directory.mkdir(exist_ok=True)
    write(directory / "qa1_single-supporting-fact_train.txt", train)
    write(directory / "qa1_single-supporting-fact_test.txt", test)
    write(directory / "qa8_lists-sets_train.txt", QA8)
    write(directory / "qa8_lists-sets_test.txt", QA8)
    return directory


def test_tokenize_lowercases_and_splits_punctuation():
    assert babi.tokenize("Where is Mary?") == ["where", "is", "mary", "?"]
    assert babi.tokenize("Mary moved to the  bathroom.") == ["mary", "moved", "to", "the", "bathroom", "."]
    assert babi.tokenize("Is Daniel in the hallway?") == ["is", "daniel", "in", "the", "hallway", "?"]


def test_every_question_sees_its_story_so_far_and_a_new_story_starts_at_id_1(tmp_path):
    stories = babi.read_stories(write(tmp_path / "qa1_x_train.txt", QA1), task=1)
    assert [len(story) for story in stories] == [2, 1]
    first, second = stories[0]
    assert first == babi.Example(
        story=[["mary", "moved", "to", "the", "bathroom", "."], ["john", "went", "to", "the", "hallway", "."]],
        query=["where", "is", "mary", "?"], answer="bathroom", task=1, supporting=[0],
    )
    # The question line (ID 3) is not part of the story; supporting ID 4 is the story's third statement.
    assert len(second.story) == 4 and second.story[2][:2] == ["daniel", "went"]
    assert (second.query, second.answer, second.supporting) == (["where", "is", "daniel", "?"], "hallway", [2])
    (third,) = stories[1]
    assert third.story == [["sandra", "travelled", "to", "the", "office", "."]] and third.supporting == [0]


def test_comma_answers_stay_one_string_and_crlf_and_blank_lines_read(tmp_path):
    path = write(tmp_path / "qa8_lists-sets_train.txt", QA8[:2] + [""] + QA8[2:], ending="\r\n")
    ((example,),) = babi.read_stories(path, task=8)
    assert (example.answer, example.supporting, example.task) == ("apple,football", [0, 1], 8)


def test_read_babi_finds_the_tasks_and_carves_a_seeded_validation_split(tmp_path):
    directory = write_tasks(tmp_path / "en", train=QA1 * 5)  # ten stories of task 1
    write(directory / "README", ["not a task file"])
    splits = babi.read_babi(directory, seed=3)
    assert list(splits) == ["train", "validation", "test"]
    # Task 1 holds out 1 of its 10 stories (whole), task 8 round(0.1 * 1) = 0 of its one story.
    by_task = {split: [example.task for example in examples] for split, examples in splits.items()}
    assert by_task["train"].count(1) + by_task["validation"].count(1) == 15
    assert by_task["validation"].count(1) in (1, 2) and by_task["train"].count(8) == 1
    assert by_task["test"] == [1, 8]
    assert babi.read_babi(directory, seed=3) == splits
    others = [babi.read_babi(directory, seed=seed)["validation"] for seed in range(6)]
    assert any(other != others[0] for other in others), "the seed picks the validation stories"
    only_eight = babi.read_babi(directory, tasks=[8], validation_fraction=0.0)
    assert [example.answer for example in only_eight["train"]] == ["apple,football"] and not only_eight["validation"]


def test_vocabularies_hold_story_query_and_answer_words(tmp_path):
    splits = babi.read_babi(write_tasks(tmp_path / "en"), validation_fraction=0.0)
    words = babi.vocabulary(splits["train"])
    assert words == sorted(words) and len(set(words)) == len(words)
    assert {"mary", "?", ".", "bathroom", "apple,football", "carrying"} <= set(words)
    assert babi.answer_vocabulary(splits["train"]) == ["apple,football", "bathroom", "hallway", "office"]


def test_a_missing_directory_or_task_names_what_was_looked_for(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"bAbI directory '.*nowhere' does not exist"):
        babi.read_babi(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no bAbI files \(qaN_<name>_train\.txt, qaN_<name>_test\.txt\) in "
                                                r"'.*empty'"):
        babi.read_babi(tmp_path / "empty")
    directory = write_tasks(tmp_path / "en")
    with pytest.raises(FileNotFoundError, match=r"no train file for task 6 in '.*en': looked for "
                                                r"qa6_<name>_train\.txt; found tasks \[1, 8\]"):
        babi.read_babi(directory, tasks=[1, 6])
    (directory / "qa8_lists-sets_test.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"no test file for task 8 .*qa8_<name>_test\.txt"):
        babi.read_babi(directory)
    with pytest.raises(ValueError, match=r"tasks must be None .* got 1"):
        babi.read_babi(directory, tasks=1)
    with pytest.raises(ValueError, match=r"validation_fraction must be a number in \[0, 1\), got 1\.5"):
        babi.read_babi(directory, validation_fraction=1.5)


# Each malformed file, and the line its error names.
MALFORMED = {
    "non-integer ID": (["1 Mary moved to the bathroom.", "two John went to the hallway."], 2,
                       r"the line ID 'two' is not a positive integer"),
    "ID out of order": (QA1[:2] + ["4 Where is Mary?\tbathroom\t1"], 3,
                        r"line ID 4 is out of order; expected 3 or 1 \(a new story\)"),
    "ID skips back": (["1 Mary moved to the bathroom.", "2 John went to the hallway.", "2 Where is Mary?\tbathroom\t1"],
                      3, r"line ID 2 is out of order; expected 3 or 1 \(a new story\)"),
    "missing tab fields": (QA1[:2] + ["3 Where is Mary?\tbathroom"], 3,
                           r"a question line needs 3 tab-separated fields .* got 2"),
    "question without tabs": (QA1[:2] + ["3 Where is Mary?"], 3, r"a question without its tab-separated fields"),
    "empty answer": (QA1[:2] + ["3 Where is Mary?\t \t1"], 3, r"the question and the answer must not be empty"),
    "question with no story": (QA1[:6] + ["1 Where is Mary?\tbathroom\t"], 7,
                               r"question 'Where is Mary\?' has no story"),
    "supporting past the story": (QA1[:2] + ["3 Where is Mary?\tbathroom\t5"], 3,
                                  r"supporting fact ID 5 points past the story: the question is line ID 3"),
    "supporting a question": (QA1[:5] + ["6 Where is Daniel?\thallway\t3"], 6,
                              r"supporting fact ID 3 is a question, not a statement"),
    "non-integer supporting": (QA1[:2] + ["3 Where is Mary?\tbathroom\tone"], 3,
                               r"supporting fact ID 'one' is not an integer"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_lines_are_errors_naming_file_and_line(tmp_path, case):
    lines, number, message = MALFORMED[case]
    directory = write_tasks(tmp_path / "en", train=QA1 + lines)
    with pytest.raises(ValueError, match=rf"^line {number + len(QA1)} of '.*qa1_single-supporting-fact_train\.txt': "
                                         rf"{message}"):
        babi.read_babi(directory)


def test_a_file_must_start_with_id_1(tmp_path):
    path = write(tmp_path / "qa1_x_test.txt", ["2 Mary moved to the bathroom."])
    with pytest.raises(ValueError, match=r"^line 1 of '.*qa1_x_test\.txt': line ID 2 is out of order; expected 1 "
                                         r"\(the file's first story\)"):
        babi.read_stories(path, task=1)
