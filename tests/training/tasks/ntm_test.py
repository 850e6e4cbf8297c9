"""The ntm task: the training stream (seeded, resumable, with a curriculum), the mask, the loss and bit errors, a
short run on copy, and evaluation beyond the training lengths through `training.evaluate --override`."""

import io
import json
import os
import subprocess
import sys

import grpc
import httpx2 as httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

import zoo

from serving import export
from tests.helpers.saved_model import load_with_session
from training.data import algorithmic
from training.trainer import Trainer
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.training.tasks import runs


def make_config(preset="copy", **overrides):
    return runs.make_config("ntm", preset, **overrides)


def first(dataset, count=1):
    return [tuple(t.numpy() for t in batch) for batch in dataset.take(count)]


@pytest.mark.parametrize("preset", ["copy", "repeat_copy", "associative_recall", "priority_sort"])
def test_every_preset_streams_batches_in_its_layout_with_the_mask_last(preset):
    task, config = make_config(preset)
    [(inputs, targets, weights)] = first(task.dataset(config, "train", 4))
    in_width, out_width = algorithmic.widths(config["algorithm"], config["bits"])
    assert task.input_features(config) == in_width
    assert inputs.shape[0] == 4 and inputs.shape[2] == in_width
    assert targets.shape == (*inputs.shape[:2], out_width + 1)
    np.testing.assert_array_equal(weights, 1.0)
    mask = targets[..., -1]
    assert set(np.unique(mask)) == {0.0, 1.0}
    assert not targets[..., :-1][mask == 0].any()  # no target outside the answer
    assert not inputs[mask == 1].any()  # no input during the answer


def test_the_stream_is_the_generator_seeded_by_batch_and_resumes_exactly():
    task, config = make_config(seed=5)
    batches = first(task.dataset(config, "train", 8), 4)
    inputs, targets, mask = algorithmic.batch("copy", np.random.default_rng([5, 0, 2]), 8, bits=8, min_length=1,
                                              max_length=20)
    np.testing.assert_array_equal(batches[2][0], inputs)
    np.testing.assert_array_equal(batches[2][1][..., :-1], targets)
    np.testing.assert_array_equal(batches[2][1][..., -1], mask)
    [resumed] = first(task.dataset(config, "train", 8, skip_batches=3))
    for a, b in zip(resumed, batches[3]):
        np.testing.assert_array_equal(a, b)
    [other_seed] = first(make_config(seed=6)[0].dataset(make_config(seed=6)[1], "train", 8))
    assert other_seed[0].shape != batches[0][0].shape or not np.array_equal(other_seed[0], batches[0][0])


def copy_lengths(targets):
    return targets[..., -1].sum(axis=1)  # a copy's answer is as long as its sequence


def test_the_curriculum_grows_the_longest_length_with_the_step_and_resumes_with_it():
    task, config = make_config(curriculum_steps=100, min_length=1, max_length=20)
    assert [task.curriculum_max_length(config, s) for s in (0, 5, 50, 100, 1000)] == [1, 1, 10, 20, 20]
    assert task.train_scalars(config, 50) == {"curriculum_max_length": 10.0}
    assert task.train_scalars(make_config()[1], 50) == {}
    start = first(task.dataset(config, "train", 32), 2)
    assert all(copy_lengths(t).max() == 1 for _, t, _ in start)
    [middle] = first(task.dataset(config, "train", 32, skip_batches=50))
    assert copy_lengths(middle[1]).max() == 10 and copy_lengths(middle[1]).min() == 1
    late = first(task.dataset(config, "train", 32, skip_batches=200), 3)
    assert max(copy_lengths(t).max() for _, t, _ in late) > 15
    # Two replicas in one pipeline take two batches a step: the step is the batch index // 2.
    context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0, num_replicas_in_sync=2)
    [two] = first(task.dataset(config, "train", 32, input_context=context, skip_batches=100))
    assert copy_lengths(two[1]).max() == 10


