"""AcousticModel: raw audio in, one vector of logits per output frame: the lecture's case 2 (speech recognition),
input and output of different modality. Trained with CTC (A. Graves, S. Fernández, F. Gomez & J. Schmidhuber 2006,
"Connectionist temporal classification") or frame by frame on aligned labels, with the previous frame's label fed
back (the lecture's s_t = f(o_{t-1}, s_{t-1}, x_t))."""

import keras
from keras import ops

from zoo import arguments
from zoo.layers.log_mel_spectrogram import LogMelSpectrogram
from zoo.layers.spec_augment import SpecAugment
from zoo.models.sequence_labeller.sequence_labeller import SequenceLabeller
from zoo.models.sequence_labeller.sequence_labeller import shift_tags
from zoo.models.stacked_rnn.stacked_rnn import RECURRENT_LAYERS


def stack_frames(features, k):
    """[batch, frames, channels] -> [batch, ceil(frames / k), k * channels]: k consecutive frames side by side,
    the last group padded with zeros (frame stacking and striding by k; H. Sak, A. Senior, K. Rao & F. Beaufays 2015,
    "Fast and accurate recurrent neural network acoustic models for speech recognition")."""
    if k == 1:
        return features
    frames, channels = ops.shape(features)[1], features.shape[-1]
    static = features.shape[1]
    pad = (-static) % k if static is not None else (-frames) % k
    if static is None or pad:
        features = ops.pad(features, [[0, 0], [0, pad], [0, 0]])
    return ops.reshape(features, (ops.shape(features)[0], -1, k * channels))


def stacked_lengths(frame_lengths, k):
    """int32 [batch]: output frames of rows of `frame_lengths` frames, ceil(length / k)."""
    return (ops.cast(frame_lengths, "int32") + k - 1) // k


def build_front_end(model, sample_rate, frame_length, frame_step, num_mel_bins, stack, spec_augment):
    """Sets a speech model's front end: `stack`, `spec_augment` (a copy, or None), `front_end`
    (`LogMelSpectrogram`) and `augment` (`SpecAugment`, or None), the arguments checked."""
    model.stack = arguments.positive_int("stack", stack)
    if spec_augment is not None and not isinstance(spec_augment, dict):
        raise ValueError(f"spec_augment must be a dict of SpecAugment arguments or None, got {spec_augment!r}")
    model.spec_augment = None if spec_augment is None else dict(spec_augment)
    model.front_end = LogMelSpectrogram(sample_rate=sample_rate, frame_length=frame_length, frame_step=frame_step,
                                        num_mel_bins=num_mel_bins, name="front_end")
    model.augment = None if spec_augment is None else SpecAugment(**model.spec_augment, name="spec_augment")


def front_end_config(model):
    """The constructor arguments of `build_front_end`, for a model's `get_config`."""
    front = model.front_end
    return {"sample_rate": front.sample_rate, "frame_length": front.frame_length, "frame_step": front.frame_step,
            "num_mel_bins": front.num_mel_bins, "stack": model.stack, "spec_augment": model.spec_augment}


def audio_features(model, audio, lengths=None, training=False):
    """The audio front end of a model with `front_end` (`LogMelSpectrogram`), `augment` (`SpecAugment` or None) and
    `stack`: (stacked features [batch, output frames, stack * num_mel_bins], their mask [batch, output frames]).
    `audio` is float [batch, samples] in [-1, 1] or int16 PCM; `lengths` int [batch] (default: every sample)."""
    name = type(model).__name__
    if len(audio.shape) != 2:
        raise ValueError(f"{name} takes audio [batch, samples] (or the pair (audio, lengths)), got shape "
                         f"{tuple(audio.shape)}")
    if audio.dtype == "int16":  # 16-bit PCM, as a WAV file holds it
        audio = ops.cast(audio, "float32") / 32768.0
    if lengths is None:
        lengths = ops.full((ops.shape(audio)[0],), ops.shape(audio)[1], "int32")
    lengths = ops.cast(lengths, "int32")
    features = model.front_end(audio, lengths=lengths)
    frame_mask = model.front_end.compute_mask(audio, lengths=lengths)
    if model.augment is not None:
        features = model.augment(features, training=training, mask=frame_mask)
    stacked = stack_frames(features, model.stack)
    output_lengths = stacked_lengths(model.front_end.frame_lengths(lengths), model.stack)
    return stacked, ops.arange(ops.shape(stacked)[1])[None, :] < output_lengths[:, None]


INPUT_KEYS = ("audio", "lengths", "previous_tags")


def _unpack(inputs):
    """(audio, lengths or None, previous_tags or None) of the forms `AcousticModel` takes."""
    if isinstance(inputs, dict):
        unknown = sorted(set(inputs) - set(INPUT_KEYS))
        if unknown or "audio" not in inputs:
            raise ValueError(f"AcousticModel takes a dict with the keys {INPUT_KEYS} (audio required), got "
                             f"{sorted(inputs)}")
        return inputs["audio"], inputs.get("lengths"), inputs.get("previous_tags")
    if isinstance(inputs, (tuple, list)):
        if not 1 <= len(inputs) <= 3:
            raise ValueError(f"AcousticModel takes audio, (audio, lengths) or (audio, lengths, previous_tags), got "
                             f"a {type(inputs).__name__} of {len(inputs)}")
        inputs = tuple(inputs) + (None,) * (3 - len(inputs))
        return inputs
    return inputs, None, None


