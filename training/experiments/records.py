"""Finished results of an experiment's runs, kept as small JSON files beside its report.

An experiment whose runs take an hour each (the streams and speech experiments on 2 CPU cores) can then be run a few
runs at a time and its report written from what is recorded: a run whose record exists, made with the same settings
(`budget`: what the run was asked to do), is not trained again. A record holds what the report shows (metrics,
curves, samples), never weights. Remove a record to train its run again.
"""

import json
import os
import sys


def record_path(record_dir, name, seed):
    return os.path.join(record_dir, f"{name}_seed{seed}.json")


def load(record_dir, name, seed, budget):
    """The result recorded for run `name` with `seed`, or None: no record, or one made with another `budget` (a
    JSON-able dict of the run's settings)."""
    path = record_path(record_dir, name, seed)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    if record.get("budget") != json.loads(json.dumps(budget)):
        return None
    print(f"{name} seed {seed}: the result recorded in {path}", file=sys.stderr, flush=True)
    return record["result"]


def save(record_dir, name, seed, budget, result):
    """Records `result` (JSON-able) of run `name` with `seed` and `budget`; returns the file's path."""
    os.makedirs(record_dir, exist_ok=True)
    path = record_path(record_dir, name, seed)
    with open(path + ".tmp", "w") as f:
        json.dump({"budget": budget, "result": result}, f, indent=1)
        f.write("\n")
    os.replace(path + ".tmp", path)  # a run killed while writing leaves no half record
    return path
