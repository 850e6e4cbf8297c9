# seqzoo: `make demo` runs the main job, `make test` the whole suite. Both start from only Python 3.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.seqzoo-installed
WORKERS ?= 2

.PHONY: setup demo test test-fast bench clean

setup: $(STAMP)

# Re-installs only when pyproject.toml changes, so a second `make setup` costs nothing.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev,experiments]'
	touch $(STAMP)

# Trains a small LSTM on the adding problem (T = 30) from scratch, then evaluates its best checkpoint on the test split.
DEMO_DIR := runs/demo
demo: setup
	rm -rf $(DEMO_DIR)
	$(PY) -m training.train --task=adding --preset=short --model_dir=$(DEMO_DIR) --progress=lines
	$(PY) -m training.evaluate --model_dir=$(DEMO_DIR)

test: setup
	$(PY) -m pytest -n $(WORKERS) -q

test-fast: setup
	$(PY) -m pytest -n $(WORKERS) -q -m "not slow"

bench: setup
	$(PY) -m benchmarks.cells
	$(PY) -m benchmarks.pipeline

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