def test_the_test_split_has_the_evaluation_lengths_and_options():
    task, config = make_config(min_length=1, max_length=5, eval_min_length=30, eval_max_length=32, test_size=20,
                               validation_size=20)
    lengths = lambda split: {len(x) for x in task.split_data(config)[split][0]}  # noqa: E731
    assert lengths("validation") <= set(range(3, 12))  # T = 2L + 1
    assert lengths("test") <= {61, 63, 65} and len(lengths("test")) > 1
    task, config = make_config("repeat_copy", eval_generator_options={"min_repeats": 15, "max_repeats": 15},
                               test_size=10, validation_size=10)
    for inputs in task.split_data(config)["test"][0]:
        assert np.isclose(inputs[:, -1].max(), 1.5)  # 15 repeats / repeat_scale 10
    x, y, w = next(iter(task.dataset(config, "test", 4, pad_to_multiple=4)))
    assert x.shape[-1] == 10 and y.shape[-1] == 10


def test_bad_configs_are_errors_that_name_the_value():
    task, _ = make_config()
    with pytest.raises(ValueError, match="algorithm must be one of .*got 'sort'"):
        task.check_config(make_config(algorithm="sort")[1])
    with pytest.raises(ValueError, match="curriculum_steps must be an int >= 0, got -1"):
        task.check_config(make_config(curriculum_steps=-1)[1])
    with pytest.raises(ValueError, match="test split's generator arguments .*min_length=9, max_length=4"):
        task.check_config(make_config(eval_min_length=9, eval_max_length=4)[1])
    with pytest.raises(ValueError, match="validation split's generator arguments .*min_repeats"):
        task.check_config(make_config(generator_options={"min_repeats": 2})[1])


def test_loss_and_bit_errors_count_only_the_masked_steps():
    task, config = make_config(bits=2)
    # One sequence of 4 steps, 2 bits; the answer is steps 2 and 3. Logits > 0 round to 1.
    targets = np.array([[[0, 0, 0], [0, 0, 0], [1, 0, 1], [1, 1, 1]]], "float32")
    logits = np.array([[[5, 5], [-5, 5], [3, -2], [-1, 4]]], "float32")
    # Rounded answer: [1, 0] vs [1, 0] (0 errors), [0, 1] vs [1, 1] (1 error); steps 0 and 1 are not scored.
    np.testing.assert_allclose(task.metrics(config, targets, logits)["bit_errors"], [1.0])
    softplus = lambda z: np.log1p(np.exp(z))  # noqa: E731
    # Sigmoid cross-entropy: -log sigmoid(z) for a 1, -log(1 - sigmoid(z)) for a 0.
    expected = softplus(-3) + softplus(-2) + softplus(1) + softplus(-4)
    np.testing.assert_allclose(task.loss(config, targets, logits), [expected], rtol=1e-6)
    changed = logits.copy()
    changed[0, :2] = -changed[0, :2]  # outside the answer: nothing changes
    np.testing.assert_allclose(task.loss(config, targets, changed), [expected], rtol=1e-6)
    np.testing.assert_allclose(task.metrics(config, targets, changed)["bit_errors"], [1.0])


def test_the_model_writes_logits_at_every_step_and_does_not_skip_the_silent_answer_steps():
    task, config = make_config(model="lstm", model_options={"units": 8, "num_layers": 1})
    model = task.build_model(config)
    inputs = np.zeros((2, 7, 9), "float32")
    inputs[:, :3, :8] = np.random.default_rng(0).integers(0, 2, (2, 3, 8))
    inputs[:, 3, 8] = 1.0
    outputs = np.asarray(model(inputs))
    assert outputs.shape == (2, 7, 8)
    # A masked (skipped) step would repeat the previous output; the LSTM runs through the all-zero answer steps.
    assert not np.allclose(outputs[:, 5], outputs[:, 4])
    served = task.serving_outputs(config, tf.constant(outputs))["outputs"].numpy()
    np.testing.assert_allclose(served, 1 / (1 + np.exp(-outputs)), rtol=1e-5)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    # Copy of 4-bit sequences of length 1..4 with a 64-unit LSTM: a CPU-sized run of 6,400 sequences.
    task, config = make_config(bits=4, min_length=1, max_length=4, model="lstm",
                               model_options={"units": 64, "num_layers": 1},
                               train_size=1600, epochs=4, validation_size=256, test_size=256, learning_rate=1e-2)
    model_dir = str(tmp_path_factory.mktemp("ntm") / "run")
    untrained = Trainer(task, config, model_dir + "_untrained", progress="lines", out=io.StringIO())
    untrained = untrained.evaluate("validation")
    trainer = runs.train_best(task, config, model_dir)
    return task, config, model_dir, trainer, untrained


