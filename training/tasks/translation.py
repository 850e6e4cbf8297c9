"""Translation: the lecture's third case, an encoder–decoder that reads a source sentence and writes its translation.

Each pair becomes `((source, <bos> y_1 .. y_n), y_1 .. y_n <eos>)` (teacher forcing,
`training.data.batching.teacher_forcing`): the decoder reads the reference's tokens and learns to write the next one.
The loss is the token cross-entropy over the real target tokens (target padding masked), optionally with label
smoothing (Szegedy et al., 2016): the target distribution is (1 - eps) one-hot + eps / V, so each token costs
(1 - eps) * NLL + eps * (mean over the vocabulary of -log p). Training reports token accuracy and perplexity (from the
summed, unsmoothed token NLL). `training.evaluate` adds what needs decoded strings (`decode_metrics`): exact match,
corpus BLEU and chrF (sacrebleu, `training.text.scores`) of greedy and of beam-search translations.

Scheduled sampling (Bengio et al. 2015), optional: teacher forcing never shows the decoder its own mistakes, which it
reads when it translates. With `scheduled_sampling` set (e.g. `{"schedule": "inverse_sigmoid", "k": 300}`; the
schedules and their keys are in `training.tasks.scheduled_sampling`), training step i calls the model with
`sampling_probability` p_i = 1 - eps_i: each decoder step after the first reads, with probability p_i, a token drawn
from the model's own softmax of the step before instead of the reference's (`zoo.models.Seq2Seq`). The trainer hands
the task the step count (`train_predictions`), so a resumed run continues the schedule, and the draws are seeded by
(seed, step, replica). p_i is logged to TensorBoard as `sampling_probability` (`train_scalars`). The loss, the
metrics and evaluation are unchanged: validation is teacher-forced, decoding reads its own tokens anyway.

Corpora:
- "dates": dates written the ways people write them, in four languages, to ISO 8601 (`training.data.dates`), seeded;
  the test and validation dates are never seen in training, in any form. Characters in, characters out. The
  `dates_long*` presets write the same dates inside a line of filler words (`filler_words`), about 95 characters
  per source instead of about 14, with the date in the middle: the attention experiment's longer-input variant.
- "files": a parallel corpus `--data_dir=DIR` holding `{train,valid,test}.{SRC,TGT}`
  (`training.data.parallel_corpus`), with `--override=source_language=SRC,target_language=TGT`; tokenized with the
  tf-text tokenizer (by default words, and characters for scripts written without spaces, so Chinese works as is).
  Training batches are bucketed by length.

Each side has its own vocabulary, built from the training split (`<pad>` 0, `<unk>` 1, `<bos>` 2, `<eos>` 3). A run
initialised from another (`--init_from`) keeps that run's two vocabularies (config keys `source_vocabulary` and
`target_vocabulary`), so every id means what it meant to the trained weights.

Exports (`TranslationServing`): strings in, strings out, with tokenization, vocabulary lookup, beam search and
detokenization in the graph and both vocabularies under the SavedModel's `assets/`. `serving_default` takes sources
and returns the best translation of each with its score (the config's `beam_size`, `length_penalty` and
`decode_length`); `translate` takes a beam size and a maximum length per source as well; `nbest` returns every
hypothesis of the beam with its scores, tokens and (with attention) its alignment matrix. A translation never holds
`<pad>` or `<bos>`, nor `<unk>` unless the config sets `allow_unk` (the same in `translate` and so in
`training.evaluate`).
"""

import functools
import json
import os
import tempfile
import weakref

import numpy as np
import tensorflow as tf

import zoo
from training.data import batching
from training.data import dates as dates_data
from training.data import parallel_corpus
from training.tasks import scheduled_sampling
from training.tasks.language_model import allow_unk
from training.tasks.language_model import banned_ids
from training.tasks.language_model import token_sums
from training.tasks.language_model import token_summary
from training.tasks.task import Task
from training.text import scores
from training.text.text_encoder import TextEncoder
from training.text.tokenizer import Tokenizer
from training.text.vocabulary import SPECIALS
from training.text.vocabulary import Vocabulary
from zoo.decoding import beam_search
from zoo.decoding import generate

