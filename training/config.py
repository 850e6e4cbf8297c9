"""Run configuration: a task's preset (plain data) merged with `--override key=value,...`, validated.

The resolved config is one flat dict of plain values; it is written to `<model_dir>/config.json` by the trainer, and
a run resumed in the same model_dir must resolve to the same config (only its length may change).
"""

import ast
import json

# Keys that may differ when a run is resumed: how long it trains and how often it reports.
RESUMABLE_KEYS = ("epochs", "steps", "checkpoint_every_steps", "log_every_steps")


def parse_overrides(text):
    """Parses `key=value,key=value` into a dict; values are Python literals or bare strings.

    Commas inside brackets or quotes belong to the value: `alpha=[0.1,0.2],cell=lstm` has two keys.
    """
    overrides = {}
    for item in _split_top_level(text or ""):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"--override items must look like key=value, got {item!r}")
        if key in overrides:
            raise ValueError(f"--override sets {key!r} twice")
        overrides[key] = _literal(raw.strip())
    return overrides


def _split_top_level(text):
    items, depth, quote, current = [], 0, None, []
    for char in text:
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[({":
            depth += 1
        elif char in "])}":
            depth -= 1
        elif char == "," and depth == 0:
            items.append("".join(current))
            current = []
            continue
        current.append(char)
    items.append("".join(current))
    return items


def _literal(raw):
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    try:
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def resolve(defaults, presets, preset_name, overrides):
    """`defaults` <- `presets[preset_name]` <- `overrides`, every override key checked and its type coerced."""
    if preset_name not in presets:
        raise ValueError(f"unknown preset {preset_name!r}; valid presets: {sorted(presets)}")
    config = {**defaults, **presets[preset_name]}
    for key, value in overrides.items():
        if key not in config:
            raise ValueError(f"unknown override key {key!r}; valid keys: {sorted(config)}")
        config[key] = _coerce(key, value, config[key])
    json.dumps(config)  # a config is plain data; fail here, not when it is written
    return config


def _coerce(key, value, current):
    """Matches `value` to the type of the preset's value where that is unambiguous."""
    if current is None or value is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise ValueError(f"override {key} must be true or false, got {value!r}")
        return value
    if isinstance(current, int) and isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(current, float) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(current, (int, float)) and not isinstance(value, (int, float)):
        raise ValueError(f"override {key} must be a number, got {value!r}")
    if isinstance(current, int) and isinstance(value, float):
        raise ValueError(f"override {key} must be an int, got {value!r}")
    return value


def check_resumable(saved, requested):
    """Raises if a model_dir's saved config differs from the requested one in anything but the run's length."""
    differences = sorted(
        key
        for key in set(saved) | set(requested)
        if key not in RESUMABLE_KEYS and saved.get(key, "<absent>") != requested.get(key, "<absent>")
    )
    if differences:
        details = ", ".join(f"{k}: {saved.get(k, '<absent>')!r} -> {requested.get(k, '<absent>')!r}" for k in differences)
        raise ValueError(
            f"this model_dir holds a run with a different config ({details}); resume it with the same task, preset "
            "and overrides, or train in a new --model_dir"
        )
