"""The bAbI task: encoding, random noise, linear start, config errors, and a short training run on generated QA1."""

import io

import numpy as np
import pytest
import tensorflow as tf

from training import evaluate
from training.tasks.babi import add_random_noise
from training.trainer import Trainer
from tests.training.tasks import runs

# A story of five statements and two questions (task 1), twice, and a short one; a test file with a word training
# never saw.
LONG = """1 Mary moved to the bathroom.
2 John went to the hallway.
3 Where is Mary?\tbathroom\t1
4 Daniel went back to the garden.
5 Sandra travelled to the office.
6 Mary journeyed to the kitchen.
7 Where is Mary?\tkitchen\t6
"""
TRAIN = LONG + LONG + """1 John moved to the office.
2 Where is John?\toffice\t1
"""
TEST = """1 Mary moved to the attic.
2 Where is Mary?\tattic\t1
"""


def make_config(preset="memn2n_small", **overrides):
    return runs.make_config("babi", preset, **overrides)


def files(tmp_path):
    (tmp_path / "qa1_single-supporting-fact_train.txt").write_text(TRAIN)
    (tmp_path / "qa1_single-supporting-fact_test.txt").write_text(TEST)
    return str(tmp_path)


def words(data, ids):
    return [data.vocabulary[i] for i in ids if i]


def test_stories_keep_their_last_memory_size_sentences_padded_with_ids_from_the_training_vocabulary(tmp_path):
    # validation_fraction 0.3 of 3 stories: one is held out, so a long story is in training, where every word is.
    task, config = make_config(data_dir=files(tmp_path), validation_fraction=0.3, memory_size=3, random_noise=0.0)
    data = task.data(config)
    assert data.vocabulary[:2] == ["<pad>", "<unk>"] and data.vocabulary[2:] == sorted(data.vocabulary[2:])
    assert data.slots == 3 and data.words == 7 and data.query_words == 4  # "daniel went back to the garden ."
    (story, query), (answer, tasks) = data.splits["train"]
    assert len(data.examples["train"]) >= 4 and data.examples["train"][1].answer == "kitchen"
    story, query, answer, tasks = story[:2], query[:2], answer[:2], tasks[:2]  # the long story's two questions
    assert story.dtype == np.int32 and story.shape == (2, 3, 7) and query.shape == (2, 4)
    # The second question's story has 5 statements: the last 3 are kept, oldest first.
    assert [" ".join(words(data, sentence)) for sentence in story[1]] == [
        "daniel went back to the garden .", "sandra travelled to the office .", "mary journeyed to the kitchen ."]
    # The first question sees 2 statements: the third slot is empty; short sentences end in padding.
    assert words(data, story[0, 0]) == ["mary", "moved", "to", "the", "bathroom", "."]
    assert story[0, 1, 6] == 0 and not story[0, 2].any()
    assert words(data, query[1]) == ["where", "is", "mary", "?"]
    assert [data.vocabulary[i] for i in answer] == ["bathroom", "kitchen"] and list(tasks) == [1, 1]
    # A word that only the test split holds is <unk> (id 1), in the story and as the answer.
    (test_story, _), (test_answer, _) = data.splits["test"]
    assert test_story[0, 0, 4] == 1 and test_answer[0] == 1


