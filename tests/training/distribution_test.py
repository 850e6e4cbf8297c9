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


def launch(kind, model_dir, output, tf_config=None):
    env = {**os.environ, "PYTHONPATH": ROOT}
    if tf_config is not None:
        env["TF_CONFIG"] = json.dumps(tf_config)
    return subprocess.Popen(
        [sys.executable, SCRIPT, kind, str(model_dir), str(output)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, timeout=600):
    stdout, stderr = process.communicate(timeout=timeout)
    assert process.returncode == 0, stderr[-4000:]


def weights(result):
    return [result[k] for k in sorted((k for k in result.files if k.startswith("w")), key=lambda k: int(k[1:]))]


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_two_replicas_train_exactly_like_one_device_with_the_same_global_batch(tmp_path):
    # The loss is summed per replica and divided by the global batch, and the gradient is all-reduced before it is
    # clipped, so two replicas of 16 examples take the same steps as one device with 32.
    single = launch("default", tmp_path / "single", tmp_path / "single.npz")
    finish(single)
    mirrored = launch("mirrored2", tmp_path / "mirrored", tmp_path / "mirrored.npz")
    finish(mirrored)
    one, two = np.load(tmp_path / "single.npz"), np.load(tmp_path / "mirrored.npz")
    assert int(one["replicas"]) == 1 and int(two["replicas"]) == 2
    for a, b in zip(weights(one), weights(two)):
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(one["losses"], two["losses"], rtol=1e-4)


@pytest.mark.slow
def test_two_workers_end_with_identical_weights_and_a_falling_loss(tmp_path):
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = [
        launch(
            "multi_worker",
            tmp_path / "run",
            tmp_path / f"worker{index}.npz",
            {"cluster": cluster, "task": {"type": "worker", "index": index}},
        )
        for index in range(2)
    ]
    for worker in workers:
        finish(worker)
    chief, other = np.load(tmp_path / "worker0.npz"), np.load(tmp_path / "worker1.npz")
    assert int(chief["replicas"]) == 2
    for a, b in zip(weights(chief), weights(other)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(chief["losses"], other["losses"])
    assert chief["losses"][-1] < 0.5 * chief["losses"][0], chief["losses"]
    # Only the chief wrote the run's files; the other worker's scratch checkpoints are gone.
    assert os.path.exists(tmp_path / "run" / "metrics.json")
    assert not os.listdir(tmp_path / "run" / ".workers" / "worker-1")
