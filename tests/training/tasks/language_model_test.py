"""The language-model task: corpora, perplexity against the grammar's bound, and its export."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

import zoo
from serving import export
from tests.helpers.saved_model import load_with_session
from tests.training.tasks import runs
from training import config as run_config
from training.data import text_corpus
from training.data import text_files
from training.tasks import language_model
from training.text.tokenizer import Tokenizer


def make_config(preset="lstm", **overrides):
    return runs.make_config("language_model", preset, **overrides)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An LSTM LM trained for two epochs on 20,000 grammar sentences (about 40 s on 2 cores), best weights restored."""
    task, config = make_config(train_size=20000, validation_size=2000, test_size=500, epochs=2, max_new_tokens=12)
    model_dir = str(tmp_path_factory.mktemp("lm") / "run")
    trainer = runs.train_best(task, config, model_dir)
    return task, config, model_dir, trainer


@pytest.mark.slow
def test_validation_perplexity_approaches_the_grammar_bound(trained):
    task, config, _, trainer = trained
    validation = trainer.evaluate("validation")
    bound = task.perplexity_bound(config, "validation")
    unigram = task.chance_levels(config)["perplexity"]
    # The bound is the true distribution's perplexity on these very sentences, so a model can only undercut it by
    # chance: over 2,000 sentences (~15,000 tokens) that is well under 2%. From above: a model that had not learnt
    # subject-verb agreement beyond a few words would lose up to 3% (the main verb's number, log 2 nats, in the
    # 30% of sentences with a relative clause, over 7.35 tokens per sentence); a small LSTM trained for two
    # epochs gets within 3%, against a unigram model's 21.
    assert bound * 0.98 <= validation["perplexity"] <= bound * 1.03, (validation, bound)
    assert unigram > 5 * bound
    # Perplexity is exp(summed token NLL / tokens): the loss is the same NLL per token, up to batch composition.
    assert math.log(validation["perplexity"]) == pytest.approx(validation["loss"], rel=0.05)


def corpus_files(directory, names=("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")):
    os.makedirs(directory, exist_ok=True)
    texts = ["the cat sat\nthe dog sat\n\nthe cat ran\n", "the cat sat\nthe bird sat\n", "a dog ran\n"]
    for name, text in zip(names, texts):
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return directory


def test_a_corpus_of_files_builds_its_vocabulary_from_the_training_split(tmp_path):
    task, config = make_config("ptb_small", data_dir=corpus_files(str(tmp_path / "ptb")))
    corpus = task.corpus(config)
    vocabulary = corpus.vocabulary
    # Specials, then the training words by count (ties alphabetical); "bird" and "a" only occur in other splits.
    assert vocabulary.tokens == ["<pad>", "<unk>", "<bos>", "<eos>", "the", "cat", "sat", "dog", "ran"]
    inputs, targets = corpus.splits["validation"]
    assert [list(x) for x in inputs] == [[2, 4, 5, 6], [2, 4, 1, 6]]  # <bos> the bird(unk) sat
    assert [list(y) for y in targets] == [[4, 5, 6, 3], [4, 1, 6, 3]]  # the ... <eos>
    assert [list(x) for x in corpus.splits["test"][0]] == [[2, 1, 7, 8]]
    assert task.perplexity_bound(config) is None


def test_corpus_errors_name_what_is_missing(tmp_path):
    task, config = make_config("ptb_small")
    with pytest.raises(ValueError, match="give --data_dir"):
        task.corpus(config)
    _, config = make_config("ptb_small", data_dir=str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="nowhere"):
        task.corpus(config)
    _, config = make_config("lstm", corpus="web")
    with pytest.raises(ValueError, match="corpus must be 'grammar', 'files' or 'text', got 'web'"):
        task.corpus(config)


def test_long_sentences_are_cut_with_their_targets_aligned(tmp_path):
    task, config = make_config("ptb_small", data_dir=corpus_files(str(tmp_path / "ptb")), max_length=3)
    inputs, targets = task.corpus(config).splits["train"]
    assert list(inputs[0]) == [2, 4, 5] and list(targets[0]) == [4, 5, 6]  # cut: "sat" is the next word, not <eos>


