"""The zoo's models by preset name: `zoo.models.get("lstm", units=256)`.

A preset is plain data: the model class and its arguments. `get` merges the overrides into the preset and builds the
model; an unknown preset or argument is a `ValueError` listing the valid ones.
"""

import inspect

from zoo.models.stacked_rnn.stacked_rnn import StackedRNN
from zoo.models.stacked_rnn.stacked_rnn_presets import STACKED_RNN_PRESETS

# preset name -> (model class, preset arguments)
_PRESETS = {name: (StackedRNN, preset) for name, preset in STACKED_RNN_PRESETS.items()}


def names():
    """The preset names, sorted."""
    return sorted(_PRESETS)


def arguments_of(name):
    """The constructor arguments the model of preset `name` accepts."""
    model_class, _ = _lookup(name)
    parameters = inspect.signature(model_class.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]


def get(name, **overrides):
    """Builds the model of preset `name`, with `overrides` replacing preset arguments."""
    model_class, preset = _lookup(name)
    valid = arguments_of(name)
    unknown = sorted(set(overrides) - set(valid))
    if unknown:
        raise ValueError(f"model preset {name!r} got unknown argument(s) {unknown}; valid arguments: {valid}")
    return model_class(**{**preset, **overrides})


def _lookup(name):
    if name not in _PRESETS:
        raise ValueError(f"unknown model preset {name!r}; valid presets: {names()}")
    return _PRESETS[name]


__all__ = ["StackedRNN", "arguments_of", "get", "names"]
