"""The speech task: its cached synthetic corpus, labels and frame tags, CTC loss, error rates, and configs."""

import jiwer
import numpy as np
import pytest
import tensorflow as tf

from tests.training.tasks import runs
from training.data import speech as speech_data
from training.tasks import speech
from zoo.decoding.ctc import collapse_word_tags

SIZES = {"train_size": 48, "validation_size": 8, "test_size": 8, "clean_digits_size": 6}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("speech_cache"))


def make_config(cache, preset="ctc", **overrides):
    return runs.make_config("speech", preset, cache_dir=cache, **{**SIZES, **overrides})


def test_the_corpus_is_synthesized_once_then_read_from_its_cache(cache, monkeypatch):
    _, config = make_config(cache)
    first = speech.SpeechCorpus(config)
    monkeypatch.setattr(speech_data, "speech_splits", lambda *a, **k: pytest.fail("synthesized again"))
    again = speech.SpeechCorpus(config)
    for split in (*speech.SPLITS, speech.CLEAN_DIGITS):
        assert len(first.examples[split]) == len(again.examples[split])
        for one, other in zip(first.examples[split], again.examples[split]):
            assert one._replace(audio=None) == other._replace(audio=None)
            np.testing.assert_array_equal(one.audio, other.audio)
            assert one.audio.dtype == np.int16
    # Another seed is another corpus (and another cache entry): it synthesizes.
    _, other_seed = make_config(cache, seed=1)
    with pytest.raises(pytest.fail.Exception, match="synthesized again"):
        speech.SpeechCorpus(other_seed)


def test_test_voices_are_unheard_and_the_clean_digit_strings_are_clean_digits(cache):
    task, config = make_config(cache)
    examples = task.corpus(config).examples
    variants = {split: {e.speaker.split("+")[1] for e in examples[split]} for split in examples}
    assert variants["train"].isdisjoint(variants["test"] | variants["validation"] | variants[speech.CLEAN_DIGITS])
    held_out = speech_data.speaker_splits(config["seed"])["test"]
    assert variants[speech.CLEAN_DIGITS] <= set(held_out)
    for example in examples[speech.CLEAN_DIGITS]:
        assert example.snr_db is None and set(example.text.split()) <= set(speech_data.DIGITS)
    test_texts = {e.text for e in examples["test"]}
    assert not test_texts & {e.text for e in examples[speech.CLEAN_DIGITS]} or len(test_texts) < 8


def test_character_labels_spell_the_transcripts(cache):
    task, config = make_config(cache)
    corpus = task.corpus(config)
    texts = [e.text for e in corpus.examples["train"]]
    assert corpus.vocabulary == sorted(set("".join(texts)))
    assert " " in corpus.vocabulary and task.num_tags(config) == len(corpus.vocabulary) + 1
    (audio, lengths), (labels, samples) = corpus.splits["train"]
    for text, ids, clip, length in zip(texts, labels, audio, lengths):
        assert "".join(corpus.vocabulary[i - 1] for i in ids) == text
        assert clip.dtype == np.int16 and len(clip) == length
    np.testing.assert_array_equal(samples, lengths)


def test_word_frame_tags_collapse_back_into_the_transcript(cache):
    task, config = make_config(cache, "feedback")
    corpus = task.corpus(config)
    assert corpus.vocabulary == sorted({w for e in corpus.examples["train"] for w in e.text.split()})
    assert task.num_tags(config) == 1 + 2 * len(corpus.vocabulary)
    (audio, lengths), (tags, _) = corpus.splits["train"]
    model = task.build_model(config)
    for example, row, length in zip(corpus.examples["train"], tags, lengths):
        assert len(row) == int(model.output_lengths(np.array([length]))[0])
        words, count = collapse_word_tags(row[None] - 1, np.array([len(row)]))
        assert " ".join(corpus.vocabulary[w] for w in np.asarray(words)[0, : int(count[0])]) == example.text
    # Silence (tag 0, stored 1) before, between or after the words: some of the frames.
    assert np.mean([np.mean(row == 1) for row in tags]) > 0.05