def test_stream_ids_hold_every_sentence_uncut_each_followed_by_eos(tmp_path):
    task, config = make_config("ptb_small", data_dir=corpus_files(str(tmp_path / "ptb")), max_length=3)
    corpus = task.corpus(config)
    ids = corpus.stream_ids("train")
    # "the cat sat / the dog sat / the cat ran", each then <eos> (3): not cut at max_length=3, no <bos> (2).
    assert ids.dtype == np.int32 and ids.shape == (12,)
    assert list(ids) == [4, 5, 6, 3, 4, 7, 6, 3, 4, 5, 8, 3]
    assert list(corpus.stream_ids("validation")) == [4, 5, 6, 3, 4, 1, 6, 3]  # "bird" is <unk>
    assert corpus.stream_ids("train") is ids  # cached
    with pytest.raises(ValueError, match=r"unknown split 'dev'; expected one of \['test', 'train', 'validation'\]"):
        corpus.stream_ids("dev")


def decoded_stream(corpus, ids):
    """The text of a character-level stream: every token's character, "\\n" for <eos>."""
    return "".join("\n" if i == corpus.vocabulary.eos_id else corpus.vocabulary.tokens[i] for i in ids)


def test_a_text_file_streams_its_exact_text_and_drops_blank_lines_from_sentences(tmp_path):
    # 30 lines with blank ones, double blanks and surrounding spaces; the splits cut at line boundaries.
    lines = [["HAMLET:", " To be, or not to be ", "", "", "OPHELIA:", "Good my lord,"][i % 6] + ("" if i % 6 in (2, 3)
             else f" {i}") for i in range(30)]
    text = "\n".join(lines) + "\n"
    path = tmp_path / "play.txt"
    path.write_text(text, encoding="utf-8")
    task, config = make_config("char_lstm", data_dir=str(path), max_length=8)
    corpus = task.corpus(config)
    parts = text_corpus.split_text(text)
    for split, part in parts.items():
        ids = corpus.stream_ids(split)
        # The stream is the split's text, a token per character and <eos> per newline: nats per character count
        # every character of the text, newlines included, and nothing else.
        assert len(ids) == len(part) and decoded_stream(corpus, ids) == part
        # Sentence by sentence, blank lines are left out (and long lines cut at max_length).
        inputs, targets = corpus.splits[split]
        assert len(inputs) == len([line for line in part.split("\n")[:-1] if line])
        assert all(x[0] == corpus.vocabulary.bos_id and 1 < len(x) <= 8 for x in inputs)
    assert "\n" not in corpus.vocabulary.tokens and " " in corpus.vocabulary.tokens


@pytest.fixture(scope="module")
def shakespeare():
    """The char_lstm preset's corpus: the bundled tiny Shakespeare at character level (a few seconds to tokenize)."""
    task, config = make_config("char_lstm")
    return task, config, task.corpus(config)


