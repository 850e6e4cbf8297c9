"""The one training loop under MirroredStrategy and MultiWorkerMirroredStrategy (two local worker processes)."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

SCRIPT = os.path.join(os.path.dirname(__file__), "distributed_run.py")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def launch(kind, model_dir, output, *options, tf_config=None):
    env = {**os.environ, "PYTHONPATH": ROOT}
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, SCRIPT, kind, str(model_dir), str(output), *options],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, timeout=300):
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:  # a hang (e.g. a worker waiting for a collective) fails in bounded time
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"the run did not finish in {timeout} s:\n{stderr[-4000:]}") from None
    assert process.returncode == 0, stderr[-4000:]


def weights(result, prefix="w"):
    names = [k for k in result.files if k.startswith(prefix) and k[len(prefix):].isdigit()]
    return [result[k] for k in sorted(names, key=lambda k: int(k[len(prefix):]))]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_replicas_train_like_one_device_on_the_same_global_batch_and_resume_to_the_same_weights(tmp_path):
    # The loss is summed per replica and divided by the global batch, and the gradient is all-reduced before it is
    # clipped, so two replicas of 16 examples take the same steps as one device with 32. The one worker's pipeline
    # is the one-device stream batched by 16, and each step hands its next two batches to the two replicas, so the
    # global batch at every step is the one device's. The tolerance covers float32 sums taken in another order
    # (per replica, then across replicas): they differ in the last bits (~2e-7 in the weights after these 96 steps).
    single = launch("default", tmp_path / "single", tmp_path / "single.npz")
    finish(single)
    # The same process also trains to step 40 (mid-epoch 2 of 3) in another model_dir, and resumes there with a new
    # Trainer: a resumed run skips 2 batches per step already taken (one per replica) and must end where the
    # uninterrupted one does.
    mirrored = launch("mirrored2", tmp_path / "mirrored", tmp_path / "mirrored.npz", "--interrupt_at=40")
    finish(mirrored)
    one, two = np.load(tmp_path / "single.npz"), np.load(tmp_path / "mirrored.npz")
    assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
    for a, b in zip(weights(one), weights(two), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(one["losses"], two["losses"], rtol=1e-5)
    assert "at step 40 (epoch 2)" in str(two["resumed_printed"]), two["resumed_printed"]
    # Same process, same devices, same order of operations: the resumed run is the uninterrupted one to float
    # rounding (it is bit-identical on CPU; the tolerance only spares the test a change in TensorFlow's kernels).
    for a, b in zip(weights(two), weights(two, "resumed_w"), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(two["validation"], two["resumed_validation"], rtol=1e-6)


@pytest.mark.slow
def test_two_workers_read_their_own_shards_and_step_like_one_device_on_their_union(tmp_path):
    # 512 training examples, 16 per worker: 16 steps per epoch, 2 epochs. SGD, whose step is proportional to the
    # gradient: Adam's would hide a gradient off by a constant factor (e.g. the loss divided by the worker's batch).
    overrides = "--overrides=" + json.dumps({"train_size": 512, "epochs": 2, "optimizer": "sgd", "learning_rate": 0.1})
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        launch(
            "multi_worker",
            tmp_path / "run",
            tmp_path / f"worker{index}.npz",
            "--record",
            overrides,
            tf_config={"cluster": cluster, "task": {"type": "worker", "index": index}},
        )
        for index in range(2)
    ]
    try:
        for worker in workers:
            finish(worker)
    finally:  # a worker that failed leaves the other waiting for it: end both
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.communicate()
    chief, other = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert int(chief["replicas"]) == 2
    for a, b in zip(weights(chief), weights(other), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(chief["losses"], other["losses"])
    assert chief["losses"][-1] < chief["losses"][0], chief["losses"]  # it trained (a frozen model replays alike)
    # Only the chief wrote the run's files; the other worker's scratch checkpoints are gone.
    assert os.path.exists(tmp_path / "run" / "metrics.json")
    assert not os.listdir(tmp_path / "run" / ".workers" / "worker-1")

    # Each worker reads its own shard: the examples its pipeline yields (one replica per worker: [steps, 16]) are
    # never the other worker's, and in every epoch the two together read each training example exactly once.
    mine, theirs = chief["indices"][:, 0], other["indices"][:, 0]
    assert mine.shape == theirs.shape == (32, 16)
    assert not set(mine.ravel()) & set(theirs.ravel()), "the workers read the same examples"
    for epoch in range(2):
        both = np.concatenate([mine[epoch * 16:(epoch + 1) * 16], theirs[epoch * 16:(epoch + 1) * 16]])
        np.testing.assert_array_equal(np.sort(both.ravel()), np.arange(512), err_msg=f"epoch {epoch + 1}")

    # A one-device run with the task's own stream of 32 cannot match: each worker shuffles its own shard (with the
    # run's seed), so the global batches are not the one-device stream's. What must hold is that every step is the
    # one-device step on the union of the workers' batches: one device trained on exactly those global batches of
    # 32 ends with the workers' weights. The tolerance covers float32 sums taken in another order (per worker, then
    # across workers): they differ in the last bits (~1e-7 after these 32 steps).
    np.save(tmp_path / "global_batches.npy", np.concatenate([mine, theirs], axis=1))
    replay = launch("default", tmp_path / "replay", tmp_path / "replay.npz", overrides,
                    f"--replay={tmp_path / 'global_batches.npy'}")
    finish(replay)
    one = np.load(tmp_path / "replay.npz")
    assert int(one["replicas"]) == 1
    for a, b in zip(weights(chief), weights(one), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(chief["losses"], one["losses"], rtol=1e-5)
    np.testing.assert_allclose(chief["validation"], one["validation"], rtol=1e-5)
