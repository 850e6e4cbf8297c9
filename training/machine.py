"""The machine a run or a benchmark runs on: its processor's name and a measured speed, so that figures in minutes
can be told apart by machine (the same code runs at different speeds on machines sold under one name)."""

import math
import os
import platform
import re
import time

import tensorflow as tf


def cpu_name():
    """The processor's model name (Linux's /proc/cpuinfo), else what `platform` says."""
    try:
        with open("/proc/cpuinfo") as f:
            match = re.search(r"model name\s*:\s*(.+)", f.read())
        return match.group(1).strip() if match else platform.processor() or platform.machine()
    except OSError:
        return platform.processor() or platform.machine()


def matmul_gflops(size=1024, repeats=10):
    """This machine's float32 matrix-product speed through TensorFlow, in GFLOP/s (size x size, the best of three
    rounds)."""
    matrix = tf.random.stateless_normal([size, size], seed=[0, 0])
    product = tf.function(lambda x: tf.linalg.matmul(x, x))
    product(matrix).numpy()
    best = math.inf
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeats):
            result = product(matrix)
        result.numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best / 1e9


def describe():
    """{"processor", "cores", "matmul_gflops"} of this machine."""
    return {"processor": cpu_name(), "cores": os.cpu_count(), "matmul_gflops": round(matmul_gflops(), 1)}