def test_tiny_shakespeare_at_character_level(shakespeare):
    task, config, corpus = shakespeare
    assert config["data_dir"] is None and config["corpus"] == "text" and config["tokenizer"]["level"] == "char"
    text = text_files.read_text(text_corpus.TINY_SHAKESPEARE)
    # The text's 65 characters, the newline being <eos>: the 4 specials and 64 characters, every one of them seen in
    # the training split.
    assert len(set(text)) == 65
    assert corpus.vocabulary.tokens[:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    assert set(corpus.vocabulary.tokens[4:]) == set(text) - {"\n"} and corpus.vocabulary.size == 68
    # Each split's stream is its text exactly: 1,003,856 / 55,780 / 55,758 characters (90/5/5 at line boundaries).
    parts = text_corpus.split_text(text)
    for split in ("train", "validation", "test"):
        assert len(corpus.stream_ids(split)) == len(parts[split])
    assert decoded_stream(corpus, corpus.stream_ids("test")) == parts["test"]
    assert 1 not in corpus.stream_ids("test")  # no <unk>: every test character is in the vocabulary
    # A line tokenized, mapped to ids and back, and detokenized is the line (its spaces are tokens too).
    line = "Thou let'st thy fortune sleep--die, rather; wink'st"
    tokenizer = Tokenizer(**config["tokenizer"])
    index = {token: i for i, token in enumerate(corpus.vocabulary.tokens)}
    ids = [index[token.decode("utf-8")] for token in tokenizer.tokenize(tf.constant(line)).numpy()]
    assert len(ids) == len(line) and ids[4] == index[" "]
    tokens = tf.constant([[corpus.vocabulary.tokens[i] for i in ids]])
    assert tokenizer.detokenize(tokens).numpy()[0].decode("utf-8") == line


# The parameter counts that the comment above the char presets states, with tiny Shakespeare's 68 tokens.
CHAR_PARAMETERS = {"char_lstm": 3455556, "char_gru": 3459912, "char_elman": 3459492, "char_gcnn": 3567428,
                   "char_ffnn": 3424132}


def test_the_char_presets_have_the_same_parameter_budget(shakespeare):
    task, _, corpus = shakespeare
    counts = {}
    for name in CHAR_PARAMETERS:
        _, config = make_config(name)
        assert task.corpus(config) is corpus  # one corpus for all five: the same data, vocabulary and streams
        model = task.build_model(config)
        model(np.zeros((2, 5), "int32"))
        counts[name] = model.count_params()
    assert counts == CHAR_PARAMETERS
    for name, count in counts.items():
        assert abs(count / counts["char_lstm"] - 1) <= 0.10, (name, count)


def test_every_preset_has_the_stream_keys_and_passes_the_checks():
    task = language_model.LanguageModelTask()
    # None everywhere (partial_window None reads as "drop", stream_loss None as "mean"): a run written before these
    # keys existed resumes.
    stream_keys = {"bptt_steps": None, "random_length": None, "partial_window": None, "eval_batch_size": None,
                   "stream_loss": None, "learning_rate_decay_start_epoch": None}
    for name in task.presets:
        _, config = make_config(name)
        task.check_config(config)
        assert set(stream_keys) <= set(config), name
        if name.startswith(("char_", "zaremba_")):
            assert isinstance(config["bptt_steps"], int) and config["partial_window"] == "drop", name
        else:
            assert all(config[key] == value for key, value in stream_keys.items()), name
    for name in CHAR_PARAMETERS:
        _, config = make_config(name)
        assert (config["corpus"], config["data_dir"], config["tokenizer"]["level"]) == ("text", None, "char")
        assert config["max_length"] >= 1000  # sentence by sentence, whole lines
        assert (config["optimizer"], config["bptt_steps"], config["batch_size"]) == ("adam", 100, 64)


# Zaremba et al. (2014), section 4.1 and their code: units (= embedding size), dropout, init scale, bptt, epochs,
# decay factor, the epoch after which it starts, gradient norm clip; and the parameter count with PTB's vocabulary
# (here 10,002 ids: <pad> and <bos> besides PTB's 10,000), which their paper rounds to 20M (medium) and 66M (large).
ZAREMBA = {
    "zaremba_small": (200, 0.0, 0.1, 20, 13, 0.5, 4, 5.0, 4652402),
    "zaremba_medium": (650, 0.5, 0.05, 35, 39, 1 / 1.2, 6, 5.0, 19777802),
    "zaremba_large": (1500, 0.65, 0.04, 35, 55, 1 / 1.15, 14, 10.0, 66028002),
}


def test_the_zaremba_presets_are_the_papers_recipes():
    for name, (units, dropout, init_scale, bptt, epochs, factor, start, clip, parameters) in ZAREMBA.items():
        _, config = make_config(name)
        assert config["model"] == "lstm_lm" and config["corpus"] == "files"
        assert config["model_options"] == {"units": units, "embedding_dim": units, "num_layers": 2,
                                           "dropout": dropout, "init_scale": init_scale}
        assert (config["bptt_steps"], config["batch_size"], config["epochs"]) == (bptt, 20, epochs)
        assert (config["optimizer"], config["learning_rate"], config["clip_global_norm"]) == ("sgd", 1.0, clip)
        assert config["learning_rate_decay_epochs"] == 1 and config["learning_rate_decay_start_epoch"] == start
        assert config["learning_rate_decay_factor"] == pytest.approx(factor)
        assert config["stream_loss"] == "sum" and config["partial_window"] == "drop"
        assert config["max_vocab_size"] == 10002 and config["random_length"] is None
        model = zoo.models.get(config["model"], vocab_size=config["max_vocab_size"], **config["model_options"])
        model(np.zeros((1, 2), "int32"))
        assert model.count_params() == parameters, name
        scale = config["model_options"]["init_scale"]
        assert all(np.abs(w).max() <= scale for w in model.get_weights()), name


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"bptt_steps": 0}, r"^bptt_steps must be a positive int or None, got 0$"),
        ({"bptt_steps": 35.0}, r"^bptt_steps must be a positive int or None, got 35.0$"),
        ({"eval_batch_size": 0}, r"^eval_batch_size must be a positive int or None, got 0$"),
        ({"learning_rate_decay_start_epoch": -1}, r"^learning_rate_decay_start_epoch must be an int >= 0 or None"),
        ({"partial_window": "cut"}, r"^partial_window must be one of \('pad', 'drop'\) .*, got 'cut'$"),
        ({"stream_loss": "total"}, r"^stream_loss must be one of \('mean', 'sum'\) .*, got 'total'$"),
        ({"bptt_steps": None, "random_length": True}, r"^random_length is set \(True\) but bptt_steps is None"),
        ({"random_length": {"probability": 2}}, r"^random_length probability must be a number in \[0, 1\], got 2$"),
        ({"random_length": "yes"}, r"^random_length must be None, True or a dict"),
    ],
)
def test_stream_config_errors_name_the_key(overrides, message):
    task, config = make_config("char_lstm")
    config = {**config, **overrides}
    with pytest.raises(ValueError, match=message):
        task.check_config(config)