_COMMON = {
    "corpus": "dates",
    "data_dir": None,
    "source_language": None,
    "target_language": None,
    # Pairs generated per split ("dates" only; the "files" corpus has its own).
    "train_size": 20000,
    "validation_size": 500,
    "test_size": 1000,
    # None, or [low, high]: the longer-input variant ("dates" only), each date inside a line of low..high filler
    # words on either side (`training.data.dates.date_splits`).
    "filler_words": None,
    "source_tokenizer": {"level": "char"},
    "target_tokenizer": {"level": "char"},
    "min_count": 1,
    "max_vocab_size": 30000,
    # None: built from the training split; or the token list, specials first (set by --init_from).
    "source_vocabulary": None,
    "target_vocabulary": None,
    "max_length": 64,  # tokens of a source, and of a target with <eos>, kept; the rest is cut
    "model": "seq2seq_bahdanau",
    "model_options": {},
    "label_smoothing": 0.0,
    # None (teacher forcing) or a schedule of the probability that the decoder reads its own tokens, e.g.
    # {"schedule": "inverse_sigmoid", "k": 300} (training.tasks.scheduled_sampling).
    "scheduled_sampling": None,
    "batch_size": 64,
    "learning_rate": 3e-3,
    "clip_global_norm": 5.0,
    "epochs": 3,
    # Decoding in training.evaluate.
    "decode_length": 12,  # target tokens written at most, <eos> included
    "beam_size": 4,
    "length_penalty": 0.0,
    "allow_unk": False,  # whether decoding may write <unk> (never <pad> or <bos>), here and in the export
    "bleu_tokenize": "char",  # sacrebleu's BLEU tokenizer (training.text.scores.BLEU_TOKENIZERS)
}

_FILES = {
    **_COMMON,
    "corpus": "files",
    "source_language": "src",
    "target_language": "tgt",
    "source_tokenizer": {"level": "word", "split": "unspaced_scripts"},
    "target_tokenizer": {"level": "word", "split": "unspaced_scripts"},
    "model": "seq2seq_luong",
    # The attentional vector as wide as the bidirectional encoder's memory (2 * units): at the size of the Keras peer
    # (training.experiments.keras_peer) an attentional vector of `units` learned far more slowly (test BLEU 31
    # against 98 after 5 epochs on the synthetic language pair, three seeds) for 17% fewer parameters.
    "model_options": {"units": 256, "embedding_dim": 256, "attention_layer_size": 512},
    "max_length": 100,
    "decode_length": 100,
    "epochs": 10,
    "learning_rate": 1e-3,
    "bleu_tokenize": "13a",
}
del _FILES["train_size"], _FILES["validation_size"], _FILES["test_size"], _FILES["filler_words"]

# The longer-input variant: the same dates (same splits, forms and languages) inside 5 to 8 filler words on either
# side, about 95 characters per source instead of about 14; no source is cut (the longest possible has 189).
_LONG = {**_COMMON, "filler_words": [5, 8], "max_length": 192}


