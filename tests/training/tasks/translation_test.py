"""The translation task: its data (dates and files), the masked and smoothed loss, a trained date translator, and
the decoded-string scores that training.evaluate reports."""

import gc
import glob
import io
import json
import math
import os
import subprocess
import sys
import weakref

import numpy as np
import pytest
import tensorflow as tf

from tests.training.tasks import runs
from training.tasks import scheduled_sampling
from training.tasks import translation
from training.text import scores
from training.trainer import Trainer


def make_config(preset="dates", **overrides):
    return runs.make_config("translation", preset, **overrides)


SMALL = {"train_size": 256, "validation_size": 32, "test_size": 32}


def test_dates_become_teacher_forcing_pairs_with_padding_in_batches():
    task, config = make_config(**SMALL)
    corpus = task.corpus(config)
    sources, targets = corpus.lines["test"]
    (source_ids, decoder_inputs), decoder_targets = task.split_data(config)["test"]
    target = corpus.target.vocabulary
    for source, line, x, y_in, y_out in zip(sources, targets, source_ids, decoder_inputs, decoder_targets):
        assert len(x) == len(source)  # characters in
        assert len(y_in) == len(y_out) == len(line) + 1 == 11  # "YYYY-MM-DD" and <eos>
        assert y_in[0] == target.bos_id and y_out[-1] == target.eos_id
        np.testing.assert_array_equal(y_in[1:], y_out[:-1])  # the decoder reads what it wrote
        assert "".join(target.tokens[i] for i in y_out[:-1]) == line
    (x, y_in), y_out, weights = next(iter(task.dataset(config, "test", 8, pad_to_multiple=8)))
    lengths = [len(s) for s in sources[:8]]
    assert x.shape == (8, max(lengths)) and y_in.shape == y_out.shape == (8, 11)
    for row, length in enumerate(lengths):
        assert np.all(x[row, length:] == 0) and np.all(x[row, :length] != 0)  # <pad> 0 after the source only
    np.testing.assert_array_equal(weights, np.ones(8))


def test_held_out_dates_are_never_seen_in_training():
    task, config = make_config(train_size=3000, validation_size=200, test_size=200)
    lines = task.corpus(config).lines
    train = set(lines["train"][1])
    assert not train & set(lines["test"][1]) and not train & set(lines["validation"][1])


def test_the_loss_masks_target_padding():
    task, config = make_config(**SMALL)
    rng = np.random.default_rng(0)
    targets = tf.constant([[5, 6, 3, 0, 0], [7, 3, 0, 0, 0]], tf.int32)
    logits = tf.constant(rng.normal(size=(2, 5, 15)), tf.float32)
    changed = logits.numpy()
    changed[0, 3:] += 50 * rng.normal(size=(2, 15))  # only the padded positions change
    changed[1, 2:] += 50 * rng.normal(size=(3, 15))
    loss = task.loss(config, targets, logits).numpy()
    np.testing.assert_allclose(task.loss(config, targets, tf.constant(changed)).numpy(), loss, rtol=1e-6)
    metrics = task.metrics(config, targets, logits)
    np.testing.assert_array_equal(metrics["tokens"], [3, 2])
    # The loss is the summed NLL of the real tokens over the mean target length of the training pairs.
    log_probs = logits.numpy() - np.log(np.exp(logits.numpy()).sum(-1, keepdims=True))
    nll = [-sum(log_probs[0, t, targets[0, t]] for t in range(3)),
           -sum(log_probs[1, t, targets[1, t]] for t in range(2))]
    np.testing.assert_allclose(loss, np.array(nll) / task.corpus(config).mean_target_tokens, rtol=1e-5)
    np.testing.assert_allclose(metrics["nll"], nll, rtol=1e-5)


def test_label_smoothing_matches_a_numpy_reference():
    rng = np.random.default_rng(1)
    targets = np.array([[4, 2, 3, 0], [1, 3, 0, 0]], "int32")
    logits = rng.normal(size=(2, 4, 6)).astype("float32")
    eps = 0.1
    per_token, mask = translation.token_cross_entropy(tf.constant(targets), tf.constant(logits), eps)
    # Cross-entropy against the smoothed distribution q = (1 - eps) one_hot(y) + eps / V.
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    q = (1 - eps) * np.eye(6)[targets] + eps / 6
    np.testing.assert_allclose(per_token.numpy(), -(q * log_p).sum(-1), rtol=1e-5)
    np.testing.assert_array_equal(mask.numpy(), targets != 0)
    plain, _ = translation.token_cross_entropy(tf.constant(targets), tf.constant(logits), 0.0)
    np.testing.assert_allclose(plain.numpy(), -np.take_along_axis(log_p, targets[..., None], -1)[..., 0], rtol=1e-5)
    task, config = make_config(**SMALL, label_smoothing=eps)
    expected = (-(q * log_p).sum(-1) * (targets != 0)).sum(1) / task.corpus(config).mean_target_tokens
    np.testing.assert_allclose(task.loss(config, tf.constant(targets), tf.constant(logits)).numpy(), expected,
                               rtol=1e-5)


