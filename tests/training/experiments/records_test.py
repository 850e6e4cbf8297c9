"""Recorded results of experiment runs: reused for the same settings only."""

import json

from training.experiments import records


def test_a_record_is_returned_for_the_same_budget_and_only_for_it(tmp_path):
    budget = {"preset": "ctc", "minutes": 60.0, "overrides": {"epochs": 3}, "max_steps": None}
    result = {"wer": 0.04, "curve": [[1.0, 10, 2.5]], "sample": "one two"}
    assert records.load(str(tmp_path), "ctc", 0, budget) is None  # nothing recorded yet
    path = records.save(str(tmp_path), "ctc", 0, budget, result)
    assert path == records.record_path(str(tmp_path), "ctc", 0) and not (tmp_path / "ctc_seed0.json.tmp").exists()
    assert json.loads(open(path).read()) == {"budget": budget, "result": result}
    assert records.load(str(tmp_path), "ctc", 0, dict(budget)) == result
    # Another budget, seed or name is another run.
    assert records.load(str(tmp_path), "ctc", 0, {**budget, "minutes": 30.0}) is None
    assert records.load(str(tmp_path), "ctc", 0, {**budget, "overrides": {"epochs": 4}}) is None
    assert records.load(str(tmp_path), "ctc", 1, budget) is None
    assert records.load(str(tmp_path), "plain", 0, budget) is None