class TranslationTask(Task):
    name = "translation"
    monitor = ("perplexity", "min")
    default_preset = "dates"
    warm_start_keys = ("source_vocabulary", "target_vocabulary")
    presets = {
        # The three differ only in the attention (zoo.models.seq2seq presets): the attention experiment compares them.
        "dates": {**_COMMON, "model": "seq2seq_bahdanau"},
        "dates_luong": {**_COMMON, "model": "seq2seq_luong"},
        "dates_plain": {**_COMMON, "model": "seq2seq_plain"},
        # The same three on the longer-input variant: the fixed vector must carry the date through the filler.
        "dates_long": {**_LONG, "model": "seq2seq_bahdanau"},
        "dates_long_luong": {**_LONG, "model": "seq2seq_luong"},
        "dates_long_plain": {**_LONG, "model": "seq2seq_plain"},
        "files": _FILES,
    }

    def check_config(self, config):
        super().check_config(config)
        if config["corpus"] not in ("dates", "files"):
            raise ValueError(f"corpus must be 'dates' or 'files', got {config['corpus']!r}")
        allow_unk(config)
        scheduled_sampling.check(config.get("scheduled_sampling"))
        if config.get("filler_words") is not None:
            if config["corpus"] != "dates":
                raise ValueError(
                    f"filler_words is for the 'dates' corpus only, got filler_words={config['filler_words']!r} with "
                    f"corpus {config['corpus']!r}"
                )
            dates_data.checked_filler_words(config["filler_words"])
        if config["bleu_tokenize"] not in scores.BLEU_TOKENIZERS:
            raise ValueError(f"bleu_tokenize must be one of {scores.BLEU_TOKENIZERS}, got {config['bleu_tokenize']!r}")
        for side in ("source", "target"):
            if config[f"{side}_vocabulary"] is None and config["max_vocab_size"] <= len(SPECIALS):
                raise ValueError(
                    f"max_vocab_size must be more than {len(SPECIALS)} (the specials {list(SPECIALS)}), got "
                    f"{config['max_vocab_size']}"
                )

    def warm_start_config(self, config, source_config):
        for side in ("source", "target"):
            if config[f"{side}_tokenizer"] != source_config.get(f"{side}_tokenizer"):
                raise ValueError(
                    f"{side}_tokenizer {config[f'{side}_tokenizer']} differs from the run to initialise from, which "
                    f"used {source_config.get(f'{side}_tokenizer')}; a fine-tuned model keeps the token ids of that "
                    "run, so give it the same tokenizer"
                )
        result = dict(config)
        for side in ("source", "target"):
            tokens = source_config.get(f"{side}_vocabulary")
            if tokens is None:
                try:
                    tokens = list(getattr(self.corpus(source_config), side).vocabulary.tokens)
                except (OSError, ValueError) as error:
                    raise ValueError(
                        "the vocabularies of the run to initialise from are built from its training data, which "
                        f"cannot be read now: {error}"
                    ) from None
            if config.get(f"{side}_vocabulary") is not None and list(config[f"{side}_vocabulary"]) != list(tokens):
                raise ValueError(
                    f"{side}_vocabulary is set, and differs from the one of the run to initialise from, whose token "
                    f"ids the weights were trained with; leave {side}_vocabulary unset to take that run's"
                )
            result[f"{side}_vocabulary"] = list(tokens)
        return result

    # Data.

    def corpus(self, config):
        """The encoded parallel corpus of this config: a `ParallelCorpus` (cached)."""
        return _corpus(json.dumps({k: config.get(k) for k in _CORPUS_KEYS}, sort_keys=True))

    def split_data(self, config):
        """{split: ((sources, decoder_inputs), decoder_targets)}, each a list of int32 id arrays."""
        return self.corpus(config).splits

    def steps_per_epoch(self, config, global_batch_size):
        if config.get("steps_per_epoch"):
            return int(config["steps_per_epoch"])
        size = len(self.split_data(config)["train"][1])
        if size < global_batch_size:
            raise ValueError(
                f"the training split ({size} pairs) is smaller than one global batch ({global_batch_size}); "
                "add training pairs or lower batch_size"
            )
        return size // global_batch_size

    def input_features(self, config):
        return None

    def example_features(self, config):
        return None

    def chance_levels(self, config):
        return {"perplexity": self.corpus(config).unigram_perplexity}

    # Model, loss, metrics.

    def model_head(self, config):
        return {}

    def build_model(self, config):
        corpus = self.corpus(config)
        return zoo.models.get(
            config["model"],
            source_vocab_size=corpus.source.vocabulary.size,
            target_vocab_size=corpus.target.vocabulary.size,
            **config["model_options"],
        )

    def train_predictions(self, config, model, inputs, step):
        """Teacher forcing; with `scheduled_sampling`, the decoder reads its own tokens with the schedule's
        probability at `step`, its numbers drawn from (seed, step, replica): a resumed run draws what the
        uninterrupted one would have."""
        options = config.get("scheduled_sampling")
        if options is None:
            return model(inputs, training=True)
        context = tf.distribute.get_replica_context()
        replicas = tf.cast(context.num_replicas_in_sync if context else 1, tf.int64)
        replica = tf.cast(context.replica_id_in_sync_group if context else 0, tf.int64)
        seed = tf.stack([tf.constant(config["seed"], tf.int64), tf.cast(step, tf.int64) * replicas + replica])
        return model(inputs, training=True, sampling_probability=scheduled_sampling.sampling_probability(options, step),
                     sampling_seed=seed)

    def train_scalars(self, config, step):
        """The scheduled sampling probability at `step` (as `sampling_probability`), when it is on."""
        options = config.get("scheduled_sampling")
        if options is None:
            return {}
        return {"sampling_probability": float(scheduled_sampling.sampling_probability(options, step))}

    def loss(self, config, targets, predictions):
        per_token, mask = token_cross_entropy(targets, predictions, config["label_smoothing"])
        # Summed over the sentence, divided by the mean number of target tokens per training pair: the batch's loss
        # is its mean loss per token, every token weighted alike.
        return tf.reduce_sum(per_token * mask, axis=1) / self.corpus(config).mean_target_tokens

    def metrics(self, config, targets, predictions):
        return token_sums(targets, predictions, *token_cross_entropy(targets, predictions, 0.0))

    def summarize(self, config, means):
        """Perplexity and token accuracy from the means of the per-pair sums (their ratio is that of the split's
        sums)."""
        return token_summary(means)

    # Decoding.

    def translate(self, config, model, sources, method="greedy", batch_size=256):
        """The translations (str) of `sources` (str): greedy decoding, or beam search with `config["beam_size"]`
        and `config["length_penalty"]`, at most `config["decode_length"]` target tokens; `<pad>` and `<bos>` never
        written, `<unk>` only with `config["allow_unk"]`. Each source is cut to `config["max_length"]` tokens.
        The compiled search is kept per model and settings (`decoder`): a second call does not trace it again."""
        if method not in ("greedy", "beam"):
            raise ValueError(f"method must be 'greedy' or 'beam', got {method!r}")
        corpus = self.corpus(config)
        vocabulary = corpus.target.vocabulary
        decode = self.decoder(model, method, int(config["decode_length"]), int(config["beam_size"]),
                              float(config["length_penalty"]), vocabulary.bos_id, vocabulary.eos_id,
                              vocabulary.pad_id, banned_ids(vocabulary, config))
        encoded = [ids[: config["max_length"]] for ids in corpus.source.encode_lines(sources)]
        translations = []
        for start in range(0, len(encoded), batch_size):
            chunk = encoded[start : start + batch_size]
            width = max(1, max(len(ids) for ids in chunk))
            source = np.zeros((len(chunk), width), "int32")
            for row, ids in enumerate(chunk):
                source[row, : len(ids)] = ids
            tokens, lengths = decode(tf.constant(source))
            translations.extend(corpus.detokenize(tokens.numpy(), lengths.numpy()))
        return translations

    def decoder(self, model, *settings):
        """The compiled decoder (`_decoder`) of `model` for `settings` (`_decoder`'s arguments after the model), built
        once and kept: `translate` runs on every evaluation, in every experiment's loops and once per method, and a
        new tf.function per call would trace the whole greedy or beam search again each time.

        The cache holds the models weakly (keys of a `weakref.WeakKeyDictionary`; the decoders reach their model
        through a weak reference too), so that a model that is dropped elsewhere is freed with its decoders, though
        the task lives as long as the process. A model's Python attributes are read when its decoder is traced, once;
        its variables are read at every call, so training between calls is seen.

        Args:
            model: the translation model (`initial_state(source)` and `step(tokens, state)`, as `zoo.models.Seq2Seq`).
            settings: (method, decode_length, beam_size, length_penalty, bos_id, eos_id, pad_id, banned ids), as
                `translate` gives them (hashable: the banned ids a tuple).

        Returns:
            The tf.function `_decoder` builds: source ids [batch, S] -> (tokens, lengths).
        """
        decoders = self.__dict__.setdefault("_decoders", weakref.WeakKeyDictionary())
        per_model = decoders.setdefault(model, {})
        if settings not in per_model:
            per_model[settings] = _decoder(weakref.ref(model), *settings)
        return per_model[settings]

    def decode_metrics(self, config, model, split):
        """Exact match, corpus BLEU and chrF (0 to 100, sacrebleu) of the greedy and the beam translations of the
        split against its references: {"exact_match_greedy", "bleu_greedy", "chrf_greedy", "exact_match_beam",
        ...}, and the sacrebleu signatures under "bleu_signature" and "chrf_signature" (strings)."""
        sources, references = self.corpus(config).lines[split]
        result = {}
        for method in ("greedy", "beam"):
            found = scores.translation_scores(self.translate(config, model, sources, method), references,
                                              tokenize=config["bleu_tokenize"])
            for name in ("exact_match", "bleu", "chrf"):
                result[f"{name}_{method}"] = found[name]
            result["bleu_signature"], result["chrf_signature"] = found["bleu_signature"], found["chrf_signature"]
        return result

    # Export.

    def serving_module(self, config, model):
        return TranslationServing(self, config, model)

    def warmup_inputs(self, config, count=2):
        """The first `count` test sources, as strings."""
        return {"source": tf.constant(self.corpus(config).lines["test"][0][:count])}


