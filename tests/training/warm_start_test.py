"""Warm starting (`--init_from`): a fresh run's model starts from another run's best checkpoint, with clear errors
when the two models differ, the source's vocabulary for a language model, and a resumed run's own checkpoint."""

import io
import json
import os

import keras
import numpy as np
import pytest

from training.trainer import Trainer
from tests.training.tasks import runs

SMALL = {"length": 10, "train_size": 256, "validation_size": 64, "test_size": 64, "units": 8}


def adding_run(model_dir, init_from=None, out=None, **overrides):
    task, config = runs.make_config("adding", "short", **{**SMALL, **overrides})
    return Trainer(task, config, str(model_dir), progress="lines", out=out or io.StringIO(), init_from=init_from)


def values(variables):
    return [keras.ops.convert_to_numpy(v) for v in variables]


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A small adding run whose best checkpoint is not its last one's step (epochs of 8 steps)."""
    model_dir = tmp_path_factory.mktemp("source") / "run"
    trainer = adding_run(model_dir, epochs=3, batch_size=32)
    trainer.fit()
    trainer.restore("best")
    return str(model_dir), trainer


def test_a_fresh_run_starts_from_the_best_checkpoint_with_a_fresh_optimizer(tmp_path, source):
    source_dir, source_trainer = source
    # Fine-tuning on other data (another seed and sequence length) at another learning rate.
    trainer = adding_run(tmp_path, init_from=source_dir, seed=5, length=20, learning_rate=1e-3, steps=3)
    for a, b in zip(values(trainer.model.trainable_variables), values(source_trainer.model.trainable_variables)):
        np.testing.assert_array_equal(a, b)
    assert int(trainer.optimizer.iterations) == 0 and int(trainer.step) == 0
    with open(os.path.join(source_dir, "best", "best.json")) as f:
        best_step = json.load(f)["step"]
    record = {"model_dir": os.path.abspath(source_dir), "checkpoint": os.path.join(os.path.abspath(source_dir), "best",
                                                                                     f"ckpt-{best_step}"),
              "step": best_step}
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["init_from"] == record
    trainer.fit()
    assert int(trainer.optimizer.iterations) == 3


def test_a_run_without_init_from_records_none(tmp_path):
    adding_run(tmp_path, steps=1)
    with open(tmp_path / "config.json") as f:
        assert json.load(f)["init_from"] is None


def test_a_resumed_run_keeps_its_own_checkpoint_and_record(tmp_path, source):
    source_dir, _ = source
    first = adding_run(tmp_path / "run", init_from=source_dir, steps=4)
    first.fit()
    trained = values(first.model.trainable_variables)
    with open(tmp_path / "run" / "config.json") as f:
        record = json.load(f)["init_from"]
    # The same command again, or without --init_from: the run resumes at step 4 from its own weights.
    for init_from in (source_dir, None):
        out = io.StringIO()
        again = adding_run(tmp_path / "run", init_from=init_from, out=out, steps=4)
        again.restore("latest")
        assert int(again.step) == 4
        for a, b in zip(values(again.model.trainable_variables), trained):
            np.testing.assert_array_equal(a, b)
        with open(tmp_path / "run" / "config.json") as f:
            assert json.load(f)["init_from"] == record
        assert ("init_from is ignored" in out.getvalue()) == bool(init_from)


def test_a_different_size_names_the_variables_and_both_shapes(tmp_path, source):
    source_dir, _ = source
    with pytest.raises(ValueError, match=r"--init_from=.*run \(checkpoint ckpt-\d+\): variable shapes differ "
                                         r"\(lstm_0/lstm_cell/kernel: \(2, 32\) there, \(2, 64\) here; "
                                         r"lstm_0/lstm_cell/recurrent_kernel: \(8, 32\) there, \(16, 64\) here; "
                                         r".*readout/kernel: \(8, 1\) there, \(16, 1\) here\)"):
        adding_run(tmp_path / "run", init_from=source_dir, units=16)
    assert not (tmp_path / "run").exists(), "a run that cannot start writes nothing"


