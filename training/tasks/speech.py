"""Speech recognition, the lecture's case 2: audio in, words out, input and output of different modality.

Data (`training.data.speech`):
- "synthetic" (default): spoken digit strings and commands synthesized with eSpeak NG, seeded, on voices split so
  that validation and test voices are never heard in training; noise at a drawn SNR. The utterances are synthesized
  once per data config and kept as TFRecord files under `cache_dir` (default `$SEQZOO_CACHE/speech`, else
  `$XDG_CACHE_HOME/seqzoo/speech` or `~/.cache/seqzoo/speech`); later runs and epochs read them. A fourth split, "test_clean_digits", holds clean digit
  strings spoken by the test voices (the issue's target is measured on it).
- "files": `--data_dir=DIR` with `DIR/{train,valid,test}.tsv` manifests of 16 kHz mono 16-bit PCM WAV files
  (`speech.read_manifest`).

Objectives:
- "ctc" (presets `ctc`): an `AcousticModel` (log-mel, SpecAugment, frame stacking, bidirectional LSTMs) trained with
  CTC (Graves et al. 2006) over characters (`labels` "characters": the training transcripts' characters, the space
  among them) or words (`labels` "words"). Labels are ids 1..V, 0 is the blank.
- "attention" (preset `attention`): a `ListenAttendSpell` model (the same front end read by an encoder–decoder with
  Bahdanau attention; Chan et al. 2016) spells the transcript character by character, trained by teacher forcing
  (ids: `<pad>` 0, `<bos>` 1, `<eos>` 2, the characters from 3). Validation decodes every utterance greedily for its
  error rates (`eval_predictions`); the export decodes greedily or by beam search (`decoder`, `beam_width`), at
  most `decode_length` characters.
- "frames" (presets `feedback` and `plain`): the lecture's same-length form. Every output frame (30 ms) is tagged
  with the word whose sound covers its centre (from eSpeak's word positions): 0 silence, 1 + 2w the first frame of
  word w, 2 + 2w its other frames; a left-to-right labeller is trained on them with the cross-entropy, the
  previous frame's gold tag fed back (`feedback`: teacher forcing; its own choice at inference) or not (`plain`).
  Runs of tags collapse into words (`zoo.decoding.collapse_word_tags`). Needs the synthetic corpus' alignments.

Batches: the audio of a split is held in memory as int16 (the model scales it), bucketed by length in training
(`training.data.batching`). Inputs are (audio, lengths), with the fed-back tags when a feedback model trains and
`<bos>` + characters for the attention model; targets are (labels, frame tags + 1, or characters + `<eos>`, all with
0 padding; the audio's lengths).

Metrics: `wer` and `cer` (word and character error rates: edit distances summed over the split over the reference's
words or characters), from the greedy CTC path or the collapsed tags, computed in the graph (`tf.edit_distance`);
`frame_accuracy` for the frame objective. `training.evaluate` adds `decode_metrics`: WER and CER by `jiwer` of the
exported decoding (greedy, and beam search for CTC and attention) against the raw transcripts, per split and on the
test voices' clean digit strings.

Exports (`SpeechServing`): `serving_default(wav: string [batch])`: WAV file bytes (REST: {"b64": ...}), decoded in
the graph; a file that is not 16 kHz mono is INVALID_ARGUMENT naming its rate and channels. `transcribe_samples
(samples: float [batch, time] in [-1, 1], lengths: int32 [batch])`. Both return transcript: string [batch].
"""

import functools
import hashlib
import inspect
import json
import os
import weakref

import numpy as np
import tensorflow as tf

import zoo
from training.data import speech as speech_data
from training.tasks.task import Task
from zoo.decoding import beam_search
from zoo.decoding import generate
from zoo.decoding.ctc import collapse_word_tags
from zoo.decoding.ctc import ctc_beam_search_decode
from zoo.decoding.ctc import ctc_greedy_decode
from zoo.models.acoustic_model.acoustic_model import AcousticModel
from zoo.models.acoustic_model.acoustic_model import stacked_lengths
from zoo.models.sequence_labeller.sequence_labeller import shift_tags

SPLITS = ("train", "validation", "test")
CLEAN_DIGITS = "test_clean_digits"
# Bumped when the synthesized data changes, so that older cache files are not read for newer data.
CACHE_VERSION = 2