def test_config_values_are_checked():
    task, config = make_config(**SMALL, label_smoothing=1.0)
    with pytest.raises(ValueError, match=r"label_smoothing must be a float in \[0, 1\), got 1.0"):
        task.check_config(config)
    task, config = make_config(**SMALL, bleu_tokenize="words")
    with pytest.raises(ValueError, match="bleu_tokenize must be one of .*got 'words'"):
        task.check_config(config)
    task, config = make_config(**SMALL, beam_size=0)
    with pytest.raises(ValueError, match="beam_size must be a positive int, got 0"):
        task.check_config(config)
    task, config = make_config(**SMALL, scheduled_sampling={"schedule": "inverse_sigmoid", "k": 0.5})
    with pytest.raises(ValueError, match=r"scheduled_sampling.k of the inverse sigmoid schedule .* must be a number "
                                         r">= 1, got 0.5"):
        task.check_config(config)
    task, config = make_config("dates_long", **SMALL, filler_words=[4, 2])
    with pytest.raises(ValueError, match=r"filler_words must be None or two ints \[low, high\] .*got \[4, 2\]"):
        task.check_config(config)
    task, config = make_config("dates_long", corpus="files")
    with pytest.raises(ValueError, match="filler_words is for the 'dates' corpus only, got filler_words=\\[5, 8\\] "
                                         "with corpus 'files'"):
        task.check_config(config)


def test_the_long_dates_presets_write_the_same_dates_inside_filler_and_cut_no_source():
    short_task, short_config = make_config("dates", **SMALL)
    short = short_task.corpus(short_config)
    for preset in ("dates_long", "dates_long_luong", "dates_long_plain"):
        task, config = make_config(preset, **SMALL)
        corpus = task.corpus(config)
        for split in ("train", "test"):
            sources, targets = corpus.lines[split]
            assert targets == short.lines[split][1]  # the same dates, split for split
            for source, date in zip(sources, short.lines[split][0]):
                assert f" {date} " in source and len(source) > len(date) + 20
            lengths = [len(ids) for ids in corpus.splits[split][0][0]]
            assert lengths == [len(source) for source in sources]  # characters in, none cut by max_length
    assert {task.presets[p]["model"] for p in ("dates_long", "dates_long_luong", "dates_long_plain")} == {
        task.presets[p]["model"] for p in ("dates", "dates_luong", "dates_plain")}


def parallel_files(directory, source="zh", target="en"):
    """A tiny Chinese–English corpus (the lecture's example among them) in DIR/{train,valid,test}.{zh,en}."""
    pairs = {
        "train": [("我爱你", "I love you"), ("你爱我", "you love me"), ("我爱猫", "I love cats"),
                  ("他爱你", "he loves you"), ("我们爱你", "we love you"), ("你爱他", "you love him")],
        "valid": [("他爱我", "he loves me"), ("我爱他", "I love him")],
        "test": [("我爱你", "I love you"), ("你爱猫", "you love cats")],
    }
    os.makedirs(directory, exist_ok=True)
    for stem, lines in pairs.items():
        for index, language in enumerate((source, target)):
            with open(os.path.join(directory, f"{stem}.{language}"), "w", encoding="utf-8") as f:
                f.write("".join(pair[index] + "\n" for pair in lines))
    return directory


def test_files_read_a_chinese_english_corpus_characters_in_words_out(tmp_path):
    task, config = make_config("files", data_dir=parallel_files(str(tmp_path / "zh-en")), source_language="zh",
                               target_language="en", batch_size=2)
    corpus = task.corpus(config)
    source, target = corpus.source.vocabulary, corpus.target.vocabulary
    assert set(source.tokens[4:]) == set("我爱你他猫们")  # Chinese is written without spaces: characters
    assert "love" in target.tokens and "loves" in target.tokens  # English: words
    (x, y_in), y_out = corpus.splits["test"]
    assert [source.tokens[i] for i in x[0]] == ["我", "爱", "你"]
    assert [target.tokens[i] for i in y_out[0]] == ["I", "love", "you", "<eos>"]
    assert [target.tokens[i] for i in y_in[1]] == ["<bos>", "you", "love", "cats"]
    assert task.steps_per_epoch(config, 2) == 3
    (x, y_in), y_out, _ = next(iter(task.dataset(config, "train", 2)))
    assert x.shape[0] == 2 and y_in.shape == y_out.shape