@pytest.mark.slow
def test_an_lstm_learns_to_copy_short_sequences(trained):
    task, config, _, trainer, untrained = trained
    validation = trainer.evaluate("validation")
    # An untrained network scores about ln 2 = 0.69 nats a bit: 10 bits of answer on average here, about 7 nats.
    # Learning the copy cuts that by 40% at least (to 0.43 of it here), and halves the bit errors (about 5 by
    # chance; 0.28 of them here).
    assert validation["loss"] < 0.6 * untrained["loss"], (validation, untrained)
    assert validation["bit_errors"] < 0.5 * untrained["bit_errors"], (validation, untrained)


@pytest.mark.slow
def test_evaluate_overrides_take_the_test_split_beyond_the_training_lengths(trained):
    task, config, model_dir, trainer, _ = trained
    plain = trainer.evaluate("test")  # the best checkpoint, as training.evaluate restores it
    longer = run_evaluate(model_dir, "--override=eval_min_length=12,eval_max_length=12")
    assert longer.returncode == 0, longer.stderr
    with open(os.path.join(model_dir, "evaluation_test_eval_max_length=12_eval_min_length=12.json")) as f:
        result = json.load(f)
    assert result["overrides"] == {"eval_min_length": 12, "eval_max_length": 12}
    # Sequences three times as long as any trained on: an LSTM's copy breaks down (more bit errors than at the
    # training lengths, where it is nearly right), and the run's own config is left as it was.
    assert result["metrics"]["bit_errors"] > plain["bit_errors"] + 1.0, (result, plain)
    with open(os.path.join(model_dir, "config.json")) as f:
        assert json.load(f)["eval_max_length"] is None
    unknown = run_evaluate(model_dir, "--override=eval_length=3")
    assert unknown.returncode == 2 and "unknown override key 'eval_length'" in unknown.stderr, unknown.stderr


