"""The machine description runs and experiments record."""

import os

from training import machine


def test_the_description_names_the_processor_and_measures_a_positive_speed():
    described = machine.describe()
    assert set(described) == {"processor", "cores", "matmul_gflops"}
    assert isinstance(described["processor"], str) and described["processor"]
    assert described["cores"] == os.cpu_count() and described["matmul_gflops"] > 0
    # The speed is 2 n^3 flops per product over the time taken: a tiny product takes less time, at a lower rate.
    assert 0 < machine.matmul_gflops(size=8, repeats=1)