def test_random_noise_inserts_up_to_ceil_fraction_empty_slots_keeping_the_sentences_in_order():
    rng = np.random.default_rng(0)
    story = np.zeros((64, 12, 3), np.int32)
    counts = rng.integers(1, 11, size=64)
    for row, count in enumerate(counts):
        story[row, :count] = rng.integers(1, 50, size=(count, 3))
    noised = add_random_noise(story, 0.3, tf.constant([7, 1], tf.int64)).numpy()
    blanks_seen = []
    for row, count in enumerate(counts):
        filled = noised[row].any(axis=-1)
        np.testing.assert_array_equal(noised[row][filled], story[row, :count])  # the sentences, in order
        last = np.flatnonzero(filled)[-1]
        blanks = last + 1 - count  # empty slots among the sentences (a trailing blank is only padding)
        assert 0 <= blanks <= min(np.ceil(0.3 * count), 12 - count)
        blanks_seen.append(blanks)
    assert max(blanks_seen) >= 2 and min(blanks_seen) == 0
    again = add_random_noise(story, 0.3, tf.constant([7, 1], tf.int64)).numpy()
    other = add_random_noise(story, 0.3, tf.constant([7, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(noised, again)
    assert not np.array_equal(noised, other)
    np.testing.assert_array_equal(add_random_noise(story, 0.0, tf.constant([7, 1], tf.int64)).numpy(), story)


def test_noise_is_added_to_training_batches_only_seeded_and_resumed_exactly():
    task, config = make_config(tasks=[1], random_noise=0.5)
    (stories, _), _ = task.split_data(config)["train"]
    batches = [x[0].numpy() for x, _, _ in task.dataset(config, "train", 32).take(6)]

    def gaps(story):
        filled = story.any(axis=-1)
        return (~filled[: np.flatnonzero(filled)[-1]]).sum() if filled.any() else 0

    assert sum(gaps(story) for batch in batches for story in batch) > 0
    # The same seed gives the same stream; skipping 4 batches gives the 5th and 6th, noise included.
    again = [x[0].numpy() for x, _, _ in task.dataset(config, "train", 32).take(6)]
    resumed = [x[0].numpy() for x, _, _ in task.dataset(config, "train", 32, skip_batches=4).take(2)]
    for a, b in zip(batches, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(batches[4:], resumed):
        np.testing.assert_array_equal(a, b)
    # Evaluation batches are the encoded stories, as they are.
    validation = np.concatenate([x[0].numpy() for x, _, _ in task.dataset(config, "validation", 32)])
    np.testing.assert_array_equal(validation, task.split_data(config)["validation"][0][0])
    assert all(gaps(story) == 0 for story in validation)
    # Without noise, training batches are the encoded stories too.
    _, plain = make_config(tasks=[1], random_noise=0.0)
    assert all(gaps(story) == 0 for x, _, _ in task.dataset(plain, "train", 32).take(6) for story in x[0].numpy())
    assert stories.shape[1] == task.data(config).slots


class _Model:
    def __init__(self):
        self.switch = 1.0

    @property
    def linear_start_switch(self):
        return tf.constant(self.switch)

    def set_linear_start(self, on):
        self.switch = 1.0 if on else 0.0


def test_linear_start_ends_when_the_validation_loss_does_not_fall_below_the_best():
    task, config = make_config(tasks=[1])
    model = _Model()
    task.after_validation(config, model, 1, {"loss": 2.0}, float("inf"))
    task.after_validation(config, model, 2, {"loss": 1.5}, 2.0)
    assert model.switch == 1.0
    task.after_validation(config, model, 3, {"loss": 1.6}, 1.5)
    assert model.switch == 0.0
    model.switch = 1.0  # a run without linear start never touches the switch
    task.after_validation({**config, "linear_start": False}, model, 4, {"loss": 9.0}, 1.5)
    assert model.switch == 1.0


def test_linear_start_epochs_ends_it_after_that_many_epochs_whatever_the_validation_loss():
    # The authors' code (MemN2N-babi-matlab, config_babi.m): ls_nepochs = 20 epochs of linear start, then the softmax.
    task, config = make_config(tasks=[1], linear_start_epochs=3)
    task.check_config(config)
    model = _Model()
    task.after_validation(config, model, 1, {"loss": 2.0}, float("inf"))
    task.after_validation(config, model, 2, {"loss": 5.0}, 2.0)  # a rise: the paper's rule would end it here
    assert model.switch == 1.0
    task.after_validation(config, model, 3, {"loss": 1.0}, 2.0)  # a fall, but 3 epochs are done
    assert model.switch == 0.0
    model.switch = 1.0
    task.after_validation({**config, "linear_start": False}, model, 4, {"loss": 9.0}, 1.5)
    assert model.switch == 1.0


def test_linear_start_turns_off_in_training_and_a_resumed_run_decides_as_the_uninterrupted_one(tmp_path):
    overrides = {"tasks": [1], "train_questions": 300, "test_questions": 100, "epochs": 12}
    task, config = make_config(**overrides)

    def trainer(directory, **more):
        return Trainer(task, {**config, **more}, str(tmp_path / directory), progress="lines", out=io.StringIO())

    whole = trainer("whole")
    assert float(whole.model.linear_start_switch.numpy()) == 1.0
    whole.fit()
    switches = [float(whole.model.linear_start_switch.numpy())]
    assert switches == [0.0]
    # The epoch linear start ended: the first whose validation loss was not below the best before it.
    losses = [entry["validation"]["loss"] for entry in whole.history]
    ended = next(i for i in range(1, len(losses)) if losses[i] >= min(losses[:i]))
    first = trainer("split", epochs=ended + 1)  # stops right after the epoch that ended it
    first.fit()
    assert float(first.model.linear_start_switch.numpy()) == 0.0
    before = trainer("split", epochs=ended)
    assert float(before.model.linear_start_switch.numpy()) == 1.0  # a fresh model starts with linear start on ...
    resumed = trainer("split")
    resumed.fit()  # ... and a resumed one takes the switch from its checkpoint
    assert float(resumed.model.linear_start_switch.numpy()) == 0.0
    assert resumed.history[-1]["validation"]["loss"] == pytest.approx(whole.history[-1]["validation"]["loss"], rel=1e-5)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"joint": False}, r"joint=false trains one model per task: name exactly one task per run.*tasks=None"),
        ({"joint": False, "tasks": [1, 2]}, r"name exactly one task per run.*tasks=\[1, 2\]"),
        ({"tasks": [3]}, r"without --data_dir the stories are generated, for tasks \[1, 2, 6\] only; got tasks=\[3\]"),
        ({"tasks": [1, 1]}, r"tasks must be None .* or a list of distinct task numbers"),
        ({"tasks": "1"}, r"tasks must be None .*got '1'"),
        ({"random_noise": 1.5}, r"random_noise must be a fraction in \[0, 1\] \(0 = off\), got 1.5"),
        ({"validation_fraction": 0.0}, r"validation_fraction must be a number in \(0, 1\), got 0.0"),
        ({"memory_size": 0}, r"memory_size must be a positive int, got 0"),
        ({"linear_start_epochs": 0}, r"linear_start_epochs must be None \(linear start ends when the validation "
                                     r"loss stops falling\) or a positive number of epochs, got 0"),
    ],
)
def test_config_errors_name_the_value_and_what_was_expected(overrides, message):
    task, config = make_config(**overrides)
    with pytest.raises(ValueError, match=message):
        task.check_config(config)


