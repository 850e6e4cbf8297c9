"""The encoder-decoder training benchmark runs end to end on a tiny configuration and writes its section."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_a_tiny_run_writes_its_section(tmp_path):
    output = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.seq2seq", "--rounds=1", "--steps=2", "--sizes=tiny", "--train_size=200",
         f"--output={output}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert "<!-- benchmarks.seq2seq -->" in text and "<!-- /benchmarks.seq2seq -->" in text
    rows = [line for line in text.splitlines() if line.startswith("| tiny |")]
    assert len(rows) == 5, text  # every pair, no attention and attention, with and without input feeding
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        zoo_tokens, keras_tokens, wall_ratio, cpu_ratio = (float(cell.replace(",", "")) for cell in cells[4:8])
        assert min(zoo_tokens, keras_tokens, wall_ratio, cpu_ratio) > 0, row
    # Without input feeding the two models have the same weights (the benchmark asserts the same logits).
    same = [row for row in rows if "preset" not in row]
    assert len(same) == 3 and all(row.split("|")[3] == row.split("|")[4] for row in same), same


def test_an_unknown_size_is_refused():
    result = subprocess.run([sys.executable, "-m", "benchmarks.seq2seq", "--sizes=huge", "--output="],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "--sizes must list sizes among" in result.stderr


def test_importing_it_defines_no_flags():
    # It defines its flags when it runs as a program (`define_flags`, under __main__): a test process imports it beside
    # other benchmarks whose flags share its names (--rounds, --steps, --output).
    from absl import flags

    from benchmarks import seq2seq

    assert flags.FLAGS.get_flags_for_module(seq2seq.__name__) == []
    assert callable(seq2seq.define_flags)