def test_files_errors_name_what_is_wrong(tmp_path):
    task, config = make_config("files")
    with pytest.raises(ValueError, match="give --data_dir=DIR and --override=source_language=SRC,target_language=TGT"):
        task.corpus(config)
    directory = parallel_files(str(tmp_path / "corpus"))
    _, config = make_config("files", data_dir=directory, source_language="zh", target_language="de")
    with pytest.raises(FileNotFoundError, match=r"no train file '.*train\.de'"):
        task.corpus(config)
    _, config = make_config("files", data_dir=directory, source_language="zh", target_language="en us")
    with pytest.raises(ValueError, match="target_language must be a file extension like 'de' or 'zh'.*got 'en us'"):
        task.corpus(config)
    with open(os.path.join(directory, "valid.en"), "a", encoding="utf-8") as f:
        f.write("one line too many\n")
    _, config = make_config("files", data_dir=directory, source_language="zh", target_language="en")
    with pytest.raises(ValueError, match=r"valid\.zh' has 2 lines and .*valid\.en' has 3: line 3"):
        task.corpus(config)
    parallel_files(directory)  # valid.en as it was
    with open(os.path.join(directory, "test.zh"), "wb") as f:
        f.write("我爱你\n".encode() + b"\xff\xfe\n")
    _, config = make_config("files", data_dir=directory, source_language="zh", target_language="en")
    with pytest.raises(ValueError, match=r"test\.zh' is not UTF-8: line 2"):
        task.corpus(config)