def test_another_architecture_lists_the_variables_that_differ(tmp_path, source):
    source_dir, _ = source
    with pytest.raises(ValueError, match=r"the two models have different variables \(only in its model: "
                                         r"lstm_0/lstm_cell/kernel, .*; only in this one: gru_0/gru_cell/kernel, "):
        adding_run(tmp_path, init_from=source_dir, cell="gru")
    with pytest.raises(ValueError, match=r"only in this one: lstm_1/lstm_cell/kernel"):
        adding_run(tmp_path, init_from=source_dir, num_layers=2)


def test_the_source_must_be_a_trained_run_of_the_same_task(tmp_path, source):
    source_dir, _ = source
    with pytest.raises(ValueError, match=r"--init_from: no run in '.*nowhere' \(no config.json\)"):
        adding_run(tmp_path, init_from=str(tmp_path / "nowhere"))
    task, config = runs.make_config("latching", "short", train_size=256, validation_size=64, test_size=64)
    with pytest.raises(ValueError, match=r"holds a run of task 'adding', and this run's task is 'latching'"):
        Trainer(task, config, str(tmp_path / "latching"), out=io.StringIO(), init_from=source_dir)
    adding_run(tmp_path / "untrained", steps=1)  # config.json, no checkpoint
    with pytest.raises(ValueError, match=r"the run in '.*untrained' has no best checkpoint yet; train it first"):
        adding_run(tmp_path / "run", init_from=str(tmp_path / "untrained"))


# Language models: token ids must keep their meaning.

def write_corpus(directory, train):
    os.makedirs(directory, exist_ok=True)
    for name, text in (("ptb.train.txt", train), ("ptb.valid.txt", train), ("ptb.test.txt", train)):
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return str(directory)


def lm_run(model_dir, data_dir, init_from=None, **overrides):
    task, config = runs.make_config("language_model", "ptb_small", data_dir=data_dir, batch_size=2,
                                    model_options={"units": 8, "embedding_dim": 8, "num_layers": 1}, **overrides)
    return Trainer(task, config, str(model_dir), progress="lines", out=io.StringIO(), init_from=init_from)


def test_a_language_model_keeps_the_vocabulary_of_the_run_it_starts_from(tmp_path):
    old = write_corpus(tmp_path / "old", "the cat sat\nthe dog sat\nthe cat ran\n")
    new = write_corpus(tmp_path / "new", "a bird sat\na bird sang\nthe cat sang\n")
    lm_run(tmp_path / "source", old, steps=2).fit()
    source_tokens = ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "sat", "dog", "ran"]
    # On its own, the new corpus would number its words differently (and have other ones) ...
    alone = lm_run(tmp_path / "alone", new, steps=1)
    assert alone.task.corpus(alone.config).vocabulary.tokens[4:] == ["a", "bird", "sang", "cat", "sat", "the"]
    # ... fine-tuned, it keeps the source's ids: its words that the source lacks are <unk> (1).
    tuned = lm_run(tmp_path / "tuned", new, init_from=str(tmp_path / "source"), steps=1)
    corpus = tuned.task.corpus(tuned.config)
    assert corpus.vocabulary.tokens == source_tokens
    assert list(corpus.splits["train"][0][0]) == [2, 1, 1, 6]  # <bos> a bird sat
    assert list(corpus.splits["train"][0][2]) == [2, 4, 5, 1]  # <bos> the cat sang
    with open(tmp_path / "tuned" / "config.json") as f:
        assert json.load(f)["vocabulary"] == source_tokens
    tuned.fit()
    # Resumed without --init_from, the run keeps the vocabulary it started with.
    resumed = lm_run(tmp_path / "tuned", new, steps=1)
    assert resumed.task.corpus(resumed.config).vocabulary.tokens == source_tokens


def test_a_language_model_with_another_tokenizer_cannot_start_from_a_run(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", "the cat sat\nthe dog sat\n")
    lm_run(tmp_path / "source", corpus, steps=1).fit()
    tokenizer = {"level": "word", "split": "whitespace", "lowercase": True}
    with pytest.raises(ValueError, match=r"splits text with tokenizer \{.*'lowercase': False.*\}, this run with "
                                         r"\{.*'lowercase': True.*\}; .*give it the same tokenizer"):
        lm_run(tmp_path / "tuned", corpus, init_from=str(tmp_path / "source"), tokenizer=tokenizer)
