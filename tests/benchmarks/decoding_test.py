"""The decoding benchmark runs end to end on a tiny configuration, the translation model included."""

import subprocess
import sys

import pytest


@pytest.mark.slow
def test_a_tiny_run_of_the_translation_subjects_writes_its_section(tmp_path):
    output = tmp_path / "performance.md"
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.decoding", "--rounds=1", "--batch=2", "--subjects=dates,long",
         "--long_source=30", "--train_steps=2", f"--output={output}"],
        capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = output.read_text()
    assert "<!-- benchmarks.decoding -->" in text and "<!-- /benchmarks.decoding -->" in text
    assert "sources: dates of the test split" in text
    assert "sources: longer sentences: 30 characters" in text and "(30 to 30 tokens" in text
    # Two tables (dates, the longer sentence), each with greedy and beam 4 and 8 in every loop.
    assert text.count("| beam 8 | Python loop") == 2 and text.count("| greedy | in-graph (XLA)") == 2, text


def test_an_unknown_subject_is_refused():
    result = subprocess.run([sys.executable, "-m", "benchmarks.decoding", "--subjects=speech", "--output="],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "--subjects must list subjects among" in result.stderr


def test_importing_it_defines_no_flags():
    # It defines its flags when it runs as a program (`define_flags`, under __main__): a test process imports it beside
    # other benchmarks whose flags share its names (--rounds, --batch, --output).
    from absl import flags

    from benchmarks import decoding

    assert flags.FLAGS.get_flags_for_module(decoding.__name__) == []
    assert callable(decoding.define_flags)