def run_evaluate(model_dir, *flags):
    # A process of its own, as a user runs it.
    return subprocess.run([sys.executable, "-m", "training.evaluate", f"--model_dir={model_dir}", *flags],
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_export_maps_float_sequences_to_bit_probabilities_in_both_loaders(trained, tmp_path):
    task, config, model_dir, trainer, _ = trained
    path = export.export(model_dir, "ntm", export_base=str(tmp_path / "saved"))
    rng = np.random.default_rng(0)
    for batch, steps in ((2, 9), (5, 25)):
        x = rng.integers(0, 2, size=(batch, steps, task.input_features(config))).astype("float32")
        expected = 1 / (1 + np.exp(-np.asarray(trainer.model(x), "float64")))
        loaded = tf.saved_model.load(path).signatures["serving_default"](inputs=tf.constant(x))
        session = load_with_session(path, {"inputs": x})
        np.testing.assert_allclose(loaded["outputs"].numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(session["outputs"], expected, atol=1e-5)


def test_every_preset_builds_its_ntm_with_the_tasks_head():
    for preset, heads in (("copy", 1), ("repeat_copy", 1), ("associative_recall", 1), ("priority_sort", 5)):
        task, config = make_config(preset)
        model = task.build_model(config)
        assert isinstance(model, zoo.models.NTM) and model.cell.read_heads == heads
        width = algorithmic.widths(config["algorithm"], config["bits"])[1]
        assert (model.output_units, model.output_activation, model.per_step_outputs, model.mask_padding) == (
            width, None, True, False)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default preset (copy, the NTM of Collier & Beel, Adam 1e-3, clip 50) trained for 200 steps (6,400
    sequences of length 1..20), exported."""
    task, config = make_config(train_size=3200, epochs=2, validation_size=64, test_size=64)
    assert config["model"] == "ntm_copy" and config["preset"] == "copy"
    model_dir = str(tmp_path_factory.mktemp("ntm_default") / "run")
    trainer = runs.train_best(task, config, model_dir)
    path = export.export(model_dir, "copy", export_base=str(tmp_path_factory.mktemp("ntm_saved")))
    return task, config, model_dir, trainer, path


@pytest.mark.slow
def test_the_default_preset_stays_finite_in_training_and_on_sequences_six_times_longer(default_run):
    task, config, model_dir, trainer, _ = default_run
    # The trainer stops with TrainingDiverged at the first NaN or Inf loss, so the fixture's run got through every
    # step finite; the last weights are finite too.
    with open(os.path.join(model_dir, "metrics.json")) as f:
        metrics = json.load(f)
    assert metrics["step"] == 200 and np.isfinite(metrics["train"]["loss"]), metrics
    trainer.restore("latest")
    for variable in trainer.model.variables:
        assert np.all(np.isfinite(variable.numpy())), variable.path
    # Sequences of 120 vectors (the paper's longest test length; 242 steps, the 128 locations nearly full): the
    # memory, weightings and outputs stay finite where nothing was trained.
    inputs, _, _ = algorithmic.batch("copy", np.random.default_rng(0), 4, bits=8, min_length=120, max_length=120)
    trace = trainer.model.trace(inputs)
    for key, value in trace.items():
        assert np.all(np.isfinite(np.asarray(value))), key
    trainer.restore("best")


@pytest.mark.slow
def test_the_ntm_export_takes_float_sequences_in_both_loaders_and_through_the_server(default_run, tmp_path):
    task, config, _, trainer, path = default_run
    rng = np.random.default_rng(1)
    batches = [rng.integers(0, 2, size=(b, t, task.input_features(config))).astype("float32") for b, t in
               ((2, 9), (3, 30))]
    expected = [1 / (1 + np.exp(-np.asarray(trainer.model(x), "float64"))) for x in batches]
    loaded = tf.saved_model.load(path).signatures["serving_default"]
    for x, y in zip(batches, expected):
        np.testing.assert_allclose(loaded(inputs=tf.constant(x))["outputs"].numpy(), y, atol=1e-5)
        np.testing.assert_allclose(load_with_session(path, {"inputs": x})["outputs"], y, atol=1e-5)
    base = os.path.dirname(os.path.dirname(path))
    server = make_server(model_config_file=os.path.join(base, export.CONFIG_FILE), rest_api_port=free_port()).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    try:
        rest = httpx.post(f"http://127.0.0.1:{server.rest_port}/v1/models/copy:predict",
                          json={"instances": batches[0].tolist()}, timeout=120)
        np.testing.assert_allclose(np.asarray(rest.json()["predictions"]), expected[0], atol=1e-5)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = "copy"
        request.inputs["inputs"].CopyFrom(tf.make_tensor_proto(batches[1]))
        response = prediction_service_pb2_grpc.PredictionServiceStub(channel).Predict(request, timeout=120)
        np.testing.assert_allclose(tf.make_ndarray(response.outputs["outputs"]), expected[1], atol=1e-5)
        # The wrong width of vector: INVALID_ARGUMENT, and the server keeps serving.
        bad = httpx.post(f"http://127.0.0.1:{server.rest_port}/v1/models/copy:predict",
                         json={"instances": np.zeros((1, 3, 4)).tolist()}, timeout=120)
        assert bad.status_code == 400, bad.text
        again = httpx.post(f"http://127.0.0.1:{server.rest_port}/v1/models/copy:predict",
                           json={"instances": batches[0].tolist()}, timeout=120)
        np.testing.assert_allclose(np.asarray(again.json()["predictions"]), expected[0], atol=1e-5)
    finally:
        channel.close()
        server.stop()