def test_stream_numeric_keys_pass_when_valid():
    for key, value in (("bptt_steps", None), ("bptt_steps", 1), ("eval_batch_size", None), ("eval_batch_size", 10),
                       ("learning_rate_decay_start_epoch", 0), ("learning_rate_decay_start_epoch", None)):
        run_config.check({key: value})


def python_greedy(model, prompt_ids, max_new, eos, banned=(0, 1, 2)):
    """Greedy continuation by calling the model on the whole prefix at every step (no decoding state), never choosing
    a banned token (by default <pad>, <unk> and <bos>)."""
    ids, out, log_probs = list(prompt_ids), [], []
    for _ in range(max_new):
        logits = model(np.array([ids], "int32"), training=False).numpy()[0, -1].astype("float64")
        log_softmax = logits - np.log(np.sum(np.exp(logits - logits.max()))) - logits.max()
        token = int(np.argmax(np.where(np.isin(np.arange(len(logits)), banned), -np.inf, logits)))
        out.append(token)
        log_probs.append(log_softmax[token])
        ids.append(token)
        if token == eos:
            break
    return out, log_probs


@pytest.mark.slow
def test_export_generates_and_scores_in_both_loaders(trained, tmp_path):
    task, config, model_dir, trainer = trained
    path = export.export(model_dir, "lm", export_base=str(tmp_path / "saved"))
    corpus = task.corpus(config)
    vocabulary = corpus.vocabulary
    assert os.path.exists(os.path.join(path, "assets", "vocabulary.txt"))
    prompts = ["", "a big", "some cats that"]
    loaded = tf.saved_model.load(path)
    greedy = loaded.signatures["serving_default"](prompt=tf.constant(prompts))
    session_greedy = load_with_session(path, {"prompt": np.array(prompts, dtype=object)})
    for index, prompt in enumerate(prompts):
        ids = [vocabulary.bos_id] + [vocabulary.tokens.index(w) for w in prompt.split()]
        expected, expected_log_probs = python_greedy(trainer.model, ids, config["max_new_tokens"], vocabulary.eos_id)
        words = [vocabulary.tokens[t] for t in expected if t != vocabulary.eos_id]
        for outputs in (greedy, session_greedy):
            assert np.asarray(outputs["text"])[index].decode() == " ".join(words)
            assert int(np.asarray(outputs["lengths"])[index]) == len(expected)
            np.testing.assert_allclose(np.asarray(outputs["log_probs"])[index, : len(expected)], expected_log_probs,
                                       atol=1e-4)
    # A trained model continues a prompt grammatically: a finished sentence has a probability under the grammar;
    # one cut by max_new_tokens (greedy decoding may repeat a relative clause) is a prefix of a sentence.
    from training.data.grammar import agreement_grammar

    grammar = agreement_grammar()
    for prompt, text, length in zip(prompts, np.asarray(greedy["text"]), np.asarray(greedy["lengths"])):
        words = (prompt + " " + text.decode()).split()
        if length < config["max_new_tokens"]:
            assert grammar.log_probability(words) > -math.inf, (prompt, text)
        assert grammar.is_prefix(words), (prompt, text)

    # Edge cases: an empty batch, unknown words (<unk>), a prompt longer than max_length (cut), an empty sentence.
    empty = loaded.signatures["serving_default"](prompt=tf.constant([], tf.string))
    assert empty["text"].shape == (0,) and empty["log_probs"].shape == (0, config["max_new_tokens"])
    odd = loaded.signatures["serving_default"](prompt=tf.constant(["zebra quux", " ".join(["a"] * 300)]))
    assert odd["text"].shape == (2,) and np.all(odd["lengths"].numpy() >= 1)
    assert loaded.signatures["score"](sentences=tf.constant([""]))["tokens"].numpy().tolist() == [1]  # the end
    assert loaded.signatures["score"](sentences=tf.constant([], tf.string))["perplexity"].shape == (0,)

    sentences = [" ".join(line.split()) for line in corpus.lines["test"][:5]] + ["a dog sleep"]
    scored = loaded.signatures["score"](sentences=tf.constant(sentences))
    session_scored = load_with_session(path, {"sentences": np.array(sentences, dtype=object)}, signature="score")
    inputs, targets = corpus.splits["test"]
    for index in range(5):
        logits = trainer.model(inputs[index][None], training=False)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(targets[index][None], logits).numpy().sum()
        for outputs in (scored, session_scored):
            assert float(np.asarray(outputs["log_prob"])[index]) == pytest.approx(-nll, abs=1e-3)
            assert int(np.asarray(outputs["tokens"])[index]) == len(targets[index])
            assert float(np.asarray(outputs["perplexity"])[index]) == pytest.approx(
                math.exp(nll / len(targets[index])), rel=1e-4)
    # The ungrammatical sentence (number disagreement) scores worse than the grammatical one it differs from.
    grammatical = loaded.signatures["score"](sentences=tf.constant(["a dog sleeps"]))["perplexity"].numpy()[0]
    assert scored["perplexity"].numpy()[-1] > grammatical

    def sample(prompt_list, seeds, function=loaded.signatures["sample"]):
        count = len(prompt_list)
        return function(prompt=tf.constant(prompt_list), temperature=tf.fill([count], 1.0),
                        top_k=tf.zeros([count], tf.int32), top_p=tf.fill([count], 0.9),
                        seed=tf.constant(seeds, tf.int64))["text"].numpy().tolist()

    first = sample(prompts, [1, 1, 1])
    assert sample(prompts, [1, 1, 1]) == first and sample(prompts, [2, 2, 2]) != first
    # Each row is drawn with its own seed: alone, or elsewhere in a batch, it gets the same text.
    assert sample(prompts[::-1], [1, 1, 1])[::-1] == first
    assert [sample([p], [1])[0] for p in prompts] == first
    for bad, message in (({"temperature": tf.zeros([3])}, "temperature must be > 0"),
                         ({"top_p": tf.fill([3], 1.5)}, r"top_p must be in \(0, 1\]"),
                         ({"top_k": tf.fill([3], -1)}, "top_k must be >= 0"),
                         ({"seed": tf.zeros([2], tf.int64)}, "one value per prompt")):
        arguments = {"prompt": tf.constant(prompts), "temperature": tf.ones([3]), "top_k": tf.zeros([3], tf.int32),
                     "top_p": tf.ones([3]), "seed": tf.zeros([3], tf.int64), **bad}
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures["sample"](**arguments)
    session_sampled = load_with_session(path, {"prompt": np.array(prompts, dtype=object),
                                               "temperature": np.ones(3, "float32"), "top_k": np.zeros(3, "int32"),
                                               "top_p": np.full(3, 0.9, "float32"), "seed": np.ones(3, "int64")},
                                        signature="sample")
    assert np.asarray(session_sampled["text"]).tolist() == first