def token_cross_entropy(targets, predictions, label_smoothing=0.0):
    """Per-token cross-entropy [batch, T] against `targets`, with label smoothing `eps`: the target distribution is
    (1 - eps) one-hot + eps / V, so the cost is (1 - eps) * (-log p_y) + eps * mean_v(-log p_v); and the mask of the
    real target tokens [batch, T] (target != <pad>, id 0)."""
    log_probs = tf.nn.log_softmax(tf.cast(predictions, tf.float32), axis=-1)
    nll = -tf.gather(log_probs, targets, batch_dims=2)
    if label_smoothing:
        nll = (1.0 - label_smoothing) * nll - label_smoothing * tf.reduce_mean(log_probs, axis=-1)
    return nll, tf.cast(tf.not_equal(targets, 0), tf.float32)


_CORPUS_KEYS = ("corpus", "data_dir", "source_language", "target_language", "train_size", "validation_size",
                "test_size", "filler_words", "source_tokenizer", "target_tokenizer", "min_count", "max_vocab_size",
                "source_vocabulary", "target_vocabulary", "max_length", "seed")


class ParallelCorpus:
    """The pairs of every split as strings (`lines[split] = (sources, targets)`) and as teacher-forcing ids
    (`splits`), the two sides' `TextEncoder`s (`source`, `target`), and facts about the data."""

    def __init__(self, config):
        if config["corpus"] == "dates":
            sizes = {"train": config["train_size"], "validation": config["validation_size"],
                     "test": config["test_size"]}
            splits = dates_data.date_splits(sizes, seed=config["seed"], filler_words=config.get("filler_words"))
            self.lines = {split: dates_data.as_pairs(examples) for split, examples in splits.items()}
        elif config["corpus"] == "files":
            if not config["data_dir"]:
                raise ValueError(
                    "the 'files' corpus reads DIR/{train,valid,test}.{SRC,TGT}: give --data_dir=DIR and "
                    "--override=source_language=SRC,target_language=TGT"
                )
            self.lines = parallel_corpus.read_parallel_corpus(
                config["data_dir"], config["source_language"], config["target_language"]
            )
        else:
            raise ValueError(f"corpus must be 'dates' or 'files', got {config['corpus']!r}")
        sources, targets = self.lines["train"]
        self.source = _encoder(sources, config["source_tokenizer"], config["source_vocabulary"], config)
        self.target = _encoder(targets, config["target_tokenizer"], config["target_vocabulary"], config)
        limit = config["max_length"]
        self.splits = {}
        for split, (source_lines, target_lines) in self.lines.items():
            source_ids = [ids[:limit] for ids in self.source.encode_lines(source_lines)]
            # <bos> y_1 .. y_n <eos>, cut so that the decoder's targets keep at most `limit` tokens.
            target_ids = [ids[: limit + 1] for ids in self.target.encode_lines(target_lines, bos=True, eos=True)]
            self.splits[split] = batching.teacher_forcing(source_ids, target_ids)
        train_targets = self.splits["train"][1]
        self.mean_target_tokens = float(np.mean([len(t) for t in train_targets]))
        counts = np.bincount(np.concatenate(train_targets), minlength=self.target.vocabulary.size).astype("float64")
        probabilities = (counts + 1.0) / (counts.sum() + len(counts))  # add-one: tokens unseen in training
        validation = np.concatenate(self.splits["validation"][1])
        self.unigram_perplexity = float(np.exp(-np.mean(np.log(probabilities[validation]))))

    def detokenize(self, tokens, lengths):
        """Strings from target ids [batch, T] with lengths [batch]: <eos> and what follows dropped, <pad> and <bos>
        dropped, <unk> kept as the unknown token (it stands for a word), as `TextEncoder.decode` does in the
        graph."""
        vocabulary = self.target.vocabulary
        words, specials = vocabulary.tokens, {vocabulary.pad_id, vocabulary.bos_id, vocabulary.eos_id}
        rows = []
        for row, length in zip(tokens, lengths):
            kept = []
            for token in row[:length]:
                if token == vocabulary.eos_id:
                    break
                if int(token) not in specials:
                    kept.append(words[int(token)])
            rows.append(kept)
        if not rows:
            return []
        ragged = tf.ragged.constant(rows, dtype=tf.string, ragged_rank=1, inner_shape=())
        if ragged.shape.rank == 1:  # every row empty: tf.ragged.constant cannot tell the rank
            ragged = tf.RaggedTensor.from_row_lengths(tf.constant([], tf.string), [0] * len(rows))
        return [text.decode("utf-8") for text in self.target.tokenizer.detokenize(ragged).numpy()]


