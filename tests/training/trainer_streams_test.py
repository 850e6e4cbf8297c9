"""The trainer's stream mode (truncated BPTT): the state carried from window to window, gradients cut at a window's
start, every token of a split scored, resume, and replicas (`Task.streams`, `training.data.streams`)."""

import io
import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.training.tasks import runs
from training.trainer import Trainer

# A small LSTM LM on the grammar corpus, without dropout (so that a step is deterministic) or clipping.
SMALL = dict(
    train_size=60,
    validation_size=20,
    test_size=20,
    batch_size=4,
    model_options={"units": 8, "embedding_dim": 6, "num_layers": 2, "dropout": 0.0},
    clip_global_norm=None,
    checkpoint_every_steps=2,
)


def make(model_dir, out=None, **overrides):
    task, config = runs.make_config("language_model", "lstm", **{**SMALL, **overrides})
    return Trainer(task, config, str(model_dir), progress="lines", out=out or io.StringIO())


def numpy(x):
    return keras.ops.convert_to_numpy(x)


def windows(trainer, count):
    """The first `count` training windows the trainer's task gives one device."""
    data = trainer.task.stream_data(trainer.config, "train", trainer.config["batch_size"])
    return [tuple(np.asarray(t) for t in batch) for batch in data.take(count)]


def twin(trainer):
    """A model with the trainer's model's architecture and (current) weights."""
    model = trainer.task.build_model(trainer.config)
    model(np.zeros((1, 2), "int32"))
    model.set_weights(trainer.model.get_weights())
    return model


def test_each_step_back_propagates_within_its_window_from_the_state_the_previous_window_left(tmp_path):
    # Two windows per epoch, three steps: window 1 from the initial state, window 2 from the state window 1 ended
    # in (computed with the weights of step 1, its gradient stopped), then window 1 again from the initial state
    # (a new epoch). Plain SGD, reproduced by hand with a tape.
    trainer = make(tmp_path / "run", optimizer="sgd", learning_rate=0.5, bptt_steps=48, steps=3)
    assert trainer.steps_per_epoch == 2
    model = twin(trainer)
    batches = windows(trainer, 3)
    assert [bool(b[3].all()) for b in batches] == [True, False, True]
    state = model.initial_state(4)
    for inputs, targets, weights, first in batches:
        if first.all():
            state = model.initial_state(4)
        with tf.GradientTape() as tape:
            logits, new_state = model(inputs, initial_state=state, mask=weights > 0, return_state=True)
            loss = tf.reduce_sum(trainer.task.loss(trainer.config, targets, logits)) / 4
        gradients = tape.gradient(loss, model.trainable_variables)
        for variable, gradient in zip(model.trainable_variables, gradients):
            variable.assign(variable - 0.5 * tf.convert_to_tensor(gradient))
        state = new_state
    trainer.fit()
    for a, b in zip(trainer.model.get_weights(), model.get_weights()):
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_the_carried_state_after_n_windows_is_the_model_s_state_after_their_concatenation(tmp_path):
    # A learning rate too small to change a float32 weight: the weights stay those of the start, and the carried
    # state must be what one call over the windows' tokens, end to end, leaves. The steps are compiled with XLA.
    task, config = runs.make_config(
        "language_model", "lstm", **{**SMALL, "optimizer": "sgd", "learning_rate": 1e-30, "bptt_steps": 5, "steps": 4}
    )
    trainer = Trainer(task, config, str(tmp_path / "run"), jit_compile=True, progress="lines", out=io.StringIO())
    model = twin(trainer)
    trainer.fit()
    assert trainer.steps_per_epoch > 4
    tokens = np.concatenate([b[0] for b in windows(trainer, 4)], axis=1)
    _, expected = model(tokens, return_state=True)
    assert len(trainer.carried_state) == len(expected) == 4  # (h, c) of two layers
    for carried, one_call in zip(trainer.carried_state, expected):
        np.testing.assert_allclose(numpy(carried), numpy(one_call), atol=1e-5)


def test_evaluation_scores_every_token_of_the_split_with_the_state_carried_through_it(tmp_path):
    # One evaluation stream: the whole validation split, its first token the context of all the others.
    trainer = make(tmp_path / "run", bptt_steps=7, steps=3, eval_batch_size=1)
    trainer.fit()
    ids = trainer.task.corpus(trainer.config).stream_ids("validation")
    logits = twin(trainer)(ids[None, :-1])
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ids[None, 1:], logits=logits)
    metrics = trainer.evaluate("validation")
    np.testing.assert_allclose(metrics["perplexity"], float(np.exp(np.mean(numpy(nll)))), rtol=1e-5)
    # And the training streams were left where they were.
    assert trainer.eval_state[0].shape[0] == 1 and trainer.carried_state[0].shape[0] == 4


@pytest.mark.parametrize("stream_loss", ["mean", "sum"])
def test_the_evaluation_loss_is_per_token_whatever_the_split_s_last_window(tmp_path, stream_loss):
    # Two evaluation streams in windows of 7: a stream's positions are no multiple of 7, so its last window is
    # partial (padded). The loss is still the split's NLL per token ("mean"), or per window of bptt_steps tokens
    # ("sum"), like the training loss on full windows: ln(perplexity), times 7.
    trainer = make(tmp_path / "run", bptt_steps=7, steps=2, eval_batch_size=2, stream_loss=stream_loss)
    trainer.fit()
    positions = len(trainer.task.corpus(trainer.config).stream_ids("validation")) // 2 - 1
    assert positions % 7, positions
    metrics = trainer.evaluate("validation")
    scale = 7 if stream_loss == "sum" else 1
    np.testing.assert_allclose(metrics["loss"], scale * np.log(metrics["perplexity"]), rtol=1e-5)