def test_the_attention_model_reads_bos_and_characters_and_writes_characters_and_eos(cache):
    task, config = make_config(cache, "attention")
    corpus = task.corpus(config)
    assert task.num_tags(config) == len(corpus.vocabulary) + speech.SPECIAL_IDS
    (audio, lengths, targets_in), (labels, samples) = corpus.splits["train"]
    for example, target_in, label in zip(corpus.examples["train"], targets_in, labels):
        assert target_in[0] == speech.BOS_ID and label[-1] == speech.EOS_ID
        np.testing.assert_array_equal(target_in[1:], label[:-1])
        assert "".join(corpus.vocabulary[i - speech.SPECIAL_IDS] for i in label[:-1]) == example.text


@pytest.mark.slow
def test_the_attention_model_trains_and_is_measured_on_its_own_transcripts(cache, tmp_path):
    # Validation decodes greedily (eval_predictions): its WER is that of the transcripts `transcribe` writes.
    task, config = make_config(cache, "attention", batch_size=16, steps=2, model_options={
        "units": 8, "encoder_layers": 1, "attention_options": {"units": 8}, "attention_layer_size": 8})
    trainer = runs.train_best(task, config, str(tmp_path / "run"))
    metrics = trainer.evaluate("validation")
    assert {"loss", "wer", "cer", "token_accuracy"} <= set(metrics)
    examples = task.corpus(config).examples["validation"]
    hypotheses = task.transcribe(config, trainer.model, [e.audio for e in examples], "greedy")
    np.testing.assert_allclose(metrics["wer"], jiwer.wer([e.text for e in examples], hypotheses), rtol=1e-6)


def test_the_task_s_output_lengths_are_the_model_s(cache):
    for preset, options in (("ctc", {}), ("plain", {"stack": 2, "frame_step": 200})):
        task, config = make_config(cache, preset, model_options=options)
        model = task.build_model(config)
        samples = np.array([0, 399, 400, 401, 559, 560, 16000, 23456], np.int32)
        np.testing.assert_array_equal(task.output_lengths(config, samples).numpy(),
                                      np.asarray(model.output_lengths(samples)))


def test_ctc_loss_is_tensorflow_s_and_leaves_out_what_cannot_be_aligned():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(5, 12, 6)).astype("float32"))
    labels = np.zeros((5, 7), np.int32)
    labels[0, :4] = [1, 2, 3, 4]
    labels[1, :3] = [5, 5, 5]          # repeats need blanks between them: 5 frames
    labels[2, :7] = [1, 2, 1, 2, 1, 2, 1]  # 7 labels, but only 6 frames below
    labels[4, :2] = [3, 3]             # 3 frames needed, 2 given
    frames = np.array([12, 5, 6, 12, 2], np.int32)  # row 3: no labels (a padding row)
    np.testing.assert_array_equal(speech.alignable(labels, frames).numpy(), [True, True, False, True, False])
    with tf.GradientTape() as tape:
        tape.watch(logits)
        losses = speech.ctc_loss(labels, logits, frames)
        total = tf.reduce_sum(losses)
    gradient = tape.gradient(total, logits).numpy()
    feasible = [0, 1]
    expected = tf.nn.ctc_loss(labels[feasible], tf.gather(logits, feasible), (labels[feasible] > 0).sum(1),
                              frames[feasible], logits_time_major=False, blank_index=0)
    np.testing.assert_allclose(losses.numpy()[feasible], expected.numpy(), rtol=1e-5)
    np.testing.assert_array_equal(losses.numpy()[[2, 3, 4]], 0.0)
    assert np.all(np.isfinite(gradient)) and np.all(gradient[[2, 3, 4]] == 0)
    assert np.all(np.abs(gradient[feasible]).sum(axis=(1, 2)) > 0)