_COMMON = {
    "corpus": "synthetic",
    "data_dir": None,
    "cache_dir": None,
    "train_size": 6000,
    "validation_size": 400,
    "test_size": 600,
    "clean_digits_size": 300,
    "utterances": None,  # "digits", "commands" or None (both)
    "snr": "drawn",  # "drawn", None (clean) or a number (dB)
    "lowercase": True,
    "labels": "characters",
    "vocabulary": None,  # the labels of a run this one is initialised from (warm start)
    "objective": "ctc",
    "model": "ctc_acoustic_model",
    "model_options": {},
    "decoder": "greedy",  # of the export: "greedy" or "beam" (CTC, attention)
    "beam_width": 16,
    "decode_length": 80,  # the attention model's longest transcript, in characters
    "batch_size": 32,
    "learning_rate": 1e-3,
    "clip_global_norm": 5.0,
    "epochs": 20,
}

LABELS = ("characters", "words")
OBJECTIVES = ("ctc", "frames", "attention")
# The attention model's special ids; its characters are 3 and up.
PAD_ID, BOS_ID, EOS_ID = 0, 1, 2
SPECIAL_IDS = 3
CORPORA = ("synthetic", "files")
UTTERANCES = (None, "digits", "commands")
DECODERS = ("greedy", "beam")


