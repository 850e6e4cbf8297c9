import pytest

from training import config


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