class TranslationServing(tf.Module):
    """The signatures of an exported translation model, with the two sides' tokenizers and vocabulary tables.

    Every input and output has the batch dimension first, so a server can batch requests; a row's result never
    depends on the other rows of its batch (`zoo.decoding.beam_search` is batch-independent).

    serving_default(source: string [batch]) -> translation: string [batch] (the best hypothesis of a beam search
        with the config's `beam_size`, `length_penalty` and `decode_length`, detokenized), score: float [batch]
        (its score s(Y, X), the log-probability divided by the length penalty), log_prob: float [batch] (log P(Y|X),
        nats), length: int32 [batch] (target tokens written, <eos> included when written)
    translate(source [batch], beam_size: int32 [batch], max_length: int32 [batch]) -> the same, each row searched
        with its own beam width (1 is greedy decoding; at most the config's `beam_size`, the static width of the
        search) and its own maximum number of target tokens (<eos> included; at most the config's
        `decode_length`). A value out of range fails the request with INVALID_ARGUMENT naming the input and the
        range. TF Serving has no optional inputs, hence two signatures: serving_default for the config's settings,
        translate to choose them per row.
    nbest(source [batch]) -> with K = the config's `beam_size`, T = its `decode_length`, S = the longest source of
        the batch in tokens (at least 1): translations: string [batch, K] (best first), scores, log_probs: float
        [batch, K], lengths: int32 [batch, K], output_tokens: string [batch, K, T] (each hypothesis's target tokens,
        "<eos>" included, "" after its end), source_tokens: string [batch, S] (each source's tokens after the cut, ""
        after its end), and, for a model with attention, alignments: float [batch, K, T, S] (row t: the attention of
        the step that wrote output token t over the source tokens; zeros after the hypothesis's end and over ""
        source positions). A model without attention (`attention="none"`) has no alignments, so that output is left
        out rather than filled with zeros. A request that a server batches with others gets the S of the merged
        batch: its extra columns are "" and zeros.

    A source is tokenized as in training and cut to the config's `max_length` tokens; an empty source is translated
    from no tokens at all, and an empty batch gives empty outputs. A translation never holds `<pad>` or `<bos>`,
    nor `<unk>` unless `config["allow_unk"]` (then written as the unknown token, "<unk>"): the same choices as
    `TranslationTask.translate`, whose translations the signatures reproduce.

    The vocabulary files that the tables read, and that saving copies under the SavedModel's assets/
    (`source_vocabulary.txt`, `target_vocabulary.txt`), are written into a temporary directory of this module's own:
    `close()` removes it once the module has been saved (or when it is garbage-collected, or at exit).
    """

    def __init__(self, task, config, model):
        super().__init__()
        corpus = task.corpus(config)
        self.model = model
        self.max_length = int(config["max_length"])
        self.decode_length = int(config["decode_length"])
        self.beam_size = int(config["beam_size"])
        self.length_penalty = float(config["length_penalty"])
        self.with_alignments = getattr(model, "attention", "none") != "none"
        # Copies of the corpus's tokenizers and vocabularies: saving makes their tables, which must be this module's
        # own (not shared with another module's, nor read from a file that another module's close() removed).
        self.source = _copy(corpus.source)
        self.target = _copy(corpus.target)
        self.banned_ids = banned_ids(self.target.vocabulary, config)
        self._scratch = tempfile.TemporaryDirectory(prefix="vocabulary-")
        self.source.save_vocabulary(os.path.join(self._scratch.name, "source_vocabulary.txt"))
        self.target.save_vocabulary(os.path.join(self._scratch.name, "target_vocabulary.txt"))
        source = tf.TensorSpec([None], tf.string, name="source")
        self.functions = {
            "serving_default": tf.function(lambda source: self._best(source, None, None), input_signature=[source]),
            "translate": tf.function(self._translate, input_signature=[
                source,
                tf.TensorSpec([None], tf.int32, name="beam_size"),
                tf.TensorSpec([None], tf.int32, name="max_length"),
            ]),
            "nbest": tf.function(self._nbest, input_signature=[source]),
        }

    def close(self):
        """Removes the temporary vocabulary files. Call it after saving: the tables cannot be rebuilt without them."""
        self._scratch.cleanup()

    def _encode(self, source):
        """The source ids int32 [batch, S] right-padded with <pad>, and the source tokens string [batch, S]
        right-padded with "", each source cut to max_length tokens; S >= 1 (the decoder's attention reads a
        column even when every source is empty)."""
        tokens = self.source.tokenizer.tokenize(source)[:, : self.max_length]
        pad = self.source.vocabulary.pad_id
        ids = tf.cast(self.source.vocabulary.encode(tokens).to_tensor(default_value=pad), tf.int32)
        tokens = tokens.to_tensor(default_value="")
        extra = [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]]
        return tf.pad(ids, extra, constant_values=pad), tf.pad(tokens, extra, constant_values="")

    def _search(self, source, row_beam_size, row_max_length, alignments):
        ids, tokens = self._encode(source)
        vocabulary = self.target.vocabulary
        result = beam_search(
            self.model.step,
            self.model.initial_state(ids),
            tf.fill([tf.shape(ids)[0]], vocabulary.bos_id),
            self.decode_length,
            vocabulary.eos_id,
            self.beam_size,
            length_penalty=self.length_penalty,
            banned_ids=self.banned_ids,
            alignment_fn=self.model.alignment if alignments else None,
            pad_id=vocabulary.pad_id,
            row_beam_size=row_beam_size,
            row_max_length=row_max_length,
        )
        return result, tokens

    def _best(self, source, row_beam_size, row_max_length):
        result, _ = self._search(source, row_beam_size, row_max_length, alignments=False)
        return {
            "translation": self.target.decode(result["tokens"][:, 0]),
            "score": tf.cast(result["scores"][:, 0], tf.float32),
            "log_prob": tf.cast(result["log_probs"][:, 0], tf.float32),
            "length": tf.cast(result["lengths"][:, 0], tf.int32),
        }

    def _translate(self, source, beam_size, max_length):
        checks = []
        for name, value, limit, what in (
            ("beam_size", beam_size, self.beam_size, "the export's beam width, the config's beam_size"),
            ("max_length", max_length, self.decode_length, "target tokens, <eos> included; the config's "
                                                           "decode_length"),
        ):
            message = f"{name} must be in [1, {limit}] ({what})"
            checks += [
                tf.debugging.assert_equal(tf.shape(value), tf.shape(source),
                                          message=f"{name} needs one value per source"),
                tf.debugging.assert_greater_equal(value, 1, message=message),
                tf.debugging.assert_less_equal(value, limit, message=message),
            ]
        with tf.control_dependencies(checks):
            source = tf.identity(source)
        return self._best(source, beam_size, max_length)

    def _nbest(self, source):
        result, source_tokens = self._search(source, None, None, alignments=self.with_alignments)
        tokens, lengths = result["tokens"], tf.cast(result["lengths"], tf.int32)
        batch, k, width = tf.shape(tokens)[0], tf.shape(tokens)[1], tf.shape(tokens)[2]
        translations = tf.reshape(self.target.decode(tf.reshape(tokens, [batch * k, width])), [batch, k])
        written = tf.range(width)[None, None, :] < lengths[:, :, None]
        outputs = {
            "translations": translations,
            "scores": tf.cast(result["scores"], tf.float32),
            "log_probs": tf.cast(result["log_probs"], tf.float32),
            "lengths": lengths,
            "output_tokens": tf.where(written, self.target.vocabulary.decode(tokens), ""),
            "source_tokens": source_tokens,
        }
        if self.with_alignments:
            outputs["alignments"] = tf.cast(result["alignments"], tf.float32)
        return outputs