class SpeechTask(Task):
    name = "speech"
    monitor = ("wer", "min")
    default_preset = "ctc"
    warm_start_keys = ("vocabulary",)
    presets = {
        "ctc": _COMMON,
        "feedback": {**_COMMON, "labels": "words", "objective": "frames", "model": "feedback_acoustic_model"},
        "plain": {**_COMMON, "labels": "words", "objective": "frames", "model": "plain_acoustic_model"},
        "attention": {**_COMMON, "objective": "attention", "model": "las_acoustic_model", "decoder": "beam",
                      "beam_width": 4},
    }

    def check_config(self, config):
        super().check_config(config)
        for key, allowed in (("corpus", CORPORA), ("labels", LABELS), ("objective", OBJECTIVES),
                             ("utterances", UTTERANCES), ("decoder", DECODERS)):
            if config[key] not in allowed:
                raise ValueError(f"{key} must be one of {allowed}, got {config[key]!r}")
        snr = config["snr"]
        if not (snr is None or snr == "drawn" or (isinstance(snr, (int, float)) and not isinstance(snr, bool))):
            raise ValueError(f"snr must be 'drawn', None (clean) or a number of dB, got {snr!r}")
        if config["corpus"] == "files" and not config["data_dir"]:
            raise ValueError("corpus 'files' reads --data_dir=DIR with DIR/{train,valid,test}.tsv; give data_dir")
        if config["objective"] == "frames":
            if config["labels"] != "words" or config["corpus"] != "synthetic":
                raise ValueError(
                    "objective 'frames' tags every frame with its word from the synthesized speech's alignments: it "
                    f"needs labels 'words' and corpus 'synthetic', got labels {config['labels']!r} and corpus "
                    f"{config['corpus']!r}"
                )
        elif config["objective"] == "attention":
            if config["model"] not in zoo.models.names() or "target_vocab_size" not in zoo.models.arguments_of(
                    config["model"]):
                raise ValueError(f"objective 'attention' spells the transcript with an encoder–decoder over audio: "
                                 f"model must be a ListenAttendSpell preset such as 'las_acoustic_model', got "
                                 f"{config['model']!r}")
        if config["objective"] != "attention" and (config["model"] not in zoo.models.names()
                                                   or "num_tags" not in zoo.models.arguments_of(config["model"])):
            raise ValueError(f"objective {config['objective']!r} reads per-frame outputs: model must be an "
                             f"AcousticModel preset such as 'ctc_acoustic_model', got {config['model']!r}")
        if config["objective"] == "ctc" and _model_options(config).get("feedback"):
            raise ValueError(
                f"model {config['model']!r} feeds back its previous frame's tag, which only the 'frames' objective "
                "gives it; use objective 'frames' (the feedback preset) or a model without feedback"
            )
        for key in ("beam_width", "decode_length", "clean_digits_size", "validation_size", "test_size"):
            value = config[key]
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive int, got {value!r}")

    def warm_start_config(self, config, source_config):
        """The source run's labels: a read-out row must mean the label it meant to the weights."""
        if (config["labels"], config["objective"]) != (source_config["labels"], source_config["objective"]):
            raise ValueError(
                f"the run to initialise from has labels {source_config['labels']!r} and objective "
                f"{source_config['objective']!r}, this run {config['labels']!r} and {config['objective']!r}; they "
                "must agree"
            )
        return {**config, "vocabulary": list(self.corpus(source_config).vocabulary)}

    # Data.

    def corpus(self, config):
        """The `SpeechCorpus` of this config (cached)."""
        keys = ("corpus", "data_dir", "cache_dir", "train_size", "validation_size", "test_size", "clean_digits_size",
                "utterances", "snr", "lowercase", "labels", "vocabulary", "objective", "model", "model_options",
                "seed")
        return _corpus(json.dumps({k: config.get(k) for k in keys}, sort_keys=True))

    def split_data(self, config):
        return self.corpus(config).splits

    def steps_per_epoch(self, config, global_batch_size):
        if config.get("steps_per_epoch"):
            return int(config["steps_per_epoch"])
        size = len(self.split_data(config)["train"][1][1])
        if size < global_batch_size:
            raise ValueError(f"the training split ({size} utterances) is smaller than one global batch "
                             f"({global_batch_size}); add utterances or lower batch_size")
        return size // global_batch_size

    def dataset(self, config, split, batch_size, **kwargs):
        data = super().dataset(config, split, batch_size, **kwargs)
        if split == "train" and _model_options(config).get("feedback"):
            # Teacher forcing: the gold tag of the frame before, the start tag first.
            start = self.num_tags(config)
            data = data.map(lambda x, y, w: ((*x, shift_tags(tf.maximum(y[0] - 1, 0), start)), y, w))
        return data

    def input_features(self, config):
        return None

    def example_features(self, config):
        return None

    def chance_levels(self, config):
        return {"wer": 1.0}

    # Model, loss, metrics.

    def num_tags(self, config):
        """The model's output size: the labels and CTC's blank, the frame tags, or the characters and the
        attention model's specials."""
        size = len(self.corpus(config).vocabulary)
        return {"ctc": size + 1, "frames": 1 + 2 * size, "attention": size + SPECIAL_IDS}[config["objective"]]

    def model_head(self, config):
        return {}

    def build_model(self, config):
        size = "target_vocab_size" if config["objective"] == "attention" else "num_tags"
        return zoo.models.get(config["model"], **{size: self.num_tags(config)}, **config["model_options"])

    def eval_predictions(self, config, model, inputs):
        """The attention model's teacher-forced logits (for the loss) and its greedy transcripts (for the error
        rates): {"logits", "decoded" int32 [batch, decode_length], "decoded_lengths"}; the other models' logits."""
        logits = model(inputs, training=False)
        if config["objective"] != "attention":
            return logits
        audio, lengths, _ = inputs
        decoded, decoded_lengths = _spell_greedily(model, audio, lengths, int(config["decode_length"]))
        return {"logits": logits, "decoded": decoded, "decoded_lengths": decoded_lengths}

    def output_lengths(self, config, samples):
        """int32 [batch]: the model's output frames for `samples` [batch] (`AcousticModel.output_lengths`)."""
        frame_length, frame_step, stack = _front_end(config)
        samples = tf.cast(samples, tf.int32)
        frames = tf.where(samples >= frame_length, (samples - frame_length) // frame_step + 1, 0)
        return stacked_lengths(frames, stack)

    def loss(self, config, targets, predictions):
        labels, samples = targets
        if isinstance(predictions, dict):
            predictions = predictions["logits"]
        logits = tf.cast(predictions, tf.float32)
        if config["objective"] == "attention":
            mask = tf.cast(labels > 0, tf.float32)
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), logits)
            return tf.reduce_sum(cross_entropy * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        if config["objective"] == "frames":
            tags, mask = _tags_and_mask(labels)
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(tags, logits)
            return tf.reduce_sum(cross_entropy * mask, axis=1) / tf.maximum(tf.reduce_sum(mask, axis=1), 1.0)
        return ctc_loss(labels, logits, self.output_lengths(config, samples))

    def metrics(self, config, targets, predictions):
        labels, samples = targets
        vocabulary = tf.constant(self.corpus(config).vocabulary)
        separator = "" if config["labels"] == "characters" else " "
        if config["objective"] == "attention":
            labels = tf.cast(labels, tf.int32)
            logits = predictions["logits"] if isinstance(predictions, dict) else predictions
            mask = tf.cast(labels > 0, tf.float32)
            predicted = tf.argmax(logits, axis=-1, output_type=tf.int32)
            result = {"correct_tokens": tf.reduce_sum(tf.cast(tf.equal(predicted, labels), tf.float32) * mask, 1),
                      "tokens": tf.reduce_sum(mask, axis=1)}
            # The reference: the labels before <eos>.
            references = label_strings(labels, tf.reduce_sum(tf.cast(labels >= SPECIAL_IDS, tf.int32), axis=1),
                                       vocabulary, separator, offset=SPECIAL_IDS)
            if not isinstance(predictions, dict):  # training: teacher-forced outputs only, no transcripts
                return result
            hypotheses = label_strings(predictions["decoded"], predictions["decoded_lengths"], vocabulary, separator,
                                       offset=SPECIAL_IDS)
        elif config["objective"] == "frames":
            tags, mask = _tags_and_mask(labels)
            lengths = tf.reduce_sum(tf.cast(mask, tf.int32), axis=1)
            predicted = tf.argmax(predictions, axis=-1, output_type=tf.int32)
            words, counts = collapse_word_tags(predicted, lengths)
            gold, gold_counts = collapse_word_tags(tags, lengths)
            result = {"correct_frames": tf.reduce_sum(tf.cast(tf.equal(predicted, tags), tf.float32) * mask, axis=1),
                      "frames": tf.reduce_sum(mask, axis=1)}
            hypotheses = label_strings(words, counts, vocabulary, separator, offset=0)
            references = label_strings(gold, gold_counts, vocabulary, separator, offset=0)
        else:
            labels = tf.cast(labels, tf.int32)
            logit_lengths = self.output_lengths(config, samples)
            decoded, counts = ctc_greedy_decode(predictions, logit_lengths)
            label_lengths = tf.reduce_sum(tf.cast(labels > 0, tf.int32), axis=1)
            hypotheses = label_strings(decoded, counts, vocabulary, separator, offset=1)
            references = label_strings(labels, label_lengths, vocabulary, separator, offset=1)
            result = {"unalignable": tf.cast(~alignable(labels, logit_lengths), tf.float32)}
        return {**result, **error_counts(hypotheses, references)}

    def summarize(self, config, means):
        summary = dict(means)
        if "words" in summary:
            summary["wer"] = summary.pop("word_errors") / max(summary.pop("words"), 1e-12)
            summary["cer"] = summary.pop("char_errors") / max(summary.pop("chars"), 1e-12)
        if "frames" in summary:
            summary["frame_accuracy"] = summary.pop("correct_frames") / max(summary.pop("frames"), 1e-12)
        if "tokens" in summary:
            summary["token_accuracy"] = summary.pop("correct_tokens") / max(summary.pop("tokens"), 1e-12)
        return summary

    # Decoding.

    def transcriber(self, config, model, method=None):
        """A tf.function (samples float [batch, time], lengths int32 [batch]) -> transcripts string [batch]: the
        model's decoding (`method` "greedy" or "beam", default the config's `decoder`), as the export runs it. Kept
        per model (weakly) and settings, so that it is traced once however often it runs."""
        method = method or config["decoder"]
        vocabulary = tuple(self.corpus(config).vocabulary)
        settings = (method, vocabulary, config["labels"], config["objective"], int(config["beam_width"]),
                    int(config["decode_length"]))
        per_model = self.__dict__.setdefault("_transcribers", weakref.WeakKeyDictionary()).setdefault(model, {})
        if settings not in per_model:
            decode = _Decoder(weakref.ref(model), list(vocabulary), config, method)
            per_model[settings] = tf.function(decode, input_signature=[tf.TensorSpec([None, None], tf.float32),
                                                                       tf.TensorSpec([None], tf.int32)])
        return per_model[settings]

    def transcribe(self, config, model, audio, method=None, batch_size=32):
        """The transcripts (str) of `audio` (a list of 1-D float arrays at 16 kHz)."""
        transcribe = self.transcriber(config, model, method)
        order = np.argsort([len(a) for a in audio])  # batches of similar lengths: little padding
        found = [None] * len(audio)
        for start in range(0, len(audio), batch_size):
            rows = order[start : start + batch_size]
            width = max(1, max(len(audio[i]) for i in rows))
            batch = np.zeros((len(rows), width), np.float32)
            for row, index in enumerate(rows):
                batch[row, : len(audio[index])] = _as_float(audio[index])
            lengths = np.array([len(audio[i]) for i in rows], np.int32)
            for index, text in zip(rows, transcribe(batch, lengths).numpy()):
                found[index] = text.decode("utf-8")
        return found

    def decode_metrics(self, config, model, split):
        """WER and CER (jiwer) of the greedy decoding and, with CTC or attention, of beam search, against the raw
        transcripts of `split`; for the test split of the synthetic corpus also on the test voices' clean digit
        strings ("wer_clean_digits_...")."""
        import jiwer

        corpus = self.corpus(config)
        methods = ("greedy",) if config["objective"] == "frames" else ("greedy", "beam")
        sets = {"": corpus.examples[split]}
        if split == "test" and CLEAN_DIGITS in corpus.examples:
            sets["_clean_digits"] = corpus.examples[CLEAN_DIGITS]
        result = {}
        for suffix, examples in sets.items():
            references = [corpus.normalize(e.text) for e in examples]
            for method in methods:
                hypotheses = self.transcribe(config, model, [e.audio for e in examples], method)
                result[f"wer{suffix}_{method}"] = jiwer.wer(references, hypotheses)
                result[f"cer{suffix}_{method}"] = jiwer.cer(references, hypotheses)
        return result

    # Export.

    def serving_module(self, config, model):
        return SpeechServing(self, config, model)

    def warmup_inputs(self, config, count=2):
        """The first `count` test utterances as WAV files."""
        examples = self.corpus(config).examples["test"][:count]
        return {"wav": tf.constant([speech_data.wav_bytes(_as_float(e.audio)) for e in examples])}


# Labels and errors in the graph.


def label_strings(ids, lengths, vocabulary, separator, offset):
    """string [batch]: each row's first `lengths` ids (label id i is vocabulary[i - offset]) joined by `separator`."""
    ids = tf.cast(ids, tf.int32)
    real = tf.sequence_mask(lengths, tf.shape(ids)[1])
    tokens = tf.gather(vocabulary, tf.clip_by_value(ids - offset, 0, tf.shape(vocabulary)[0] - 1))
    ragged = tf.ragged.boolean_mask(tokens, real)
    return tf.strings.reduce_join(ragged, axis=1, separator=separator)


def error_counts(hypotheses, references):
    """Per row: word and character edit distances of the hypotheses from the references, and the references' word
    and character counts ({"word_errors", "words", "char_errors", "chars"}, float32 [batch]); words are split on
    whitespace."""
    def distance(split):
        hypothesis, reference = split(hypotheses), split(references)
        errors = tf.edit_distance(hypothesis.to_sparse(), reference.to_sparse(), normalize=False)
        return errors, tf.cast(reference.row_lengths(), tf.float32)

    word_errors, words = distance(tf.strings.split)
    char_errors, chars = distance(lambda s: tf.strings.unicode_split(s, "UTF-8"))
    return {"word_errors": word_errors, "words": words, "char_errors": char_errors, "chars": chars}


def alignable(labels, logit_lengths):
    """bool [batch]: whether CTC can align each row's labels (ids > 0, 0 padding) with its frames: one frame per
    label, and a blank between two equal labels in a row."""
    labels = tf.cast(labels, tf.int32)
    repeats = tf.reduce_sum(tf.cast((labels[:, 1:] == labels[:, :-1]) & (labels[:, 1:] > 0), tf.int32), axis=1)
    return tf.reduce_sum(tf.cast(labels > 0, tf.int32), axis=1) + repeats <= tf.cast(logit_lengths, tf.int32)


def ctc_loss(labels, logits, logit_lengths):
    """float32 [batch]: CTC's negative log-likelihood of each row's labels (ids 1..V, 0 padding) under logits
    [batch, frames, V + 1] whose class 0 is the blank, each row over its first `logit_lengths` frames.

    A row CTC cannot align (`alignable`: too few frames for its labels), and a row without labels (the padding of an
    evaluation batch), costs 0 and has no gradient, rather than an infinite loss and a NaN gradient. TensorFlow's
    CTC kernel computes it (`tf.compat.v1.nn.ctc_loss`, the op that can leave such rows out; its blank is the last
    class, so the blank column is moved there): on CPU it is about ten times faster than `tf.nn.ctc_loss`'s dense
    labels, whose scan over time also trips Grappler's shape inference in evaluation.
    """
    labels = tf.cast(labels, tf.int32)
    lengths = tf.reduce_sum(tf.cast(labels > 0, tf.int32), axis=1)
    # The kernel rejects an empty label sequence: such a row gets one label, and its loss is set to 0 below.
    labels = tf.where((lengths == 0)[:, None] & (tf.range(tf.shape(labels)[1]) == 0)[None, :], 1, labels)
    sparse = tf.sparse.from_dense(labels)
    sparse = tf.SparseTensor(sparse.indices, sparse.values - 1, sparse.dense_shape)
    logits = tf.cast(logits, tf.float32)
    rotated = tf.concat([logits[..., 1:], logits[..., :1]], axis=-1)
    losses = tf.compat.v1.nn.ctc_loss(sparse, rotated, tf.cast(logit_lengths, tf.int32), time_major=False,
                                      ignore_longer_outputs_than_inputs=True)
    # ignore_longer_outputs_than_inputs leaves out rows with more labels than frames; a row whose repeated labels
    # lack the blanks between them has an infinite loss instead.
    return tf.where((lengths > 0) & alignable(labels, logit_lengths), losses, 0.0)


def _tags_and_mask(labels):
    """Frame targets hold tag + 1 with 0 at padding: (tags int32, mask float32)."""
    labels = tf.cast(labels, tf.int32)
    return tf.maximum(labels - 1, 0), tf.cast(labels > 0, tf.float32)


def _as_float(audio):
    audio = np.asarray(audio)
    return audio.astype(np.float32) / 32768.0 if audio.dtype == np.int16 else audio.astype(np.float32)


def _model_options(config):
    return {**zoo.models.preset(config["model"]), **config["model_options"]}


def _front_end(config):
    """(frame_length, frame_step, stack) of the config's model: its options, else the preset's, else the class's."""
    defaults = {name: p.default for name, p in inspect.signature(AcousticModel.__init__).parameters.items()}
    options = {**defaults, **_model_options(config)}
    return int(options["frame_length"]), int(options["frame_step"]), int(options["stack"])


# The corpus.


class SpeechCorpus:
    """The utterances of a config in memory (`examples`: {split: [speech.Example]}), its label vocabulary, and the
    (inputs, targets) columns the batches are cut from (`splits`)."""

    def __init__(self, config):
        self.config = config
        self.lowercase = config["lowercase"]
        if config["corpus"] == "synthetic":
            self.examples = _synthetic(config)
        else:
            self.examples = {split: [e._replace(text=self.normalize(e.text)) for e in
                                     speech_data.read_split(config["data_dir"], split)] for split in SPLITS}
        self.vocabulary = list(config["vocabulary"] or self._vocabulary(self.examples["train"], config["labels"]))
        if not self.vocabulary:
            raise ValueError("the training transcripts hold no labels: check the manifests' transcripts")
        self.ids = {token: index for index, token in enumerate(self.vocabulary)}
        self.splits = {split: self._columns(self.examples[split], config) for split in SPLITS}

    def normalize(self, text):
        text = " ".join(text.split())
        return text.lower() if self.lowercase else text

    def _vocabulary(self, examples, labels):
        tokens = set()
        for example in examples:
            text = self.normalize(example.text)
            tokens.update(text if labels == "characters" else text.split())
        return sorted(tokens)

    def _labels(self, text):
        """Label ids 1..V of a transcript (characters or words; those outside the vocabulary left out)."""
        text = self.normalize(text)
        tokens = text if self.config["labels"] == "characters" else text.split()
        return np.array([self.ids[t] + 1 for t in tokens if t in self.ids], np.int32)

    def frame_tags(self, example, samples):
        """Tag + 1 (0 padding never occurs here) of each output frame of an utterance of `samples` samples: the
        word covering the frame's centre, 1 + 2w at the word's first frame, 2 + 2w after it, 0 for silence."""
        frame_length, frame_step, stack = _front_end(self.config)
        frames = 1 + (samples - frame_length) // frame_step if samples >= frame_length else 0
        outputs = -(-frames // stack)
        # An output frame spans input frames [j k, j k + k): its centre sample.
        centres = np.arange(outputs) * stack * frame_step + ((stack - 1) * frame_step + frame_length) // 2
        tags = np.zeros(outputs, np.int32)
        for text, start, end in example.words:
            inside = np.flatnonzero((centres >= start) & (centres < end))
            if len(inside) and text in self.ids:
                w = self.ids[text]
                tags[inside] = 2 + 2 * w
                tags[inside[0]] = 1 + 2 * w
        return tags + 1

    def _columns(self, examples, config):
        audio = [e.audio if e.audio.dtype == np.int16 else
                 np.round(np.clip(e.audio, -1.0, 1.0) * 32767).astype(np.int16) for e in examples]
        lengths = np.array([len(a) for a in audio], np.int32)
        if config["objective"] == "frames":
            labels = [self.frame_tags(e, len(a)) for e, a in zip(examples, audio)]
        elif config["objective"] == "attention":
            # Teacher forcing: <bos> y_1 .. y_n in, y_1 .. y_n <eos> out (the ids shifted past the specials).
            ids = [self._labels(e.text) - 1 + SPECIAL_IDS for e in examples]
            targets_in = [np.concatenate([[BOS_ID], i]).astype(np.int32) for i in ids]
            labels = [np.concatenate([i, [EOS_ID]]).astype(np.int32) for i in ids]
            return (audio, lengths, targets_in), (labels, lengths)
        else:
            labels = [self._labels(e.text) for e in examples]
        return (audio, lengths), (labels, lengths)


@functools.lru_cache(maxsize=2)
def _corpus(config_json):
    return SpeechCorpus(json.loads(config_json))


def cache_dir(config):
    """Where synthesized speech is kept: config["cache_dir"]; else $SEQZOO_CACHE/speech; else
    $XDG_CACHE_HOME/seqzoo/speech, or ~/.cache/seqzoo/speech."""
    if config.get("cache_dir"):
        return config["cache_dir"]
    if os.environ.get("SEQZOO_CACHE"):
        return os.path.join(os.environ["SEQZOO_CACHE"], "speech")
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "seqzoo", "speech")


def _synthetic(config):
    """{split: [Example]} of the synthetic corpus, read from its TFRecord cache or synthesized into it."""
    data = {key: config[key] for key in ("train_size", "validation_size", "test_size", "clean_digits_size",
                                         "utterances", "snr", "seed")}
    key = hashlib.sha256(json.dumps({**data, "version": CACHE_VERSION}, sort_keys=True).encode()).hexdigest()[:16]
    directory = os.path.join(cache_dir(config), key)
    paths = {split: os.path.join(directory, f"{split}.tfrecord") for split in (*SPLITS, CLEAN_DIGITS)}
    if all(os.path.exists(path) for path in paths.values()):
        return {split: read_records(path) for split, path in paths.items()}
    snr = config["snr"]
    sizes = {"train": config["train_size"], "validation": config["validation_size"], "test": config["test_size"]}
    examples = speech_data.speech_splits(sizes, config["seed"], snr_db=snr, kind=config["utterances"])
    # The clean digit strings of the test voices: from a stream of their own (seed + 1), never the test split's.
    examples[CLEAN_DIGITS] = speech_data.speech_splits({"test": config["clean_digits_size"]}, config["seed"] + 1,
                                                       snr_db=None, kind="digits", speakers_seed=config["seed"])["test"]
    os.makedirs(directory, exist_ok=True)
    for split, path in paths.items():
        write_records(path, examples[split])
    with open(os.path.join(directory, "data.json"), "w") as f:
        json.dump(data, f, indent=1)
    return {split: read_records(path) for split, path in paths.items()}


def write_records(path, examples):
    """Writes Examples as tf.train.Examples (16-bit PCM, transcript, word spans, speaker, SNR) to a TFRecord file,
    through a temporary name, so that a killed run leaves no partial cache file."""
    partial = path + ".partial"
    with tf.io.TFRecordWriter(partial) as writer:
        for e in examples:
            pcm = np.round(np.clip(_as_float(e.audio), -1.0, 1.0) * 32767).astype("<i2")
            feature = {
                "audio": _bytes([pcm.tobytes()]),
                "text": _bytes([e.text.encode()]),
                "word_texts": _bytes([w[0].encode() for w in e.words]),
                "word_starts": _ints([w[1] for w in e.words]),
                "word_ends": _ints([w[2] for w in e.words]),
                "speaker": _bytes([(e.speaker or "").encode()]),
                "snr_db": tf.train.Feature(float_list=tf.train.FloatList(value=[np.nan if e.snr_db is None
                                                                               else e.snr_db])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    os.replace(partial, path)


def read_records(path):
    """[speech.Example] of a TFRecord file of `write_records` (audio as int16)."""
    examples = []
    for record in tf.data.TFRecordDataset(path).as_numpy_iterator():
        f = tf.train.Example.FromString(record).features.feature
        words = tuple((t.decode(), int(s), int(e)) for t, s, e in zip(f["word_texts"].bytes_list.value,
                                                                       f["word_starts"].int64_list.value,
                                                                       f["word_ends"].int64_list.value))
        snr = f["snr_db"].float_list.value[0]
        examples.append(speech_data.Example(np.frombuffer(f["audio"].bytes_list.value[0], "<i2").astype(np.int16),
                                            f["text"].bytes_list.value[0].decode(), words,
                                            f["speaker"].bytes_list.value[0].decode() or None,
                                            None if np.isnan(snr) else float(snr)))
    return examples


def _bytes(values):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=values))


def _ints(values):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


# Decoding and export.


def _spell_greedily(model, audio, lengths, max_length):
    """The attention model's greedy transcripts: (ids int32 [batch, max_length] before <eos>, padded with 0, and
    their counts [batch])."""
    batch = tf.shape(audio)[0]
    out = generate(model.step, model.initial_state((audio, lengths)), tf.fill([batch, 1], BOS_ID),
                   tf.ones([batch], tf.int32), max_length, EOS_ID, pad_id=PAD_ID, banned_ids=(PAD_ID, BOS_ID))
    return _before_eos(out["tokens"])


def _spell_by_beam_search(model, audio, lengths, max_length, beam_width):
    """The attention model's best beam-search transcripts, as `_spell_greedily` returns them."""
    batch = tf.shape(audio)[0]
    out = beam_search(model.step, model.initial_state((audio, lengths)), tf.fill([batch], BOS_ID), max_length,
                      EOS_ID, beam_size=beam_width, pad_id=PAD_ID, banned_ids=(PAD_ID, BOS_ID))
    return _before_eos(out["tokens"][:, 0])


def _before_eos(tokens):
    tokens = tf.cast(tokens, tf.int32)
    real = tf.cumsum(tf.cast(tf.equal(tokens, EOS_ID) | tf.equal(tokens, PAD_ID), tf.int32), axis=1) == 0
    return tf.where(real, tokens, 0), tf.reduce_sum(tf.cast(real, tf.int32), axis=1)


class _Decoder:
    """samples [batch, time], lengths [batch] -> transcripts string [batch], in the graph. `model_ref()` gives the
    model: a weak reference where the decoder is cached apart from it (`SpeechTask.transcriber`), so that the cache
    does not keep a dropped model alive."""

    def __init__(self, model_ref, vocabulary, config, method):
        self.model_ref = model_ref
        self.vocabulary = tf.constant(vocabulary)
        self.separator = "" if config["labels"] == "characters" else " "
        self.objective = config["objective"]
        self.method = method
        self.beam_width = int(config["beam_width"])
        self.decode_length = int(config["decode_length"])

    def __call__(self, samples, lengths):
        # TensorFlow's CTC decoders reject an empty batch: it gets an empty answer without them.
        return tf.cond(tf.shape(samples)[0] > 0, lambda: self._transcripts(samples, lengths),
                       lambda: tf.zeros([0], tf.string))

    def _transcripts(self, samples, lengths):
        model = self.model_ref()
        lengths = tf.cast(lengths, tf.int32)
        if self.objective == "attention":
            if self.method == "beam":
                ids, counts = _spell_by_beam_search(model, samples, lengths, self.decode_length, self.beam_width)
            else:
                ids, counts = _spell_greedily(model, samples, lengths, self.decode_length)
            return tf.strings.strip(label_strings(ids, counts, self.vocabulary, self.separator, offset=SPECIAL_IDS))
        logits = model((samples, lengths), training=False)
        frames = model.output_lengths(lengths)
        if self.objective == "frames":
            tags = tf.argmax(logits, axis=-1, output_type=tf.int32)
            words, counts = collapse_word_tags(tags, frames)
            text = label_strings(words, counts, self.vocabulary, self.separator, offset=0)
        else:
            if self.method == "beam":
                labels, counts, _ = ctc_beam_search_decode(logits, frames, self.beam_width)
            else:
                labels, counts = ctc_greedy_decode(logits, frames)
            text = label_strings(labels, counts, self.vocabulary, self.separator, offset=1)
        return tf.strings.strip(text)


class SpeechServing(tf.Module):
    """The signatures of an exported speech model. Every input and output has the batch first, and a row's transcript
    never depends on the other rows (each is masked to its own length), so a server can batch requests.

    serving_default(wav: string [batch]) -> transcript: string [batch]. Each element is a WAV file's bytes (REST:
        {"b64": ...}); 16-bit PCM, 16 kHz, mono, else INVALID_ARGUMENT naming what the file holds.
    transcribe_samples(samples: float32 [batch, time] in [-1, 1], lengths: int32 [batch]) -> transcript: string
        [batch]; a length outside [0, time] is INVALID_ARGUMENT.

    The decoding is the config's `decoder`: CTC's best path or beam search (`beam_width`), or the collapsed frame
    tags of a frame labeller.
    """

    def __init__(self, task, config, model):
        super().__init__()
        self.model = model
        self.sample_rate = int(_model_options(config).get("sample_rate", speech_data.SAMPLE_RATE))
        self._decode = _Decoder(lambda: self.model, task.corpus(config).vocabulary, config, config["decoder"])
        self.functions = {
            "serving_default": tf.function(self._from_wav, input_signature=[tf.TensorSpec([None], tf.string,
                                                                                          name="wav")]),
            "transcribe_samples": tf.function(self._from_samples, input_signature=[
                tf.TensorSpec([None, None], tf.float32, name="samples"),
                tf.TensorSpec([None], tf.int32, name="lengths"),
            ]),
        }

    def close(self):
        """Nothing written for the save."""

    def _decode_wav(self, contents):
        audio, rate = tf.audio.decode_wav(contents)
        channels = tf.shape(audio)[1]
        expected = tf.logical_and(tf.equal(rate, self.sample_rate), tf.equal(channels, 1))
        message = tf.strings.join([
            "a WAV file holds audio at ", tf.strings.as_string(rate), " Hz in ", tf.strings.as_string(channels),
            f" channel(s); expected {self.sample_rate} Hz mono (16-bit PCM)"])
        with tf.control_dependencies([tf.debugging.Assert(expected, [message])]):
            return tf.identity(audio[:, 0])

    def _from_wav(self, wav):
        audio = tf.map_fn(self._decode_wav, wav,
                          fn_output_signature=tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0))
        return self._from_samples(audio.to_tensor(), tf.cast(audio.row_lengths(), tf.int32))

    def _from_samples(self, samples, lengths):
        time = tf.shape(samples)[1]
        valid = tf.reduce_all((lengths >= 0) & (lengths <= time))
        message = tf.strings.join(["lengths must be in [0, ", tf.strings.as_string(time),
                                   "] (the samples' time axis), got ", tf.strings.reduce_join(
                                       tf.strings.as_string(lengths), separator=", ")])
        with tf.control_dependencies([tf.debugging.Assert(valid, [message])]):
            lengths = tf.identity(lengths)
        return {"transcript": self._decode(samples, lengths)}