@keras.saving.register_keras_serializable(package="zoo")
class AcousticModel(keras.Model):
    """Logits [batch, output frames, num_tags] for audio [batch, samples] (and its lengths).

        F = LogMelSpectrogram(x)                  [batch, frames, num_mel_bins], standardized per utterance
                                                  (`front_end`: no weights)
        F <- SpecAugment(F)                       training only (`spec_augment`; no weights)
        S_j = [F_{jk} ; F_{jk+1} ; ... ; F_{jk+k-1}]   k = `stack`: [batch, ceil(frames / k), k * num_mel_bins]
        z = SequenceLabeller(S)                   `labeller`: stacked (bidirectional) recurrent layers and a
                                                  read-out to num_tags (its docstring has the equations)

    An output frame covers k input frames (30 ms for k = 3 at a 10 ms step). Its logits are over CTC's labels plus
    the blank, or over frame tags (a word, or silence) when a left-to-right labeller is trained on aligned frames,
    then with `feedback` the previous output frame's tag enters the next step.

    Args:
        num_tags: positive int, the logits' size.
        sample_rate, frame_length, frame_step, num_mel_bins: the front end's (`LogMelSpectrogram`; defaults 16000,
            400, 160, 80: 25 ms frames every 10 ms).
        stack: positive int, k (default 3).
        spec_augment: dict of `SpecAugment` arguments, or None for none (default).
        cell, units, num_layers, bidirectional, dropout, feedback, tag_embedding_dim, cell_options: the labeller's
            (`SequenceLabeller`; defaults "lstm", 128, 2, False, 0.0, False, 16, None).

    Call arguments:
        inputs: float audio [batch, samples] in [-1, 1] (or int16 PCM, scaled by 1 / 32768), every row's samples
            first; or the pair (audio, lengths) with lengths int [batch], the real samples of each row (padding after
            them changes nothing); or (audio, lengths, previous_tags); or a dict with those keys ("lengths" and
            "previous_tags" optional).
        previous_tags: int [batch, output frames], the fed-back tags for teacher forcing (feedback models only,
            `shift_tags`); without them a feedback model feeds back its own argmax.
        training: SpecAugment and dropout are active only while training.

    The logits of output frames past a row's end mean nothing: weight them 0 (`output_lengths`).

    Example:
        ```python
        model = zoo.models.get("ctc_acoustic_model", num_tags=29)   # 28 characters and the blank
        logits = model((audio, lengths))                            # [batch, frames / 3, 29]
        frames = model.output_lengths(lengths)
        ```
    """

    def __init__(self, num_tags, sample_rate=16000, frame_length=400, frame_step=160, num_mel_bins=80, stack=3,
                 spec_augment=None, cell="lstm", units=128, num_layers=2, bidirectional=False, dropout=0.0,
                 feedback=False, tag_embedding_dim=16, cell_options=None, **kwargs):
        super().__init__(**kwargs)
        self.num_tags = arguments.positive_int("num_tags", num_tags)
        build_front_end(self, sample_rate, frame_length, frame_step, num_mel_bins, stack, spec_augment)
        arguments.one_of("cell", cell, tuple(RECURRENT_LAYERS))
        self.labeller = SequenceLabeller(
            vocab_size=None, num_tags=self.num_tags, cell=cell, units=units, num_layers=num_layers,
            bidirectional=bidirectional, dropout=dropout, feedback=feedback, tag_embedding_dim=tag_embedding_dim,
            cell_options=cell_options, name="labeller",
        )

    @property
    def feedback(self):
        return self.labeller.feedback

    @property
    def start_tag(self):
        """The tag fed back before the first output frame (`num_tags`)."""
        return self.labeller.start_tag

    def build(self, input_shape):
        self.labeller.build((None, None, self.stack * self.front_end.num_mel_bins))

    def output_lengths(self, lengths):
        """int32 [batch]: the output frames of audio of `lengths` samples."""
        return stacked_lengths(self.front_end.frame_lengths(lengths), self.stack)

    def features(self, audio, lengths=None, training=False):
        """(stacked features [batch, output frames, stack * num_mel_bins], their mask [batch, output frames])."""
        return audio_features(self, audio, lengths, training)

    def call(self, inputs, previous_tags=None, training=False):
        audio, lengths, fed_back = _unpack(inputs)
        if fed_back is not None:
            if previous_tags is not None:
                raise ValueError("previous_tags were given twice: in the inputs and as an argument; give them once")
            previous_tags = fed_back
        stacked, mask = self.features(audio, lengths, training=training)
        if previous_tags is not None:
            return self.labeller((stacked, previous_tags), training=training, mask=mask)
        return self.labeller(stacked, training=training, mask=mask)

    def shift_tags(self, tags):
        """int32 [batch, output frames]: the teacher-forcing `previous_tags` for gold frame tags."""
        return shift_tags(tags, self.start_tag)

    def get_config(self):
        labeller = self.labeller
        return {
            **super().get_config(),
            "num_tags": self.num_tags,
            **front_end_config(self),
            "cell": labeller.cell,
            "units": labeller.units,
            "num_layers": labeller.num_layers,
            "bidirectional": labeller.bidirectional,
            "dropout": labeller.dropout,
            "feedback": labeller.feedback,
            "tag_embedding_dim": labeller.tag_embedding_dim,
            "cell_options": labeller.cell_options,
        }
