"""The language-model task: corpora, perplexity against the grammar's bound, and its export."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from serving import export
from tests.helpers.saved_model import load_with_session
from tests.training.tasks import runs


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
    with pytest.raises(ValueError, match="corpus must be 'grammar' or 'files', got 'web'"):
        task.corpus(config)


def test_long_sentences_are_cut_with_their_targets_aligned(tmp_path):
    task, config = make_config("ptb_small", data_dir=corpus_files(str(tmp_path / "ptb")), max_length=3)
    inputs, targets = task.corpus(config).splits["train"]
    assert list(inputs[0]) == [2, 4, 5] and list(targets[0]) == [4, 5, 6]  # cut: "sat" is the next word, not <eos>


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