def test_eval_batch_size_must_split_evenly_over_the_replicas():
    trainer = Trainer.__new__(Trainer)
    trainer.config, trainer.replicas, trainer.global_batch = {"eval_batch_size": 3}, 2, 8
    with pytest.raises(ValueError, match=r"eval_batch_size \(3\) must be a multiple of the 2 replicas"):
        trainer._eval_streams()


def test_a_resumed_stream_run_equals_the_uninterrupted_one(tmp_path):
    # Stopped mid-epoch: the resumed run must start from the checkpoint's carried state and skip to the window
    # after the last one trained on (random window lengths: the same drawn windows; `streams_test` checks that
    # skipping gives exactly the windows that follow).
    options = dict(bptt_steps=6, random_length=True, steps=9)
    whole = make(tmp_path / "whole", **options)
    whole.fit()
    assert whole.steps_per_epoch > 9
    make(tmp_path / "split", **{**options, "steps": 4}).fit()
    second = make(tmp_path / "split", **options)
    second.fit()
    assert int(second.optimizer.iterations) == 9
    for a, b in zip(whole.model.get_weights(), second.model.get_weights()):
        np.testing.assert_allclose(a, b, atol=1e-6)
    for a, b in zip(whole.carried_state, second.carried_state):
        np.testing.assert_allclose(numpy(a), numpy(b), atol=1e-6)


# Under a MirroredStrategy over two logical CPUs, or a MultiWorkerMirroredStrategy of two local processes (each its
# own process: devices are split, and the cluster read, before TensorFlow starts).
REPLICAS_SCRIPT = """
import io, sys
import numpy as np
import tensorflow as tf
kind, model_dir, steps, output = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
if kind == "mirrored":
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from training import strategies
from tests.training.tasks import runs
from training.trainer import Trainer
strategy = {"mirrored": lambda: tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
            "multi_worker": lambda: strategies.make("multi_worker"), "default": lambda: None}[kind]()
replicas = strategy.num_replicas_in_sync if strategy else 1
task, config = runs.make_config(
    "language_model", "lstm", train_size=60, validation_size=20, test_size=20, batch_size=4 // replicas,
    model_options={"units": 8, "embedding_dim": 6, "num_layers": 2, "dropout": 0.0}, bptt_steps=6,
    steps=steps, checkpoint_every_steps=2)
trainer = Trainer(task, config, model_dir, strategy=strategy, progress="lines", out=io.StringIO())
trainer.fit()
np.savez(output, validation=trainer.evaluate("validation")["perplexity"],
         **{f"w{i}": w for i, w in enumerate(trainer.model.get_weights())},
         **{f"s{i}": v.numpy() for i, v in enumerate(trainer.carried_state)})
"""


def start(kind, model_dir, steps, output, tf_config=None):
    environment = {**os.environ, "PYTHONPATH": os.getcwd(), "TF_CPP_MIN_LOG_LEVEL": "2"}
    if tf_config is not None:
        environment["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen([sys.executable, "-c", REPLICAS_SCRIPT, kind, str(model_dir), str(steps), str(output)],
                            env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(process, timeout=300):
    try:
        _, stderr = process.communicate(timeout=timeout)
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-3000:]


def assert_same_run(one, other):
    assert sorted(one.files) == sorted(other.files)
    for key in one.files:
        np.testing.assert_allclose(one[key], other[key], atol=1e-5, err_msg=key)


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    """9 steps of one device with 4 streams."""
    directory = tmp_path_factory.mktemp("one")
    finish(start("default", directory / "run", 9, directory / "one.npz"))
    return np.load(directory / "one.npz")


@pytest.mark.slow
def test_two_replicas_carry_their_own_streams_like_one_device_and_resume(one_device, tmp_path):
    # Two replicas of 2 streams each take the steps one device takes with 4 streams: replica r carries the state of
    # streams 2r, 2r + 1. The mirrored run is also stopped after 4 steps and resumed to 9.
    finish(start("mirrored", tmp_path / "two", 4, tmp_path / "first.npz"))
    finish(start("mirrored", tmp_path / "two", 9, tmp_path / "two.npz"))
    assert_same_run(one_device, np.load(tmp_path / "two.npz"))


@pytest.mark.slow
def test_two_workers_carry_their_own_streams_like_one_device(one_device, tmp_path):
    # Each worker's pipeline serves its replica's 2 streams; both workers hold every stream's state (gathered).
    sockets = [socket.socket() for _ in range(2)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    cluster = {"worker": [f"127.0.0.1:{s.getsockname()[1]}" for s in sockets]}
    for s in sockets:
        s.close()
    workers = [start("multi_worker", tmp_path / "run", 9, tmp_path / f"worker{index}.npz",
                     {"cluster": cluster, "task": {"type": "worker", "index": index}}) for index in range(2)]
    for worker in workers:
        finish(worker)
    for index in range(2):
        assert_same_run(one_device, np.load(tmp_path / f"worker{index}.npz"))