def specials_loving_model(task, config):
    """The config's LM, untrained, with an output bias that puts almost all the mass on <pad>, <bos> and <unk>."""
    model = task.build_model(config)
    model(np.zeros((1, 1), "int32"))
    vocabulary = task.corpus(config).vocabulary
    bias = np.zeros(vocabulary.size, "float32")
    bias[[vocabulary.pad_id, vocabulary.bos_id, vocabulary.unk_id]] = [14.0, 13.0, 12.0]
    model.output_projection.bias.assign(bias)
    return model


def test_the_export_never_generates_pad_or_bos_and_unk_only_when_allowed(tmp_path):
    # A model that puts nearly all its mass on the specials: every greedy choice and nearly every draw would be one.
    task, config = make_config(train_size=200, validation_size=20, test_size=20, max_new_tokens=6)
    vocabulary = task.corpus(config).vocabulary
    specials = ["<pad>", "<bos>", "<unk>"]
    model = specials_loving_model(task, config)
    probabilities = tf.nn.softmax(model(np.array([[vocabulary.bos_id, 5, 6]], "int32"))).numpy()[0]
    assert (probabilities[:, [vocabulary.pad_id, vocabulary.bos_id, vocabulary.unk_id]].sum(axis=-1) > 0.99).all()
    prompts = ["", "a big", "some cats that", "zebra"] * 8
    count = len(prompts)

    def generated(allow_unk):
        path = str(tmp_path / f"allow_unk_{allow_unk}")
        export.write_saved_model(task, {**config, "allow_unk": allow_unk}, model, path)
        loaded = tf.saved_model.load(path)
        greedy = loaded.signatures["serving_default"](prompt=tf.constant(prompts))
        outputs = [greedy]
        for temperature in (1.0, 100.0):  # 100 flattens the distribution: the banned tokens would be drawn often
            outputs.append(loaded.signatures["sample"](
                prompt=tf.constant(prompts), temperature=tf.fill([count], temperature),
                top_k=tf.zeros([count], tf.int32), top_p=tf.ones([count]), seed=tf.range(count, dtype=tf.int64)))
        words = []
        for output in outputs:
            assert (output["lengths"].numpy() >= 1).all()
            words.append([text.decode().split() for text in output["text"].numpy()])
        return words

    greedy, *sampled = generated(allow_unk=False)
    for rows in [greedy] + sampled:
        assert all(w in vocabulary.tokens[4:] for row in rows for w in row), rows
    assert sum(len(row) for row in greedy) > 0
    # Allowed, <unk> is the best token left: greedy writes nothing else; <pad> and <bos> stay out.
    greedy, *sampled = generated(allow_unk=True)
    assert all(row == ["<unk>"] * config["max_new_tokens"] for row in greedy), greedy
    assert not any(w in specials[:2] for rows in sampled for row in rows for w in row)
    assert any("<unk>" in row for row in sampled[1])


def test_allow_unk_must_be_a_bool():
    task, config = make_config(train_size=200, validation_size=20, test_size=20)
    model = task.build_model(config)
    with pytest.raises(ValueError, match="^allow_unk must be True or False, got 'yes'$"):
        task.serving_module({**config, "allow_unk": "yes"}, model)
