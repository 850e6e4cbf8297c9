"""ListenAttendSpell: audio in, characters out, through an attention encoder–decoder (W. Chan, N. Jaitly, Q. Le &
O. Vinyals 2016, "Listen, attend and spell"): the lecture's encoder–decoder with attention, where the source is
speech."""

import keras

from zoo.models.acoustic_model.acoustic_model import audio_features
from zoo.models.acoustic_model.acoustic_model import build_front_end
from zoo.models.acoustic_model.acoustic_model import front_end_config
from zoo.models.acoustic_model.acoustic_model import stacked_lengths
from zoo.models.seq2seq.seq2seq import Seq2Seq


@keras.saving.register_keras_serializable(package="zoo")
class ListenAttendSpell(keras.Model):
    """Next-character logits [batch, T, target_vocab_size] for audio [batch, samples] and the characters so far.

        F = stack_k(SpecAugment(LogMelSpectrogram(x)))     the listener's input: `AcousticModel`'s front end
                                                            (log-mel, masking while training, k frames side by side)
        logits = Seq2Seq((F, mask), y_in)                   `speller`: a bidirectional recurrent encoder over F (the
                                                            listener), a decoder with attention over its states
                                                            (the speller); `zoo.models.Seq2Seq` without a source
                                                            vocabulary has the equations

    Chan et al.'s listener shortens the sequence with a pyramid of BLSTMs (by 8); here the frames are stacked by k
    before the encoder (k = 4: 40 ms per encoder step), which shortens it the same way at no cost.

    Args:
        target_vocab_size: positive int, the output vocabulary (characters and the specials).
        sample_rate, frame_length, frame_step, num_mel_bins, stack, spec_augment: the front end's, as in
            `AcousticModel` (defaults 16000, 400, 160, 80, 4, None).
        cell, units, encoder_layers, embedding_dim, attention, attention_options, attention_layer_size, bridge,
            dropout, cell_options: the encoder–decoder's, as in `Seq2Seq` (defaults "lstm", 128, 2, None,
            "bahdanau", None, None, "dense", 0.0, None); the encoder is bidirectional.
        pad_id: the target's padding id (default 0).

    Call arguments:
        inputs: `(audio, lengths, target_in)` (or a dict with those keys): audio float [batch, samples] in [-1, 1]
            or int16 PCM, lengths int [batch] (the real samples of each row), target_in int [batch, T] (the
            transcript's ids shifted right, <bos> first, padded with `pad_id`).
        training: SpecAugment and dropout are active only while training.

    Decoding: `initial_state((audio, lengths))`, `step(tokens, state)` and `alignment(state)` as in `Seq2Seq`, so
    `zoo.decoding.generate` and `beam_search` decode it (with `source_mask=model.source_mask((audio, lengths))`).

    Example:
        ```python
        model = zoo.models.get("las_acoustic_model", target_vocab_size=31)
        logits = model((audio, lengths, target_in))
        out = zoo.decoding.beam_search(model.step, model.initial_state((audio, lengths)), bos_ids, 60, eos_id=2,
                                       beam_size=4, alignment_fn=model.alignment,
                                       source_mask=model.source_mask((audio, lengths)))  # bos_ids [batch]
        ```
    """

    def __init__(self, target_vocab_size, sample_rate=16000, frame_length=400, frame_step=160, num_mel_bins=80,
                 stack=4, spec_augment=None, cell="lstm", units=128, encoder_layers=2, embedding_dim=None,
                 attention="bahdanau", attention_options=None, attention_layer_size=None, bridge="dense", dropout=0.0,
                 cell_options=None, pad_id=0, **kwargs):
        super().__init__(**kwargs)
        build_front_end(self, sample_rate, frame_length, frame_step, num_mel_bins, stack, spec_augment)
        self.speller = Seq2Seq(
            None, target_vocab_size, source_dim=self.stack * self.front_end.num_mel_bins, cell=cell, units=units,
            encoder_layers=encoder_layers, bidirectional=True, embedding_dim=embedding_dim, attention=attention,
            attention_options=attention_options, attention_layer_size=attention_layer_size, bridge=bridge,
            dropout=dropout, cell_options=cell_options, pad_id=pad_id, name="speller",
        )

    @property
    def target_vocab_size(self):
        return self.speller.target_vocab_size

    def build(self, input_shape=None):
        # The speller's input shapes ((features, mask), target_in): a SavedModel traces its default signature from
        # them.
        self.speller.build((((None, None, self.speller.source_dim), (None, None)), (None, None)))

    def output_lengths(self, lengths):
        """int32 [batch]: the encoder steps of audio of `lengths` samples."""
        return stacked_lengths(self.front_end.frame_lengths(lengths), self.stack)

    def source(self, audio_and_lengths, training=False):
        """The speller's source, (features, mask), of (audio, lengths)."""
        audio, lengths = audio_and_lengths
        return audio_features(self, audio, lengths, training)

    def source_mask(self, audio_and_lengths):
        """bool [batch, encoder steps]: the real steps of each row."""
        audio, lengths = audio_and_lengths
        return audio_features(self, audio, lengths)[1]

    def call(self, inputs, training=False):
        if isinstance(inputs, dict):
            inputs = (inputs["audio"], inputs["lengths"], inputs["target_in"])
        if not isinstance(inputs, (tuple, list)) or len(inputs) != 3:
            raise ValueError("ListenAttendSpell takes (audio, lengths, target_in) or a dict with those keys")
        audio, lengths, target_in = inputs
        return self.speller((self.source((audio, lengths), training=training), target_in), training=training)

    def initial_state(self, audio_and_lengths):
        return self.speller.initial_state(self.source(audio_and_lengths))

    def step(self, tokens, state):
        return self.speller.step(tokens, state)

    def alignment(self, state):
        return self.speller.alignment(state)

    def get_config(self):
        speller = self.speller
        return {
            **super().get_config(),
            "target_vocab_size": speller.target_vocab_size,
            **front_end_config(self),
            "cell": speller.cell,
            "units": speller.units,
            "encoder_layers": speller.encoder_layers,
            "embedding_dim": speller.embedding_dim,
            "attention": speller.attention,
            "attention_options": speller.attention_options,
            "attention_layer_size": speller.attention_layer_size,
            "bridge": speller.bridge,
            "dropout": speller.dropout,
            "cell_options": speller.cell_options,
            "pad_id": speller.pad_id,
        }
