"""The adding-problem export the serving benchmarks serve: trained for a few steps, exported, with one example."""

import os
import socket
import subprocess
import sys

import numpy as np


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(scratch):
    """Trains a tiny run and exports it; returns (export base, one example [1, T, 2] as a float32 array)."""
    run = os.path.join(scratch, "run")
    base = os.path.join(scratch, "saved")
    subprocess.run([sys.executable, "-m", "training.train", "--task=adding", "--preset=short", f"--model_dir={run}",
                    "--steps=20", "--override=train_size=512,validation_size=64,test_size=64"],
                   check=True, capture_output=True)
    subprocess.run([sys.executable, "-m", "serving.export", f"--model_dir={run}", "--name=adding",
                    f"--export_base={base}"], check=True, capture_output=True)
    example = np.random.default_rng(0).uniform(size=(1, 30, 2)).astype("float32")
    example[0, :, 1] = 0.0
    example[0, [3, 20], 1] = 1.0
    return base, example
