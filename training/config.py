"""Run configuration: a task's preset (plain data) merged with `--override key=value,...`, validated.

The resolved config is one flat dict of plain values; it is written to `<model_dir>/config.json` by the trainer, and
a run resumed in the same model_dir must resolve to the same config (only its length may change). Every numeric
value is checked (`check`) before anything is built or written.
"""

import ast
import json
import numbers

# Keys that may differ when a run is resumed: how long it trains and how often it reports.
RESUMABLE_KEYS = ("epochs", "steps", "checkpoint_every_steps", "log_every_steps")


def _integer(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


# The kinds of numeric values: (what the error says is expected, the test a value passes).
POSITIVE_INT = ("a positive int", lambda v: _integer(v) and v > 0)
POSITIVE_INT_OR_NONE = ("a positive int or None", lambda v: v is None or (_integer(v) and v > 0))
NON_NEGATIVE_INT = ("an int >= 0", lambda v: _integer(v) and v >= 0)
POSITIVE = ("a number > 0", lambda v: _real(v) and v > 0)
POSITIVE_OR_NONE = ("a number > 0 or None (off)", lambda v: v is None or (_real(v) and v > 0))
NON_NEGATIVE = ("a number >= 0", lambda v: _real(v) and v >= 0)
RATE = ("a float in [0, 1)", lambda v: _real(v) and 0 <= v < 1)
NON_NEGATIVE_INT_OR_NONE = ("an int >= 0 or None", lambda v: v is None or (_integer(v) and v >= 0))
INT_AT_LEAST_2_OR_NONE = ("an int >= 2 or None (off)", lambda v: v is None or (_integer(v) and v >= 2))

# What every numeric config value must be, by key: a key means the same thing in every task and at any depth (so
# `model_options={"dropout": ...}` is checked too). Keys that hold names or options (model, cell, corpus, tokenizer,
# ...) are checked where they are used: by the zoo when the model is built, by the task when it reads its data.
NUMERIC = {
    # The trainer's (training.trainer.DEFAULTS).
    "seed": NON_NEGATIVE_INT,
    "batch_size": POSITIVE_INT,
    "epochs": POSITIVE_INT,
    "steps": POSITIVE_INT_OR_NONE,
    "steps_per_epoch": POSITIVE_INT_OR_NONE,
    "learning_rate": POSITIVE,
    "learning_rate_decay_epochs": POSITIVE_INT_OR_NONE,
    "learning_rate_decay_factor": ("a number in (0, 1] or None (0.5)", lambda v: v is None or (_real(v) and 0 < v <= 1)),
    "learning_rate_decay_start_epoch": NON_NEGATIVE_INT_OR_NONE,
    "eval_batch_size": POSITIVE_INT_OR_NONE,
    "clip_global_norm": POSITIVE_OR_NONE,
    "clip_value": POSITIVE_OR_NONE,
    # Truncated BPTT on token streams (the language-model task's stream mode; None: sentence by sentence).
    "bptt_steps": POSITIVE_INT_OR_NONE,
    "checkpoint_every_steps": POSITIVE_INT,
    "keep_checkpoints": POSITIVE_INT,
    "log_every_steps": POSITIVE_INT,
    # The tasks' data.
    "train_size": POSITIVE_INT,
    "validation_size": POSITIVE_INT,
    "test_size": POSITIVE_INT,
    "length": POSITIVE_INT,
    "length_jitter": NON_NEGATIVE,
    "informative_steps": POSITIVE_INT,
    "noise_variance": NON_NEGATIVE,
    "symbols": POSITIVE_INT,
    "copy_length": POSITIVE_INT,
    "delay": POSITIVE_INT,
    "classes": POSITIVE_INT,
    "min_length": POSITIVE_INT,
    "max_length": POSITIVE_INT,
    "input_length": POSITIVE_INT,
    "horizon": POSITIVE_INT,
    "min_count": POSITIVE_INT,
    "max_vocab_size": POSITIVE_INT,
    "max_new_tokens": POSITIVE_INT,
    "serving_max_nodes": POSITIVE_INT_OR_NONE,
    "decode_length": POSITIVE_INT,
    "beam_size": POSITIVE_INT,
    "beam_width": POSITIVE_INT,
    "clean_digits_size": POSITIVE_INT,
    "length_penalty": NON_NEGATIVE,
    "bits": POSITIVE_INT,
    "eval_min_length": POSITIVE_INT_OR_NONE,
    "eval_max_length": POSITIVE_INT_OR_NONE,
    "curriculum_steps": NON_NEGATIVE_INT,
    "min_repeats": POSITIVE_INT,
    "max_repeats": POSITIVE_INT,
    "repeat_scale": POSITIVE,
    "item_length": POSITIVE_INT,
    "num_outputs": POSITIVE_INT,
    "train_questions": POSITIVE_INT,
    "test_questions": POSITIVE_INT,
    "validation_fraction": RATE,
    "memory_size": POSITIVE_INT,
    "random_noise": ("a fraction in [0, 1] (0 = off)", lambda v: _real(v) and 0 <= v <= 1),
    "max_depth": POSITIVE_INT,
    "test_min_depth": POSITIVE_INT,
    "test_max_depth": POSITIVE_INT,
    "test_max_length": POSITIVE_INT,
    "max_args": POSITIVE_INT,
    "list_p": RATE,
    "node_loss_weight": NON_NEGATIVE,
    "max_height": NON_NEGATIVE_INT_OR_NONE,
    "sort_window": POSITIVE_INT,
    # The losses.
    "label_smoothing": RATE,
    # The models' sizes and rates (the zoo checks them again when it builds the model).
    "units": POSITIVE_INT,
    "num_layers": POSITIVE_INT,
    "embedding_dim": POSITIVE_INT,
    "tag_embedding_dim": POSITIVE_INT,
    "hidden_units": POSITIVE_INT,
    "attention_layer_size": POSITIVE_INT_OR_NONE,
    "channels": POSITIVE_INT,
    "kernel_size": POSITIVE_INT,
    "order": POSITIVE_INT,
    "num_blocks": POSITIVE_INT,
    "dropout": RATE,
    # The half-width of RNNLM's uniform weight initialisation (model_options={"init_scale": ...}; None: Keras's).
    "init_scale": POSITIVE_OR_NONE,
    "recurrent_dropout": RATE,
    # T_max of the LSTM and GRU cells' chrono initialisation (cell_options={"chrono_max_length": ...}).
    "chrono_max_length": INT_AT_LEAST_2_OR_NONE,
}


def check(config, prefix=""):
    """Raises a ValueError naming the first numeric value that is not what `NUMERIC` says, e.g.
    `batch_size must be a positive int, got 0`; nested dicts are checked too (`model_options.dropout ...`)."""
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            check(value, prefix=f"{name}.")
        elif key in NUMERIC:
            expected, test = NUMERIC[key]
            if not test(value):
                raise ValueError(f"{name} must be {expected}, got {value!r}")


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
    """Raises if a model_dir's saved config differs from the requested one in anything but the run's length.

    A key that the saved config lacks and the requested one sets to None or False is no difference: keys added to the
    presets later default to None or False (off: e.g. `scheduled_sampling`, `allow_unk`), which is what the older run
    had.
    """
    differences = sorted(
        key
        for key in set(saved) | set(requested)
        if key not in RESUMABLE_KEYS
        and saved.get(key, "<absent>") != requested.get(key, "<absent>")
        and not (key not in saved and (requested[key] is None or requested[key] is False))
    )
    if differences:
        details = ", ".join(
            f"{k}: {_shortened(saved.get(k, '<absent>'))} -> {_shortened(requested.get(k, '<absent>'))}"
            for k in differences
        )
        raise ValueError(
            f"this model_dir holds a run with a different config ({details}); resume it with the same task, preset "
            "and overrides, or train in a new --model_dir"
        )


def _shortened(value, limit=80):
    """repr(value), cut to `limit` characters (a vocabulary is a long list)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