def test_joint_picks_the_joint_model_and_one_task_per_run_the_per_task_model(tmp_path):
    task, config = make_config("memn2n")
    assert task.model_name(config) == "memn2n_babi_joint"
    _, single = make_config("memn2n", joint=False, tasks=[2])
    task.check_config(single)
    assert task.model_name(single) == "memn2n_babi"


def test_metrics_are_the_error_per_task_their_mean_and_the_failed_tasks():
    task, config = make_config(tasks=[1, 6])
    means = {"loss": 1.0, "accuracy": 0.7, "correct_1": 0.5, "share_1": 0.5, "correct_6": 0.2, "share_6": 0.5}
    summary = task.summarize(config, means)
    assert summary == pytest.approx({"loss": 1.0, "accuracy": 0.7, "error_1": 0.0, "error_6": 0.6,
                                     "mean_error": 0.3, "failed_tasks": 1.0})


@pytest.mark.slow
def test_the_small_preset_learns_generated_qa1(tmp_path):
    # The paper's 1k QA1 error is 0.0%; this CPU-sized run (30 epochs of Adam, seed 0) measured 1.3% on the 1,000
    # generated test questions (its errors: an actor's older move picked over the latest). The threshold, 3%, leaves
    # margin for other platforms' numerics; chance (the most common answer) is 86% error.
    task, config = make_config(tasks=[1])
    runs.train_best(task, config, str(tmp_path))
    metrics = evaluate.evaluate(str(tmp_path))["metrics"]
    assert metrics["error_1"] <= 0.03 and metrics["failed_tasks"] == 0


@pytest.mark.slow
def test_the_papers_recipe_learns_generated_qa6_jointly_with_qa1(tmp_path):
    # The yes/no task needs the empty memories in the softmax (MemN2N `empty_memories`, on in the presets). This run
    # (the `memn2n` preset, joint on QA1 and QA6, 40 epochs, seed 0) measured 5.6% QA6 test error with them and 45.2%
    # without (chance: 50%); the paper's joint 1k QA6 error is 2.8%. The threshold, 20%, is far from both.
    task, config = make_config("memn2n", tasks=[1, 6], epochs=40)
    runs.train_best(task, config, str(tmp_path))
    metrics = evaluate.evaluate(str(tmp_path))["metrics"]
    assert metrics["error_6"] <= 0.2 and metrics["error_1"] <= 0.03
