import numpy as np
import pytest

from training import config
from training import tasks
from training.trainer import DEFAULTS


def test_parse_overrides_keeps_lists_and_quoted_commas_together():
    parsed = config.parse_overrides("units=256,alpha=[0.1,0.2],name='a,b',cell=lstm,flag=true,limit=None,lr=1e-3")
    assert parsed == {
        "units": 256,
        "alpha": [0.1, 0.2],
        "name": "a,b",
        "cell": "lstm",
        "flag": True,
        "limit": None,
        "lr": 0.001,
    }
    assert config.parse_overrides("") == {}


@pytest.mark.parametrize(
    "text, message",
    [
        ("units", r"--override items must look like key=value, got 'units'"),
        ("=3", r"--override items must look like key=value"),
        ("units=1,units=2", r"--override sets 'units' twice"),
    ],
)
def test_parse_overrides_rejects_malformed_items(text, message):
    with pytest.raises(ValueError, match=message):
        config.parse_overrides(text)


PRESETS = {"default": {"units": 8, "learning_rate": 0.01, "cell": "lstm", "clip": None, "bidirectional": False}}


def test_resolve_merges_defaults_preset_and_overrides():
    resolved = config.resolve({"seed": 0, "units": 1}, PRESETS, "default", {"units": 16, "learning_rate": 1})
    assert resolved == {
        "seed": 0,
        "units": 16,
        "learning_rate": 1.0,
        "cell": "lstm",
        "clip": None,
        "bidirectional": False,
    }
    assert type(resolved["learning_rate"]) is float


def test_resolve_names_what_is_wrong():
    with pytest.raises(ValueError, match=r"unknown preset 'big'; valid presets: \['default'\]"):
        config.resolve({}, PRESETS, "big", {})
    with pytest.raises(ValueError, match=r"unknown override key 'unitz'; valid keys: \['bidirectional', 'cell', "):
        config.resolve({}, PRESETS, "default", {"unitz": 3})
    with pytest.raises(ValueError, match=r"override units must be an int, got 2.5"):
        config.resolve({}, PRESETS, "default", {"units": 2.5})
    with pytest.raises(ValueError, match=r"override learning_rate must be a number, got 'fast'"):
        config.resolve({}, PRESETS, "default", {"learning_rate": "fast"})
    with pytest.raises(ValueError, match=r"override bidirectional must be true or false, got 1"):
        config.resolve({}, PRESETS, "default", {"bidirectional": 1})


def test_a_run_resumes_only_with_the_same_config():
    saved = {"units": 8, "epochs": 3, "steps": None}
    config.check_resumable(saved, {"units": 8, "epochs": 10, "steps": 500})  # only the length changed
    with pytest.raises(ValueError, match=r"different config \(units: 8 -> 16\); resume it with the same task"):
        config.check_resumable(saved, {"units": 16, "epochs": 3, "steps": None})


def test_a_key_added_later_with_none_or_false_is_no_difference():
    # A run saved before "vocabulary" existed resumes with vocabulary None (off), but not with one set.
    config.check_resumable({"units": 8}, {"units": 8, "vocabulary": None})
    with pytest.raises(ValueError, match=r"different config \(vocabulary: '<absent>' -> \['<pad>'"):
        config.check_resumable({"units": 8}, {"units": 8, "vocabulary": ["<pad>"] * 40})
    with pytest.raises(ValueError, match=r"vocabulary: \['<pad>', '<pad>', .*\.\.\. -> None\)"):
        config.check_resumable({"vocabulary": ["<pad>"] * 40}, {"vocabulary": None})  # long values are cut
    # The same for a switch added later with False (off), but not with it on, nor with a 0 that is a number.
    config.check_resumable({"units": 8}, {"units": 8, "allow_unk": False})
    with pytest.raises(ValueError, match=r"different config \(allow_unk: '<absent>' -> True\)"):
        config.check_resumable({"units": 8}, {"units": 8, "allow_unk": True})
    with pytest.raises(ValueError, match=r"different config \(dropout: '<absent>' -> 0\)"):
        config.check_resumable({"units": 8}, {"units": 8, "dropout": 0})


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("batch_size", 0, r"batch_size must be a positive int, got 0"),
        ("batch_size", 2.0, r"batch_size must be a positive int, got 2.0"),
        ("epochs", -1, r"epochs must be a positive int, got -1"),
        ("steps", 0, r"steps must be a positive int or None, got 0"),
        ("steps_per_epoch", True, r"steps_per_epoch must be a positive int or None, got True"),
        ("seed", -1, r"seed must be an int >= 0, got -1"),
        ("learning_rate", 0.0, r"learning_rate must be a number > 0, got 0.0"),
        ("learning_rate", "fast", r"learning_rate must be a number > 0, got 'fast'"),
        ("clip_global_norm", 0.0, r"clip_global_norm must be a number > 0 or None \(off\), got 0.0"),
        ("clip_value", -1.0, r"clip_value must be a number > 0 or None \(off\), got -1.0"),
        ("checkpoint_every_steps", 0, r"checkpoint_every_steps must be a positive int, got 0"),
        ("keep_checkpoints", 0, r"keep_checkpoints must be a positive int, got 0"),
        ("log_every_steps", 0, r"log_every_steps must be a positive int, got 0"),
        ("train_size", 0, r"train_size must be a positive int, got 0"),
        ("units", 0, r"units must be a positive int, got 0"),
        ("length_jitter", -0.1, r"length_jitter must be a number >= 0, got -0.1"),
        ("cell_options", {"dropout": 1.0}, r"cell_options.dropout must be a float in \[0, 1\), got 1.0"),
        ("cell_options", {"recurrent_dropout": -0.5}, r"cell_options.recurrent_dropout must be a float in \[0, 1\)"),
        ("cell_options", {"chrono_max_length": 1},
         r"cell_options.chrono_max_length must be an int >= 2 or None \(off\), got 1"),
        ("cell_options", {"chrono_max_length": 100.0},
         r"cell_options.chrono_max_length must be an int >= 2 or None \(off\), got 100.0"),
        ("cell_options", {"chrono_max_length": True},
         r"cell_options.chrono_max_length must be an int >= 2 or None \(off\), got True"),
    ],
)
def test_every_numeric_value_is_checked(key, value, message):
    task = tasks.get("adding")
    resolved = {"task": "adding", "preset": "short", **config.resolve(DEFAULTS, task.presets, "short", {})}
    task.check_config(resolved)
    with pytest.raises(ValueError, match=message):
        task.check_config({**resolved, key: value})