def test_error_counts_sum_to_jiwer_s_error_rates():
    rng = np.random.default_rng(0)
    words = ["one", "two", "three", "stop", "go", "left"]
    references = [" ".join(rng.choice(words, rng.integers(1, 6))) for _ in range(40)]
    hypotheses = []
    for reference in references:
        tokens = reference.split()
        if rng.random() < 0.5:
            tokens[rng.integers(len(tokens))] = str(rng.choice(words))
        if rng.random() < 0.3:
            tokens = tokens[1:]
        if rng.random() < 0.3:
            tokens.insert(rng.integers(len(tokens) + 1), "up")
        hypotheses.append(" ".join(tokens))
    counts = {k: v.numpy() for k, v in speech.error_counts(tf.constant(hypotheses), tf.constant(references)).items()}
    np.testing.assert_allclose(counts["word_errors"].sum() / counts["words"].sum(), jiwer.wer(references, hypotheses))
    np.testing.assert_allclose(counts["char_errors"].sum() / counts["chars"].sum(), jiwer.cer(references, hypotheses))
    assert 0.05 < jiwer.wer(references, hypotheses) < 0.6  # the sample has errors, and not only errors


def test_label_strings_join_each_row_s_labels():
    vocabulary = tf.constant(["a", "b", " "])
    ids = np.array([[1, 2, 3, 1, 0], [2, 2, -1, -1, -1], [0, 0, 0, 0, 0]])
    text = speech.label_strings(ids, np.array([4, 2, 0]), vocabulary, "", offset=1).numpy()
    assert [t.decode() for t in text] == ["ab a", "bb", ""]
    words = speech.label_strings(np.array([[0, 2, 1]]), np.array([3]), vocabulary, " ", offset=0).numpy()
    assert words[0].decode() == "a   b"  # words joined by spaces (the space token among them here)


@pytest.mark.parametrize(
    "preset, overrides, message",
    [
        ("ctc", {"labels": "phones"}, r"labels must be one of \('characters', 'words'\), got 'phones'"),
        ("ctc", {"objective": "frames"}, r"objective 'frames' .* needs labels 'words' and corpus 'synthetic', got "
                                         r"labels 'characters'"),
        ("ctc", {"model": "feedback_acoustic_model"}, r"feeds back its previous frame's tag, which only the 'frames'"),
        ("ctc", {"corpus": "files"}, r"corpus 'files' reads --data_dir=DIR"),
        ("ctc", {"snr": "loud"}, r"snr must be 'drawn', None \(clean\) or a number of dB, got 'loud'"),
        ("ctc", {"utterances": "letters"}, r"utterances must be one of \(None, 'digits', 'commands'\)"),
        ("ctc", {"decoder": "viterbi"}, r"decoder must be one of \('greedy', 'beam'\), got 'viterbi'"),
        ("ctc", {"beam_width": 0}, r"beam_width must be a positive int, got 0"),
        ("attention", {"model": "ctc_acoustic_model"}, r"model must be a ListenAttendSpell preset such as "
                                                       r"'las_acoustic_model', got 'ctc_acoustic_model'"),
        ("ctc", {"model": "las_acoustic_model"}, r"objective 'ctc' reads per-frame outputs: model must be an "
                                                 r"AcousticModel preset"),
        ("feedback", {"corpus": "files", "data_dir": "x"}, r"needs labels 'words' and corpus 'synthetic'"),
    ],
)
def test_a_bad_config_says_what_to_change(preset, overrides, message, cache):
    task, config = make_config(cache, preset, **overrides)
    with pytest.raises(ValueError, match=message):
        task.check_config(config)


def test_recordings_from_manifests_train_with_their_own_characters(tmp_path, cache):
    # Three synthesized utterances written as WAV files and listed in manifests: the "files" corpus.
    examples = speech_data.speech_splits({"train": 3}, seed=5, snr_db=None, workers=1)["train"]
    for index, example in enumerate(examples):
        speech_data.write_wav(tmp_path / f"{index}.wav", example.audio)
    for name in ("train", "valid", "test"):
        (tmp_path / f"{name}.tsv").write_text("".join(f"{i}.wav\t{e.text.upper()} \n" for i, e in enumerate(examples)))
    task, config = make_config(cache, corpus="files", data_dir=str(tmp_path), batch_size=3, steps=1)
    corpus = task.corpus(config)
    assert [e.text for e in corpus.examples["test"]] == [e.text for e in examples]  # lower-cased, stripped
    assert corpus.vocabulary == sorted(set("".join(e.text for e in examples)))
    trainer = runs.train_best(task, config, str(tmp_path / "run"))
    assert np.isfinite(trainer.evaluate("test")["loss"])
