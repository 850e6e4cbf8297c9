"""The speech benchmark (`benchmarks.speech`): a tiny run end to end writes its section, with the real-time factors
at batch 1 and 16 and the pipeline ratio. No timing assertions: the figures are only checked to exist and be
consistent with each other."""

import re
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_a_tiny_run_writes_its_section(tmp_path):
    output = tmp_path / "performance.md"
    # The test session's synthesized speech goes to its own cache (SEQZOO_CACHE, tests/conftest.py), inherited here.
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.speech", "--rounds=1", "--utterances=16", "--steps=2", "--train_size=32",
         f"--output={output}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (text,) = re.findall(r"<!-- benchmarks\.speech -->\n(.*)<!-- /benchmarks\.speech -->", output.read_text(), re.S)
    # Not `make bench`'s defaults: the command is shown without the note that says it is.
    assert "--utterances=16 --steps=2 --train_size=32`," in text and "make bench" not in text
    rows = re.findall(r"^\| (1|16) \| ([\d.]+) \| (\d+)x \| (.*?) \| (.*?) \|$", text, re.M)
    assert [row[0] for row in rows] == ["1", "16"], text
    (_, ms_1, factor_1, target, verdict), (_, ms_16, factor_16, _, _) = rows
    assert target == ">= 50x" and verdict == ("meets" if int(factor_1) >= 50 else "**misses**")
    assert float(ms_1) > 0 and float(ms_16) > 0 and int(factor_1) > 0 and int(factor_16) > 0
    # 16 utterances: one call of 16 against 16 calls of one; the figures are the same audio over each's time.
    seconds = float(re.search(r"\(([\d.]+) s of 16 kHz audio\)", text).group(1))
    assert seconds > 0
    for milliseconds, calls, factor in ((ms_1, 16, factor_1), (ms_16, 1, factor_16)):
        assert abs(seconds / (float(milliseconds) * calls / 1e3) - int(factor)) <= max(1.0, 0.02 * int(factor))
    ((pipeline, cached, ratio),) = re.findall(r"^\| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \| <= 1\.05 \|", text, re.M)
    assert float(pipeline) > 0 and float(cached) > 0
    # One round: the median of the rounds' ratios is that round's ratio (the shown figures are rounded).
    assert abs(float(pipeline) / float(cached) - float(ratio)) <= 0.02 * float(ratio) + 0.002


def test_bad_flags_are_refused():
    result = subprocess.run([sys.executable, "-m", "benchmarks.speech", "--utterances=4", "--output="],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "flag --utterances=4: 4 is not integer >= 16" in result.stderr