@pytest.mark.parametrize(
    "task_name, preset, overrides, message",
    [
        ("adding", "short", {"length": 1}, r"length must be at least 2 \(one marked value in each half\), got 1"),
        ("latching", "short", {"informative_steps": 20},
         r"informative_steps \(20\) must be smaller than length \(20\)"),
        ("labelling", "plain", {"min_length": 9, "max_length": 8},
         r"min_length \(9\) must not exceed max_length \(8\)"),
        ("language_model", "lstm", {"max_vocab_size": 3}, r"max_vocab_size must be at least 4 \(the specials "),
        ("language_model", "gcnn", {"model_options": {"kernel_size": 0}},
         r"model_options.kernel_size must be a positive int, got 0"),
        ("copy_memory", "short", {"delay": 0}, r"delay must be a positive int, got 0"),
        ("forecasting", "sunspots", {"horizon": 0}, r"horizon must be a positive int, got 0"),
    ],
)
def test_each_task_checks_what_its_data_needs(task_name, preset, overrides, message):
    task = tasks.get(task_name)
    with pytest.raises(ValueError, match=message):
        task.check_config({"task": task_name, "preset": preset,
                           **config.resolve(DEFAULTS, task.presets, preset, overrides)})


@pytest.mark.parametrize("task_name", ["latching", "adding"])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_long_term_tasks_set_chrono_initialisation_through_cell_options(task_name, cell):
    task = tasks.get(task_name)
    overrides = {"cell": cell, "cell_options": {"chrono_max_length": 100}}
    resolved = {"task": task_name, "preset": "short", **config.resolve(DEFAULTS, task.presets, "short", overrides)}
    task.check_config(resolved)
    model = task.build_model(resolved)
    model(np.ones((1, 3, task.input_features(resolved)), "float32"))
    (recurrent,) = model.recurrent_layers
    assert recurrent.cell.chrono_max_length == 100
    bias = recurrent.cell.bias.numpy().reshape(-1)
    units = resolved["units"]
    gate_bias = bias[units : 2 * units] if cell == "lstm" else bias[:units]  # b_f, or the GRU's b_z
    assert gate_bias.min() >= 0.0 and gate_bias.max() <= np.log(99) + 1e-6 and np.ptp(gate_bias) > 1.0
    # Off by default: the presets keep the cells' default initialisation.
    default = {"task": task_name, "preset": "short", **config.resolve(DEFAULTS, task.presets, "short", {})}
    assert "chrono_max_length" not in default["cell_options"]


def test_every_preset_passes_and_every_numeric_key_has_a_rule():
    def numeric_keys(values):
        for key, value in values.items():
            if isinstance(value, dict):
                yield from numeric_keys(value)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                yield key

    assert set(numeric_keys(DEFAULTS)) <= set(config.NUMERIC)
    for name in tasks.names():
        task = tasks.get(name)
        for preset, values in task.presets.items():
            assert set(numeric_keys(values)) <= set(config.NUMERIC), (name, preset)
            task.check_config({"task": name, "preset": preset, **config.resolve(DEFAULTS, task.presets, preset, {})})
