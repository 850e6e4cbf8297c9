"""The long-term-dependency tasks: what their examples contain, and the registry."""

import numpy as np
import pytest
import tensorflow as tf

from training import config as run_config
from training import tasks
from training.trainer import DEFAULTS


def resolved(name, **overrides):
    task = tasks.get(name)
    return task, run_config.resolve(DEFAULTS, task.presets, "short", overrides)


def test_registry_lists_the_valid_tasks():
    names = ["adding", "babi", "copy_memory", "forecasting", "labelling", "language_model", "latching",
             "listops", "ntm", "sentiment_trees", "speech", "translation"]
    assert tasks.names() == names
    with pytest.raises(ValueError, match=r"unknown task 'add'; valid tasks: \['adding', 'babi', 'copy_memory', "):
        tasks.get("add")


def test_adding_marks_one_value_in_each_half_and_sums_them():
    task, config = resolved("adding", length=20)
    inputs, targets = task.generate(config, 300, np.random.default_rng(0))
    values, markers = inputs[..., 0], inputs[..., 1]
    assert inputs.shape == (300, 20, 2)
    assert np.all(markers[:, :10].sum(axis=1) == 1) and np.all(markers[:, 10:].sum(axis=1) == 1)
    np.testing.assert_allclose(targets[:, 0], (values * markers).sum(axis=1), rtol=1e-6)
    # Predicting the mean gives the chance level the task reports: Var(X1 + X2) = 1/6.
    assert abs(targets.var() - task.chance_levels(config)["mse"]) < 0.03


def test_adding_with_jitter_draws_lengths_in_t_to_1_1_t():
    task, config = resolved("adding", length=50, length_jitter=0.1)
    inputs, _ = task.generate(config, 200, np.random.default_rng(0))
    lengths = {len(x) for x in inputs}
    assert min(lengths) >= 50 and max(lengths) <= 55 and len(lengths) > 1


def test_latching_sets_the_class_in_the_first_steps_then_noise():
    task, config = resolved("latching", length=30, informative_steps=3, noise_variance=0.2)
    inputs, targets = task.generate(config, 2000, np.random.default_rng(0))
    code = inputs[:, :3, 0]
    assert np.all(np.abs(code) == 1.0) and np.all(code == code[:, :1])
    np.testing.assert_array_equal(np.sign(code[:, 0]) * 0.8, targets[:, 0])
    noise = inputs[:, 3:, 0]
    assert abs(noise.mean()) < 0.01 and abs(noise.var() - 0.2) < 0.01
    with pytest.raises(ValueError, match=r"informative_steps \(30\) must be smaller than length \(30\)"):
        task.generate({**config, "informative_steps": 30}, 1, np.random.default_rng(0))


def test_copy_memory_repeats_the_symbols_after_the_delay():
    task, config = resolved("copy_memory", copy_length=4, delay=6, symbols=5)
    inputs, targets = task.generate(config, 50, np.random.default_rng(0))
    categories = inputs.argmax(axis=-1)
    assert inputs.shape == (50, 14, 7) and np.all(inputs.sum(axis=-1) == 1.0)
    np.testing.assert_array_equal(targets[:, -4:], categories[:, :4])
    assert np.all(targets[:, :-4] == 0) and np.all(categories[:, 4:9] == 0)
    assert np.all(categories[:, 9] == 6) and np.all(categories[:, 10:] == 0)  # the delimiter, then blanks


@pytest.mark.parametrize("name", ["adding", "copy_memory", "latching"])
def test_losses_and_metrics_are_per_example(name):
    task, config = resolved(name)
    x, y, w = next(iter(task.dataset(config, "validation", 8, pad_to_multiple=8)))
    model = task.build_model(config)
    predictions = model(x)
    assert task.loss(config, y, predictions).shape == (8,)
    for values in task.metrics(config, y, predictions).values():
        assert values.shape == (8,)
    assert task.monitor[0] in task.metrics(config, y, predictions) or task.monitor[0] == "loss"
    spec = task.serving_signature(config)["inputs"]
    assert spec.dtype == tf.float32 and spec.shape[-1] == x.shape[-1]
