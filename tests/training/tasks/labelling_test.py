"""The labelling task: the running sum modulo K, teacher forcing for feedback labellers, and the export."""


import numpy as np
import pytest
import tensorflow as tf

from serving import export
from tests.helpers.saved_model import load_with_session
from tests.training.tasks import runs


def make_config(preset="feedback", **overrides):
    return runs.make_config("labelling", preset, **overrides)


def test_tags_are_the_running_sum_modulo_k():
    task, config = make_config(classes=7, min_length=3, max_length=9)
    inputs, targets = task.generate(config, 200, np.random.default_rng(0))
    assert {len(x) for x in inputs} <= set(range(3, 10)) and len({len(x) for x in inputs}) > 3
    for tokens, stored in zip(inputs, targets):
        assert tokens.min() >= 1 and tokens.max() <= 7
        running, tags = 0, []
        for token in tokens:
            running = (running + token) % 7
            tags.append(running)
        np.testing.assert_array_equal(stored - 1, tags)  # stored as tag + 1; 0 is padding


def test_feedback_labellers_train_teacher_forced_and_evaluate_on_their_own_outputs():
    task, config = make_config(classes=5, min_length=4, max_length=6, batch_size=4)
    x, y, w = next(iter(task.dataset(config, "train", 4)))
    tokens, previous = x
    tags = y.numpy() - 1
    np.testing.assert_array_equal(previous[:, 0], 5)  # the start tag
    mask = y.numpy()[:, 1:] > 0
    np.testing.assert_array_equal(previous.numpy()[:, 1:][mask], tags[:, :-1][mask])
    x, _, _ = next(iter(task.dataset(config, "validation", 4)))
    assert isinstance(x, tf.Tensor) and x.shape[0] == 4  # tokens only: the labeller runs on its own predictions
    _, plain = make_config("plain")
    assert not task.feedback(plain) and task.feedback(config)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    task, config = make_config(train_size=3000, epochs=2)
    model_dir = str(tmp_path_factory.mktemp("labelling") / "run")
    trainer = runs.train_best(task, config, model_dir)
    return task, config, model_dir, trainer


@pytest.mark.slow
def test_a_feedback_labeller_learns_the_transduction(trained):
    task, config, _, trainer = trained
    test = trainer.evaluate("test")
    # Chance is 1/K = 0.2. Fed its previous tag, the labeller has a 5 x 5 table to learn; free-running on its own
    # outputs, one wrong tag spoils the rest of the sequence, so 95% of the tags right means the table was learnt:
    # it gets 100% after two epochs of 3,000 sequences here.
    assert test["tag_accuracy"] >= 0.95, test
    assert test["sequence_accuracy"] >= 0.8, test


@pytest.mark.slow
def test_export_tags_token_strings_in_both_loaders(trained, tmp_path):
    task, config, model_dir, trainer = trained
    path = export.export(model_dir, "labeller", export_base=str(tmp_path / "saved"))
    inputs = task.split_data(config)["test"][0][:3]
    width = max(len(x) for x in inputs)
    strings = np.array([[str(t) for t in x] + [""] * (width - len(x)) for x in inputs], dtype=object)
    ids = np.array([list(x) + [0] * (width - len(x)) for x in inputs], "int32")
    expected = trainer.model.predict_tags(ids).numpy()
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    for outputs in (loaded(tokens=tf.constant(strings)), load_with_session(path, {"tokens": strings})):
        tags = np.asarray(outputs["tags"])
        for row, x in enumerate(inputs):
            assert [t.decode() for t in tags[row, : len(x)]] == [str(t) for t in expected[row, : len(x)]]
            assert all(t == b"" for t in tags[row, len(x):])
        np.testing.assert_array_equal(np.asarray(outputs["lengths"]), [len(x) for x in inputs])
    with pytest.raises(tf.errors.InvalidArgumentError, match="tokens must be the strings 1..K"):
        loaded(tokens=tf.constant([["1", "9"]]))