def test_a_tiny_run_on_files_trains_and_is_scored_by_evaluate(tmp_path):
    data_dir = parallel_files(str(tmp_path / "zh-en"))
    task, config = make_config("files", data_dir=data_dir, source_language="zh", target_language="en", batch_size=2,
                               epochs=2, model_options={"units": 8, "embedding_dim": 8, "attention_layer_size": 8},
                               decode_length=6, beam_size=2, bleu_tokenize="13a")
    model_dir = str(tmp_path / "run")
    trainer = runs.train_best(task, config, model_dir)
    # python -m training.evaluate, as a user runs it (its absl flags cannot share a process with serving.export's).
    done = subprocess.run([sys.executable, "-m", "training.evaluate", f"--model_dir={model_dir}"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "exact_match_greedy" in done.stdout and "bleu_signature: nrefs:1" in done.stdout
    with open(os.path.join(model_dir, "evaluation_test.json")) as f:
        result = json.load(f)
    metrics = result["metrics"]
    for method in ("greedy", "beam"):
        # The scores of the model's own translations, recomputed here from them.
        hypotheses = task.translate(trainer.config, trainer.model, task.corpus(config).lines["test"][0], method)
        references = task.corpus(config).lines["test"][1]
        expected = 100.0 * np.mean([h == r for h, r in zip(hypotheses, references)])
        assert metrics[f"exact_match_{method}"] == pytest.approx(expected)
        for name in ("bleu", "chrf"):
            assert 0.0 <= metrics[f"{name}_{method}"] <= 100.0
    assert {"perplexity", "token_accuracy", "loss"} <= set(metrics)
    assert result["notes"]["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")


class Copy:
    """A stand-in for a model whose translations are given: it writes `outputs[row]` (target ids, <eos> last)."""

    def __init__(self, outputs, vocab_size):
        self.outputs = outputs
        self.vocab_size = vocab_size

    def initial_state(self, source):
        rows = tf.shape(source)[0]
        return (tf.zeros([rows], tf.int32), tf.range(rows, dtype=tf.int32))

    def step(self, tokens, state):
        position, row = state
        table = tf.constant(self.outputs)
        wanted = tf.gather_nd(table, tf.stack([row, tf.minimum(position, table.shape[1] - 1)], axis=1))
        logits = tf.one_hot(wanted, self.vocab_size) * 10.0
        return logits, (position + 1, row)


def test_decode_metrics_score_the_decoded_strings_with_sacrebleu():
    task, config = make_config(train_size=256, validation_size=4, test_size=4, allow_unk=True)
    corpus = task.corpus(config)
    references = corpus.lines["validation"][1]
    # Rows 0 and 1 right; row 2 with one digit wrong; row 3 only <unk> (allowed here), which the strings write as the
    # unknown token, as `TextEncoder.decode` does in the export's graph.
    wrong = references[2][:-1] + ("0" if references[2][-1] != "0" else "1")
    ids = [list(ids) for ids in corpus.target.encode_lines([references[0], references[1], wrong, ""], eos=True)]
    ids[3] = [corpus.target.vocabulary.unk_id] + ids[3]
    hypotheses = [references[0], references[1], wrong, "<unk>"]
    width = max(len(row) for row in ids)
    outputs = np.array([row + [corpus.target.vocabulary.eos_id] * (width - len(row)) for row in ids], "int32")
    model = Copy(outputs, corpus.target.vocabulary.size)
    for method in ("greedy", "beam"):
        assert task.translate(config, model, corpus.lines["validation"][0], method) == hypotheses
    metrics = task.decode_metrics(config, model, "validation")
    expected = scores.translation_scores(hypotheses, references, tokenize="char")
    for method in ("greedy", "beam"):
        assert metrics[f"exact_match_{method}"] == 50.0
        assert metrics[f"bleu_{method}"] == pytest.approx(expected["bleu"])
        assert metrics[f"chrf_{method}"] == pytest.approx(expected["chrf"])
    assert 0 < metrics["bleu_greedy"] < 100


class CountingCopy(Copy):
    """A `Copy` that counts the runs of its Python `initial_state`: one per trace of a tf.function decoding with it
    (a traced function runs its graph afterwards, not the Python)."""

    traces = 0

    def initial_state(self, source):
        self.traces += 1
        return super().initial_state(source)


def test_translate_traces_its_decoder_once_per_model_and_settings_and_does_not_keep_the_model():
    task, config = make_config(train_size=256, validation_size=4, test_size=4)
    corpus = task.corpus(config)
    sources, references = corpus.lines["validation"]
    ids = [list(row) for row in corpus.target.encode_lines(references, eos=True)]
    width = max(len(row) for row in ids)
    outputs = np.array([row + [corpus.target.vocabulary.eos_id] * (width - len(row)) for row in ids], "int32")
    model = CountingCopy(outputs, corpus.target.vocabulary.size)
    vocabulary = corpus.target.vocabulary
    settings = (int(config["decode_length"]), int(config["beam_size"]), float(config["length_penalty"]),
                vocabulary.bos_id, vocabulary.eos_id, vocabulary.pad_id, translation.banned_ids(vocabulary, config))
    for method, traces in (("greedy", 1), ("beam", 2)):
        for _ in range(3):  # the same sources (so the same shapes) again: the same decoder, no new trace
            assert task.translate(config, model, sources, method) == references
            assert model.traces == traces
        assert task.decoder(model, method, *settings).experimental_get_tracing_count() == 1
    # decode_metrics translates the same way, with the decoders already traced.
    assert task.decode_metrics(config, model, "validation")["exact_match_beam"] == 100.0 and model.traces == 2
    # Other settings are another decoder.
    longer = {**config, "decode_length": config["decode_length"] + 1}
    assert task.translate(longer, model, sources) == references and model.traces == 3
    # The cache does not keep a model alive: dropped, it is freed with its decoders. (A model used in a function that
    # has returned: TensorFlow's tracing reads the calling frames' locals, and a frame keeps that snapshot, model
    # included, until it ends.)
    def translate_with_a_new_model():
        model = CountingCopy(outputs, corpus.target.vocabulary.size)
        assert task.translate(config, model, sources, "beam") == references and model.traces == 1
        return weakref.ref(model)

    dropped = translate_with_a_new_model()
    gc.collect()
    assert dropped() is None


@pytest.mark.slow
def test_the_dates_preset_learns_to_translate_unseen_dates(tmp_path):
    # 6,000 training pairs, 4 epochs (372 steps of 64): about 20 s on 2 cores.
    task, config = make_config(train_size=6000, validation_size=200, test_size=300, epochs=4)
    trainer = runs.train_best(task, config, str(tmp_path / "run"))
    validation = trainer.evaluate("validation")
    metrics = task.decode_metrics(trainer.config, trainer.model, "test")
    # Measured with seed 0: 94.3% greedy and 95.3% beam exact match on the 300 unseen test dates, token accuracy
    # 0.994 and perplexity 1.02 on validation (a model that learnt nothing scores 0% and a perplexity near the
    # unigram level of about 9). The thresholds leave room for numeric noise across machines, not for a model that
    # failed to learn the task.
    assert metrics["exact_match_greedy"] >= 85.0, metrics
    assert metrics["exact_match_beam"] >= 85.0, metrics
    assert metrics["chrf_greedy"] >= 90.0, metrics
    assert validation["token_accuracy"] >= 0.97 and validation["perplexity"] <= 1.1, validation
    assert math.log(validation["perplexity"]) == pytest.approx(validation["loss"], rel=0.1)


def test_a_warm_started_run_keeps_both_vocabularies_of_its_source(tmp_path):
    task, source_config = make_config(**SMALL)
    source = task.corpus(source_config)
    # The new run's data (a Chinese–English corpus) has other tokens; the ids must keep meaning the source's.
    _, config = make_config("files", data_dir=parallel_files(str(tmp_path / "zh-en")), source_language="zh",
                            target_language="en", source_tokenizer={"level": "char"},
                            target_tokenizer={"level": "char"})
    warm = task.warm_start_config(config, source_config)
    assert warm["source_vocabulary"] == list(source.source.vocabulary.tokens)
    assert warm["target_vocabulary"] == list(source.target.vocabulary.tokens)
    corpus = task.corpus(warm)
    assert corpus.target.vocabulary.tokens == source.target.vocabulary.tokens
    assert corpus.splits["test"][0][0][0].tolist() == [1, 1, 1]  # 我爱你: unknown to the dates' vocabulary
    with pytest.raises(ValueError, match="target_tokenizer .* differs from the run to initialise from"):
        task.warm_start_config({**config, "target_tokenizer": {"level": "word"}}, source_config)
    with pytest.raises(ValueError, match="source_vocabulary is set, and differs"):
        task.warm_start_config({**config, "source_vocabulary": ["<pad>", "<unk>", "<bos>", "<eos>", "x"]},
                               source_config)


class Spy:
    """A stand-in model that records the arguments of its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, inputs, **kwargs):
        self.calls.append(kwargs)
        return "logits"


def test_scheduled_sampling_calls_the_model_with_the_schedule_s_probability_and_a_seed_of_the_step():
    task, config = make_config(**SMALL)
    assert config["scheduled_sampling"] is None
    off = Spy()
    assert task.train_predictions(config, off, "inputs", tf.constant(7, tf.int64)) == "logits"
    assert off.calls == [{"training": True}] and task.train_scalars(config, 7) == {}  # teacher forcing, as before
    options = {"schedule": "linear", "k": 1.0, "c": 0.1}
    task, config = make_config(**SMALL, seed=4, scheduled_sampling=options)
    task.check_config(config)
    spy = Spy()
    task.train_predictions(config, spy, "inputs", tf.constant(3, tf.int64))
    (call,) = spy.calls
    assert call["training"] is True
    assert float(call["sampling_probability"]) == pytest.approx(0.3)  # 1 - (k - c i) at i = 3
    np.testing.assert_array_equal(call["sampling_seed"], [4, 3])  # (seed, step): fresh numbers every step
    assert task.train_scalars(config, 3) == {"sampling_probability": pytest.approx(0.3)}


def logged(model_dir, tag):
    values = {}
    for path in glob.glob(os.path.join(model_dir, "logs", "train", "events*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


@pytest.mark.slow
def test_a_run_with_scheduled_sampling_trains_follows_its_schedule_and_resumes_exactly(tmp_path):
    # Three short runs on dates (12 steps of 64 pairs each): about 30 s on 2 cores.
    options = {"schedule": "linear", "k": 1.0, "c": 0.08}  # from teacher forcing to p = 0.88 at the 12th step
    task, config = make_config(**SMALL, steps=12, log_every_steps=2, checkpoint_every_steps=4,
                               scheduled_sampling=options)

    def train(model_dir, steps):
        trainer = Trainer(task, {**config, "steps": steps}, model_dir, progress="lines", out=io.StringIO())
        trainer.fit()
        return trainer

    whole = train(str(tmp_path / "whole"), 12)
    probabilities = logged(str(tmp_path / "whole"), "sampling_probability")
    # Logged at the step just taken, whose probability is the schedule's at the steps before it.
    assert probabilities == {s: pytest.approx(float(scheduled_sampling.sampling_probability(options, s - 1)))
                             for s in (2, 4, 6, 8, 10, 12)}
    assert probabilities[12] == pytest.approx(0.88)
    losses = logged(str(tmp_path / "whole"), "loss")
    # The loss falls while the decoder reads more and more of its own tokens (from about ln 15 = 2.7 at the start;
    # 2.1 at step 12 when this test was written, as without scheduled sampling).
    assert losses[12] < losses[2] - 0.3, losses
    # Stopped at step 6 and resumed: the same schedule, the same draws, the same weights.
    train(str(tmp_path / "split"), 6)
    split = train(str(tmp_path / "split"), 12)
    assert logged(str(tmp_path / "split"), "sampling_probability") == probabilities
    for a, b in zip(whole.model.weights, split.model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6, err_msg=a.path)
