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

# The main job: train seven small models (adding, latching, a language model, a date translator, a bAbI memory
# network, a ListOps Tree-LSTM, a speech recognizer), export them to saved_models/, start the model server, query it over REST and gRPC,
# print the answers, stop it. `make serve` does the same and keeps serving.
DEMO_DIR := runs/demo
# The ListOps Tree-LSTM, small and quick (about 40 s on 2 CPU cores): shallower lists (depth 3 at most) than the
# preset's, 64 units, every list's value supervised (node_loss_weight 1.0, which learns much faster than the root's
# loss alone).
LISTOPS_DEMO := train_size=4000, validation_size=200, test_size=200, max_depth=3, max_length=40, test_min_depth=3, \
	test_max_depth=4, test_max_length=60, node_loss_weight=1.0, batch_size=32, sort_window=4, \
	model_options={"units": 64, "embedding_dim": 64}
# The speech recognizer, small and quick: the ctc preset on spoken digit strings only (synthesized with eSpeak NG,
# noise drawn as in the preset), fewer utterances, one bidirectional layer of 128.
SPEECH_DEMO := utterances="digits", train_size=1600, validation_size=96, test_size=96, clean_digits_size=64, \
	batch_size=32, epochs=8, model_options={"units": 128, "num_layers": 1}
.PHONY: demo-models serve
demo-models: setup
	rm -rf $(DEMO_DIR)
	$(PY) -m training.train --task=adding --preset=short --model_dir=$(DEMO_DIR)/adding --progress=lines
	$(PY) -m training.train --task=latching --preset=short --model_dir=$(DEMO_DIR)/latching --progress=lines
	$(PY) -m training.evaluate --model_dir=$(DEMO_DIR)/adding
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/adding --name=adding
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/latching --name=latching
	$(PY) -m training.train --task=language_model --preset=lstm --model_dir=$(DEMO_DIR)/lm --progress=lines \
		--override=train_size=20000 --epochs=2
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/lm --name=lm
	$(PY) -m training.train --task=translation --preset=dates --model_dir=$(DEMO_DIR)/dates --progress=lines
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/dates --name=dates
	$(PY) -m training.train --task=babi --preset=memn2n_small --model_dir=$(DEMO_DIR)/babi --progress=lines \
		'--override=tasks=[1]'
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/babi --name=babi
	$(PY) -m training.train --task=listops --preset=tree_lstm --model_dir=$(DEMO_DIR)/listops --progress=lines \
		'--override=$(LISTOPS_DEMO)' --epochs=10
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/listops --name=listops
	$(PY) -m training.train --task=speech --preset=ctc --model_dir=$(DEMO_DIR)/speech --progress=lines \
		'--override=$(SPEECH_DEMO)'
	$(PY) -m serving.export --model_dir=$(DEMO_DIR)/speech --name=speech

demo: demo-models
	$(PY) -m serving.demo

serve: demo-models
	$(PY) -m serving.demo --serve

test: setup
	$(PY) -m pytest -n $(WORKERS) -q --durations=20

test-fast: setup
	$(PY) -m pytest -n $(WORKERS) -q -m "not slow"

bench: setup
	$(PY) -m benchmarks.cells
	$(PY) -m benchmarks.pipeline
	$(PY) -m benchmarks.language_models
	$(PY) -m benchmarks.seq2seq
	$(PY) -m benchmarks.decoding
	$(PY) -m benchmarks.serving
	$(PY) -m benchmarks.soak
	$(PY) -m benchmarks.memory
	$(PY) -m benchmarks.trees
	$(PY) -m benchmarks.speech

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
