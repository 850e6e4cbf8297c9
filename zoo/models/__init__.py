"""The zoo's models by preset name: `zoo.models.get("lstm", units=256)`.

A preset is plain data: the model class and its arguments. `get` merges the overrides into the preset and builds the
model; an unknown preset or argument is a `ValueError` listing the valid ones.
"""

import inspect

from zoo.models.acoustic_model.acoustic_model import AcousticModel
from zoo.models.acoustic_model.acoustic_model_presets import ACOUSTIC_MODEL_PRESETS
from zoo.models.ffnn_lm.ffnn_lm import FeedForwardLM
from zoo.models.ffnn_lm.ffnn_lm_presets import FFNN_LM_PRESETS
from zoo.models.gated_cnn_lm.gated_cnn_lm import GatedCNNLM
from zoo.models.listen_attend_spell.listen_attend_spell import ListenAttendSpell
from zoo.models.listen_attend_spell.listen_attend_spell_presets import LISTEN_ATTEND_SPELL_PRESETS
from zoo.models.gated_cnn_lm.gated_cnn_lm_presets import GATED_CNN_LM_PRESETS
from zoo.models.memn2n.memn2n import MemN2N
from zoo.models.memn2n.memn2n_presets import MEMN2N_PRESETS
from zoo.models.forecaster.forecaster import Forecaster
from zoo.models.forecaster.forecaster_presets import FORECASTER_PRESETS
from zoo.models.ntm.ntm import NTM
from zoo.models.ntm.ntm_presets import NTM_PRESETS
from zoo.models.rnn_lm.rnn_lm import RNNLM
from zoo.models.rnn_lm.rnn_lm_presets import RNN_LM_PRESETS
from zoo.models.seq2seq.seq2seq import Seq2Seq
from zoo.models.seq2seq.seq2seq_presets import SEQ2SEQ_PRESETS
from zoo.models.sequence_labeller.sequence_labeller import SequenceLabeller
from zoo.models.sequence_labeller.sequence_labeller_presets import SEQUENCE_LABELLER_PRESETS
from zoo.models.stacked_rnn.stacked_rnn import StackedRNN
from zoo.models.stacked_rnn.stacked_rnn_presets import STACKED_RNN_PRESETS
from zoo.models.tree.tree_model import TreeModel
from zoo.models.tree.tree_presets import TREE_PRESETS

# preset name -> (model class, preset arguments)
_PRESETS = {
    name: (model_class, preset)
    for model_class, presets in (
        (StackedRNN, STACKED_RNN_PRESETS),
        (FeedForwardLM, FFNN_LM_PRESETS),
        (GatedCNNLM, GATED_CNN_LM_PRESETS),
        (RNNLM, RNN_LM_PRESETS),
        (SequenceLabeller, SEQUENCE_LABELLER_PRESETS),
        (Forecaster, FORECASTER_PRESETS),
        (Seq2Seq, SEQ2SEQ_PRESETS),
        (MemN2N, MEMN2N_PRESETS),
        (NTM, NTM_PRESETS),
        (TreeModel, TREE_PRESETS),
        (AcousticModel, ACOUSTIC_MODEL_PRESETS),
        (ListenAttendSpell, LISTEN_ATTEND_SPELL_PRESETS),
    )
    for name, preset in presets.items()
}


def names():
    """The preset names, sorted."""
    return sorted(_PRESETS)


def arguments_of(name):
    """The constructor arguments the model of preset `name` accepts."""
    model_class, _ = _lookup(name)
    parameters = inspect.signature(model_class.__init__).parameters.values()
    return [p.name for p in parameters if p.name != "self" and p.kind is p.POSITIONAL_OR_KEYWORD]


def preset(name):
    """The arguments of preset `name` (a copy): what `get(name)` builds the model with, before overrides."""
    _, arguments = _lookup(name)
    return dict(arguments)


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


__all__ = [
    "AcousticModel", "FeedForwardLM", "Forecaster", "GatedCNNLM", "ListenAttendSpell", "MemN2N", "NTM", "RNNLM",
    "Seq2Seq", "SequenceLabeller", "StackedRNN", "TreeModel", "arguments_of",
    "get", "names", "preset",
]