def _copy(encoder):
    """A new TextEncoder with the same tokenizer config and tokens as `encoder` (and no tables yet)."""
    return TextEncoder.from_config(encoder.get_config())


def _encoder(lines, tokenizer_config, tokens, config):
    if tokens is not None:
        return TextEncoder(Tokenizer.from_config(dict(tokenizer_config)), Vocabulary(tokens))
    return TextEncoder.build(lines, tokenizer_config, min_count=config["min_count"],
                             max_size=config["max_vocab_size"])


@functools.lru_cache(maxsize=4)
def _corpus(config_json):
    return ParallelCorpus(json.loads(config_json))


def _decoder(model_ref, method, decode_length, beam_size, length_penalty, bos_id, eos_id, pad_id, banned):
    """A tf.function: source ids [batch, S] -> (tokens [batch, decode_length], lengths [batch]) of the best
    translation, never writing the ids of `banned` (`banned_ids`). The decoder reads `bos_id` first.

    `model_ref` is a weak reference to the model (`weakref.ref`), so that the function does not keep the model alive
    from `TranslationTask.decoder`'s cache; it is followed when the function traces, while the caller holds the model.
    """

    @tf.function(reduce_retracing=True)
    def decode(source):
        model = model_ref()
        batch = tf.shape(source)[0]
        state = model.initial_state(source)
        start = tf.fill([batch], bos_id)
        if method == "greedy":
            result = generate(model.step, state, start[:, None], tf.ones([batch], tf.int32), decode_length, eos_id,
                              pad_id=pad_id, banned_ids=banned)
            return result["tokens"], result["lengths"]
        result = beam_search(model.step, state, start, decode_length, eos_id, beam_size,
                             length_penalty=length_penalty, banned_ids=banned, pad_id=pad_id)
        return result["tokens"][:, 0], result["lengths"][:, 0]

    return decode
