"""The NTM benchmark (`benchmarks.memory`): its analytic memory size, one configuration measured in a child process,
and a tiny run end to end that writes its section. No timing assertions: the figures are only checked to exist."""

import json
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import memory


def test_the_analytic_size_is_one_float32_memory_matrix_per_time_step():
    # The reference: the bytes of an array holding the [batch, N, M] memory at every one of T steps.
    for batch, steps, n, m in ((32, 41, 128, 20), (1, 1, 1, 1), (3, 7, 5, 2)):
        assert memory.bptt_memory_bytes(batch, steps, n, m) == np.zeros((batch, steps, n, m), "float32").nbytes
    assert memory.bptt_memory_bytes(2, 3, 4, 5, dtype_bytes=2) == np.zeros((2, 3, 4, 5), "float16").nbytes
    # The section's own example: batch 32, T = 41 of the copy task, the preset's 128 x 20 memory.
    assert memory.bptt_memory_bytes(32, 41, 128, 20) == 13_434_880


@pytest.mark.slow
def test_a_child_measures_one_configuration():
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--child=64x16", "--batch=4", "--length=2", "--steps=1",
         "--output="],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(memory.RESULT)]
    assert len(lines) == 1, result.stdout
    measured = json.loads(lines[0][len(memory.RESULT):])
    assert measured["time_steps"] == 2 * 2 + 1  # the copy task: L vectors, a delimiter, L answer steps
    assert measured["rss_growth"] > 0 and measured["tf_peak"] >= 0 and measured["seconds_per_step"] > 0
    # Backpropagation through time must keep at least the memory of every step: one [batch, N, M] tensor pushed.
    assert measured["memory_sized_per_step"] >= 1
    assert measured["kept_per_step"] >= memory.bptt_memory_bytes(4, 1, 64, 16)


@pytest.mark.slow
def test_a_tiny_run_writes_its_section(tmp_path):
    output = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.memory", "--rounds=1", "--steps=1", "--batch=8", "--length=4",
         "--sizes=16", "--noxla", "--grid=16x4,64x16", f"--output={output}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert "<!-- benchmarks.memory -->" in text and "<!-- /benchmarks.memory -->" in text
    assert "| model | XLA | parameters | ms/step | steps/s | sequences/s |" in text
    speed = [line for line in text.splitlines() if line.startswith(("| LSTM ", "| NTM "))]
    assert [row.split("|")[1].strip() for row in speed] == ["LSTM 120", "NTM 16x20", "NTM 128x20"], text
    for row in speed:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert cells[1] == "no" and min(float(cell.replace(",", "")) for cell in cells[3:6]) > 0, row
        if row.startswith("| NTM"):
            assert float(cells[6]) > 0 and float(cells[7]) > 0, row  # the ratios to the LSTM
    header = "| N | M | parameters | analytic BPTT memory (MB) | graph keeps (MB) | allocator peak (MB) "
    assert header in text
    grid = [line for line in text.splitlines() if line.startswith(("| 16 | 4 |", "| 64 | 16 |"))]
    assert len(grid) == 2, text
    for row in grid:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        n, m = int(cells[0]), int(cells[1])
        assert cells[3] == f"{8 * 9 * n * m * 4 / 2**20:,.2f}", row  # batch 8, T = 9, float32; MB, 2 decimals
        assert float(cells[4]) > 0 and float(cells[6]) > 0, row  # what the graph keeps, the resident growth
    assert "Per step the loop pushes" in text and "The resident growth, through all the configurations" in text


def test_a_malformed_configuration_is_refused():
    result = subprocess.run([sys.executable, "-m", "benchmarks.memory", "--grid=128", "--output="],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert "a memory configuration must be NxM with positive ints (e.g. 128x20), got '128'" in result.stderr
