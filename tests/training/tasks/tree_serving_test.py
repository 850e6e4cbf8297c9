"""The tree tasks' exports (`training.tasks.tree_serving` and its ListOps and sentiment signatures): a tree string in,
the root's class, its probabilities, every node's class and span out, in both TensorFlow loaders and through the
server (REST and gRPC, batching on), equal to the Keras model on the trees parsed and encoded in Python."""

import os
import threading

import grpc
import httpx2 as httpx
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2
from tensorflow_serving.apis import prediction_service_pb2_grpc

from serving import export
from tests.helpers.saved_model import assert_dense_signature_outputs
from tests.helpers.saved_model import load_with_session
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.training.tasks import runs
from tests.training.tasks.sentiment_trees_test import write_treebank
from training.data import listops
from training.data import trees
from training.tasks.listops import BINARY_COMPOSITIONS
from training.tasks.listops import TOKEN_IDS
from training.tasks.sentiment_trees import unlabelled_text

# Small ListOps data: training lists of depth 1..3, test lists of depth 3..4. Ten epochs with every node's value
# supervised give a model sure of most digits' values (so that no argmax is a near-tie between the export and the
# Keras model; more than half right, where three epochs were not); about 15 s a model on 2 cores.
LISTOPS = {"train_size": 256, "validation_size": 32, "test_size": 32, "max_depth": 3, "max_length": 30,
           "test_min_depth": 3, "test_max_depth": 4, "test_max_length": 60, "batch_size": 8, "sort_window": 4,
           "epochs": 10, "node_loss_weight": 1.0}
SENTIMENT = {"batch_size": 8, "sort_window": 4, "epochs": 3, "model_options": {"units": 16, "embedding_dim": 16}}
BATCHING = ("max_batch_size { value: 32 }\nbatch_timeout_micros { value: 200000 }\nnum_batch_threads { value: 1 }\n"
            "max_enqueued_batches { value: 100 }\n")


def export_run(tmp_path_factory, task_name, preset, **overrides):
    """(task, config, model, path, loaded): a small run, exported, loaded with tf.saved_model.load."""
    task, config = runs.make_config(task_name, preset, **overrides)
    work = tmp_path_factory.mktemp(f"{task_name}-{preset}")
    trainer = runs.train_best(task, config, str(work / "run"))
    path = export.export(str(work / "run"), task_name, export_base=str(work / "saved"))
    return task, trainer.config, trainer.model, path, tf.saved_model.load(path)


@pytest.fixture(scope="module", params=["tree_lstm", "child_sum"])
def listops_export(request, tmp_path_factory):
    small = {"units": 16, "embedding_dim": 16}
    return export_run(tmp_path_factory, "listops", request.param, model_options=small, **LISTOPS)


@pytest.fixture(scope="module")
def listops_lstm_export(tmp_path_factory):
    return export_run(tmp_path_factory, "listops", "lstm", model_options={"units": 16},
                      **{**LISTOPS, "epochs": 1})


@pytest.fixture(scope="module")
def sentiment_export(tmp_path_factory):
    directory = write_treebank(str(tmp_path_factory.mktemp("sst") / "data"))
    return export_run(tmp_path_factory, "sentiment_trees", "fine", data_dir=directory, **SENTIMENT)


def both_loaders(path, loaded, input_name, texts, signature="serving_default"):
    """[outputs of tf.saved_model.load, outputs of the TF1 session loader], as NumPy arrays."""
    texts = np.array(texts, dtype=object)
    eager = loaded.signatures[signature](**{input_name: tf.constant(texts)})
    return [{name: value.numpy() for name, value in eager.items()},
            load_with_session(path, {input_name: texts}, signature)]


def softmax(logits):
    logits = np.asarray(logits, np.float64)
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def model_trees(task, config, expressions):
    """The trees of ListOps expressions as the model was trained on them, parsed in Python."""
    parsed = [listops.parse(expression) for expression in expressions]
    if task.composition(config) in BINARY_COMPOSITIONS:
        parsed = [trees.binarize(tree, how=config["binarize"]) for tree in parsed]
    return parsed


def keras_outputs(task, config, model, tree_list, token_ids, unknown_id=None):
    """(batch, logits [B, N, C]) of the Keras model on `trees.encode_batch` of the trees at the export's N."""
    batch = trees.encode_batch(tree_list, token_ids, task.serving_max_nodes(config),
                               task.data(config).max_children, unknown_id=unknown_id)
    return batch, np.asarray(model({key: batch[key] for key in ("words", "children", "heights")}))


def reference_spans(tree, leaf_positions, closes_lists):
    """(starts, ends) in post-order, computed on the Python tree: a leaf at its position (`leaf_positions`, in leaf
    order), an internal node from its first child's start to its last child's end, one token more with
    `closes_lists` for a labelled node (a ListOps list: its "]" follows its last argument)."""
    spans, found = {}, []
    leaves = iter(leaf_positions)
    for node in trees.postorder(tree):
        if node.is_leaf:
            position = next(leaves)
            spans[id(node)] = (position, position)
        else:
            end = spans[id(node.children[-1])][1] + (1 if closes_lists and node.label is not None else 0)
            spans[id(node)] = (spans[id(node.children[0])][0], end)
        found.append(spans[id(node)])
    return found


def listops_spans(expression, tree):
    positions = [i for i, token in enumerate(expression.split()) if token != listops.END]
    return reference_spans(tree, positions, closes_lists=True)


def chain(depth):
    """A ListOps expression of `depth` nested lists, each of two arguments: a tree of height `depth` (n-ary)."""
    return " ".join(["[MAX 1"] * depth + ["2"] + ["]"] * depth)


def listops_expected(task, config, model, expressions):
    """(the outputs of serving_default on `expressions`, computed with the Keras model on the trees parsed and encoded
    in Python, spans from the Python trees; the encoded batch)."""
    tree_list = model_trees(task, config, expressions)
    batch, logits = keras_outputs(task, config, model, tree_list, TOKEN_IDS)
    root_logits = logits[np.arange(len(tree_list)), batch["roots"]]
    spans = [listops_spans(e, t) for e, t in zip(expressions, tree_list)]
    return {"value": root_logits.argmax(-1), "probabilities": softmax(root_logits),
            "node_values": np.where(batch["labels"] >= 0, logits.argmax(-1), -1),
            "starts": padded([[s for s, _ in row] for row in spans], batch["words"].shape[1]),
            "ends": padded([[e for _, e in row] for row in spans], batch["words"].shape[1]),
            "nodes": batch["roots"] + 1}, batch


def padded(rows, width):
    return np.array([row + [-1] * (width - len(row)) for row in rows], np.int32)


def assert_outputs(found, expected):
    assert sorted(found) == sorted(expected)
    for name, value in expected.items():
        if np.asarray(value).dtype.kind == "f":
            np.testing.assert_allclose(found[name], value, atol=1e-5, err_msg=name)
        else:
            np.testing.assert_array_equal(found[name], value, err_msg=name)


# ListOps.

@pytest.mark.slow
def test_listops_outputs_are_the_keras_models_in_both_loaders(listops_export):
    task, config, model, path, loaded = listops_export
    assert_dense_signature_outputs(path)
    examples = task.examples(config)["test"][:16] + [listops.generate(np.random.default_rng(1), max_depth=1)]
    expressions = [e.expression for e in examples] + ["7"]  # a lone digit is an expression too
    expected, batch = listops_expected(task, config, model, expressions)
    largest = max(len(item["words"]) for items in task.data(config).encoded.values() for item in items)
    assert batch["words"].shape[1] == trees.bucket(largest)  # N: serving_max_nodes's default
    for outputs in both_loaders(path, loaded, "expression", expressions):
        assert_outputs(outputs, expected)
    # Every node with a value has one in the output, and only those: lists and digits, not operators.
    tree_list = model_trees(task, config, expressions)
    digits_and_lists = [[node.label is not None for node in trees.postorder(tree)] for tree in tree_list]
    assert [list(row[:len(has)] >= 0) for row, has in zip(outputs["node_values"], digits_and_lists)] == \
        digits_and_lists
    # Learnt: most digits' values are right (chance 1/10).
    digits = batch["words"] >= TOKEN_IDS["0"]
    assert np.mean(outputs["node_values"][digits] == batch["labels"][digits]) > 0.5
    # An empty batch gives empty outputs.
    empty = loaded.signatures["serving_default"](expression=tf.constant([], tf.string))
    assert all(value.shape[0] == 0 for value in empty.values()), empty


@pytest.mark.slow
def test_listops_padding_never_changes_a_result(listops_export):
    task, config, _, path, loaded = listops_export
    small, large = "[MAX 2 9 [MIN 4 7 ] 0 ]", max((e.expression for e in task.examples(config)["test"]), key=len)
    alone, = both_loaders(path, loaded, "expression", [small])[:1]
    for batched in both_loaders(path, loaded, "expression", [large, small, large]):
        for name, value in alone.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(batched[name][1], value[0], atol=1e-6, err_msg=name)
            else:
                np.testing.assert_array_equal(batched[name][1], value[0], err_msg=name)


def chain_of_height(task, config, height):
    """`chain(depth)` whose tree, as the model reads it (binarised or not), has the height `height`."""
    for depth in range(1, height + 1):
        (tree,) = model_trees(task, config, [chain(depth)])
        if trees.heights(tree)[-1] == height:
            return chain(depth)
    raise AssertionError(f"no chain of height {height}")


@pytest.mark.slow
def test_listops_bad_input_fails_with_invalid_argument_naming_the_problem(listops_export):
    task, config, _, path, loaded = listops_export
    nodes, height = task.serving_max_nodes(config), task.data(config).max_height
    cases = [
        ("[MAX 2 9", "parse_listops: row 0, at the end of the string: a list never closed"),
        ("[MAX 2 x ]", "parse_listops: row 0, token 3 `x`: an unknown token"),
        ("", "parse_listops: row 0, at the end of the string: no tokens"),
        ("[MAX 2 9 ] ]", "parse_listops: row 0, token 5 `]`: a token after the end of the expression"),
        (chain(nodes), f"more nodes than max_nodes={nodes}"),
        (chain_of_height(task, config, height + 1),
         f"tree too tall: row 0 has height {height + 1}, more than max_height={height}"),
    ]
    if task.composition(config) not in BINARY_COMPOSITIONS:  # the n-ary trees hold lists of up to max_args arguments
        assert config["max_args"] + 1 == 6
        cases.append((" ".join(["[SM"] + ["1"] * 9 + ["]"]), "a node of more than max_children=6 children"))
    for expression, message in cases:
        for texts in ([expression], ["[MIN 1 2 ]", expression]):  # the first bad row is named
            expected = message.replace("row 0", f"row {len(texts) - 1}").replace("[", "\\[")
            with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
                loaded.signatures["serving_default"](expression=tf.constant(texts))
            with pytest.raises(tf.errors.InvalidArgumentError, match=expected):
                load_with_session(path, {"expression": np.array(texts, dtype=object)})


@pytest.mark.slow
def test_listops_a_tree_as_tall_as_the_limit_is_answered(listops_export):
    task, config, model, path, loaded = listops_export
    expressions = [chain_of_height(task, config, task.data(config).max_height)]
    expected, _ = listops_expected(task, config, model, expressions)
    for outputs in both_loaders(path, loaded, "expression", expressions):
        assert_outputs(outputs, expected)


@pytest.mark.slow
def test_the_listops_lstm_export_reads_the_flattened_expression(listops_lstm_export):
    task, config, model, path, loaded = listops_lstm_export
    assert_dense_signature_outputs(path)
    expressions = [e.expression for e in task.examples(config)["test"][:8]] + ["7"]
    vocabulary = list(listops.VOCABULARY)
    onehot = np.zeros((len(expressions), max(len(e.split()) for e in expressions), len(vocabulary)), "float32")
    for row, expression in enumerate(expressions):
        for step, token in enumerate(expression.split()):
            onehot[row, step, vocabulary.index(token)] = 1.0
    logits = np.asarray(model(onehot))
    for outputs in both_loaders(path, loaded, "expression", expressions):
        assert sorted(outputs) == ["probabilities", "value"]
        np.testing.assert_allclose(outputs["probabilities"], softmax(logits), atol=1e-5)
        np.testing.assert_array_equal(outputs["value"], logits.argmax(-1))
    for expression, message in (("[MAX 2 x ]", "an unknown token"), ("[MAX 2 9", "unbalanced brackets"),
                                ("2 ] [MIN 3", "unbalanced brackets"), (" ", "an expression without tokens")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures["serving_default"](expression=tf.constant(["[MIN 1 2 ]", expression]))
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            load_with_session(path, {"expression": np.array([expression], dtype=object)})


# Sentiment trees.

def sentiment_texts(task, config, count):
    """(trees, unlabelled texts, labelled texts) of the first `count` test trees of more than one node (a one-word
    tree has no unlabelled form: `unlabelled_text`)."""
    chosen = [tree for tree in task.data(config).trees["test"] if not tree.is_leaf][:count]
    return chosen, [unlabelled_text(t) for t in chosen], [trees.format_tree(t) for t in chosen]


def sentiment_spans(tree):
    return reference_spans(tree, range(len(trees.leaves(tree))), closes_lists=False)


def sentiment_expected(task, config, model, tree_list):
    """The outputs of the sentiment signatures on `tree_list`, computed with the Keras model on the trees encoded in
    Python (words missing from the vocabulary: <unk>), spans from the Python trees; and the encoded batch."""
    batch, logits = keras_outputs(task, config, model, tree_list, task.data(config).vocabulary, unknown_id=1)
    root_logits = logits[np.arange(len(tree_list)), batch["roots"]]
    spans = [sentiment_spans(tree) for tree in tree_list]
    return {"label": root_logits.argmax(-1), "probabilities": softmax(root_logits),
            "node_labels": np.where(batch["heights"] >= 0, logits.argmax(-1), -1),
            "starts": padded([[s for s, _ in row] for row in spans], batch["words"].shape[1]),
            "ends": padded([[e for _, e in row] for row in spans], batch["words"].shape[1]),
            "nodes": batch["roots"] + 1}, batch


@pytest.mark.slow
def test_sentiment_outputs_are_the_keras_models_in_both_loaders_and_signatures(sentiment_export):
    task, config, model, path, loaded = sentiment_export
    assert sorted(os.listdir(os.path.join(path, "assets"))) == ["vocabulary.txt"]
    assert_dense_signature_outputs(path)
    data = task.data(config)
    chosen, unlabelled, labelled = sentiment_texts(task, config, 16)
    # A word the vocabulary lacks is <unk>; words are taken as written: "Superb" is not "superb".
    extra = trees.parse_tree("(3 (2 zorblax) (3 (2 Superb) (3 fine)))")
    chosen, unlabelled, labelled = (chosen + [extra], unlabelled + ["(zorblax (Superb fine))"],
                                    labelled + [trees.format_tree(extra)])
    assert "Superb" not in data.vocabulary and "zorblax" not in data.vocabulary
    expected, batch = sentiment_expected(task, config, model, chosen)
    assert np.sum(batch["words"] == 1) == 3  # zorblax, Superb, fine
    for outputs in (both_loaders(path, loaded, "tree", unlabelled)
                    + both_loaders(path, loaded, "tree", labelled, signature="labelled_tree")):
        assert_outputs(outputs, expected)
    # The labelled signature reads a one-word tree exactly as training does.
    leaf = next(tree for tree in data.trees["test"] if tree.is_leaf)
    expected, _ = sentiment_expected(task, config, model, [leaf])
    for outputs in both_loaders(path, loaded, "tree", [trees.format_tree(leaf)], signature="labelled_tree"):
        assert_outputs(outputs, expected)


@pytest.mark.slow
def test_sentiment_padding_never_changes_a_result(sentiment_export):
    task, config, _, path, loaded = sentiment_export
    _, unlabelled, _ = sentiment_texts(task, config, 40)
    small, large = min(unlabelled, key=len), max(unlabelled, key=len)
    alone, = both_loaders(path, loaded, "tree", [small])[:1]
    for batched in both_loaders(path, loaded, "tree", [large, small, large]):
        for name, value in alone.items():
            if value.dtype.kind == "f":
                np.testing.assert_allclose(batched[name][1], value[0], atol=1e-6, err_msg=name)
            else:
                np.testing.assert_array_equal(batched[name][1], value[0], err_msg=name)


def right_chain(words):
    """An unlabelled right-branching tree over `words`: height len(words) - 1."""
    text = words[-1]
    for word in reversed(words[:-1]):
        text = f"({word} {text})"
    return text


@pytest.mark.slow
def test_sentiment_bad_input_fails_with_invalid_argument_naming_the_problem(sentiment_export):
    task, config, _, path, loaded = sentiment_export
    nodes, height = task.serving_max_nodes(config), task.data(config).max_height
    cases = [
        ("serving_default", "(good (movie)",
         "parse_bracketed: row 1, at the end of the string: unbalanced parentheses"),
        ("serving_default", "good movie", "parse_bracketed: row 1, token 1 `good`: a word outside the tree"),
        ("serving_default", "(a b c)", "a node of more than max_children=2 children"),
        ("serving_default", right_chain(["good"] * (nodes // 2 + 1)), f"more nodes than max_nodes={nodes}"),
        ("serving_default", right_chain(["good"] * (height + 2)),
         f"tree too tall: row 1 has height {height + 1}, more than max_height={height}"),
        ("labelled_tree", "(3 (2 good) (x movie))",
         "parse_bracketed: row 1, token 8 `x`: a label that is not an integer"),
    ]
    assert 2 * (height + 2) - 1 <= nodes  # the tall tree fits the node limit: its height is what fails
    for signature, text, message in cases:
        texts = ["(2 good)" if signature == "labelled_tree" else "(good movie)", text]
        with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", "\\(")):
            loaded.signatures[signature](tree=tf.constant(texts))
        with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", "\\(")):
            load_with_session(path, {"tree": np.array(texts, dtype=object)}, signature)


# Through the server.

def serve_and_check(path, name, input_name, texts, expected, bad_text, bad_message):
    """Serves the export with batching on, then checks over REST and gRPC (alone and as concurrent requests that
    the server batches) that every row's outputs are `expected` ({output: array}), and that `bad_text` fails with
    INVALID_ARGUMENT naming `bad_message`."""
    base = os.path.dirname(os.path.dirname(path))
    parameters = os.path.join(base, "batching.config")
    with open(parameters, "w") as f:
        f.write(BATCHING)
    server = make_server(model_config_file=os.path.join(base, export.CONFIG_FILE), rest_api_port=free_port(),
                         enable_batching=True, batching_parameters_file=parameters).start()
    url = f"http://127.0.0.1:{server.rest_port}/v1/models/{name}:predict"
    channel = grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}")
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)

    def grpc_predict(values):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(np.array(values, dtype=object)))
        response = stub.Predict(request, timeout=120)
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    def check(outputs, rows):
        assert sorted(outputs) == sorted(expected)
        for key, value in expected.items():
            found = np.asarray(outputs[key])
            if value.dtype.kind == "f":
                np.testing.assert_allclose(found, value[rows], atol=1e-5, err_msg=key)
            else:
                np.testing.assert_array_equal(found, value[rows], err_msg=key)

    try:
        rows = httpx.post(url, json={"instances": list(texts)}, timeout=120).json()["predictions"]
        check({key: [row[key] for row in rows] for key in expected}, slice(None))
        check(grpc_predict(texts), slice(None))
        response = httpx.post(url, json={"instances": [bad_text]}, timeout=120)
        assert response.status_code == 400 and bad_message in response.json()["error"], response.text
        with pytest.raises(grpc.RpcError) as raised:
            grpc_predict([bad_text])
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT and bad_message in raised.value.details()

        # Concurrent requests, half over REST and half over gRPC, batched together: each gets what it gets alone.
        before = processed_batches(server, name)
        found = [None] * len(texts)

        def call(index):
            if index % 2:
                row = httpx.post(url, json={"instances": [texts[index]]}, timeout=120).json()["predictions"][0]
                found[index] = {key: np.asarray(row[key])[None] for key in expected}
            else:
                found[index] = grpc_predict([texts[index]])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(texts))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for index, outputs in enumerate(found):
            check(outputs, slice(index, index + 1))
        assert processed_batches(server, name) - before < len(texts), "concurrent requests were not batched"
    finally:
        channel.close()
        server.stop()


def processed_batches(server, name):
    page = server.metrics.exposition().decode()
    marker = f':tensorflow:serving:batching_session:processed_batch_size_count{{model_name="{name}"}} '
    return float(page.split(marker)[1].split("\n")[0]) if marker in page else 0.0


@pytest.mark.slow
def test_listops_served_over_rest_and_grpc_with_batching(listops_export):
    task, config, model, path, _ = listops_export
    expressions = [e.expression for e in task.examples(config)["test"][:8]]
    expected, _ = listops_expected(task, config, model, expressions)
    too_tall = chain_of_height(task, config, task.data(config).max_height + 1)
    serve_and_check(path, "listops", "expression", expressions, expected, too_tall, "tree too tall")


@pytest.mark.slow
def test_sentiment_served_over_rest_and_grpc_with_batching(sentiment_export):
    task, config, model, path, _ = sentiment_export
    chosen, unlabelled, _ = sentiment_texts(task, config, 8)
    expected, _ = sentiment_expected(task, config, model, chosen)
    serve_and_check(path, "sentiment_trees", "tree", unlabelled, expected, "(good movie", "unbalanced parentheses")


def test_serving_max_nodes_sets_the_signatures_node_axis_and_its_limit():
    task, config = runs.make_config("listops", "tree_lstm", model_options={"units": 8, "embedding_dim": 8},
                                    serving_max_nodes=16, **LISTOPS)
    task.check_config(config)
    serving = task.serving_module(config, task.build_model(config))
    evaluate = serving.functions["serving_default"]
    fits, too_large = "[MAX 2 9 [MIN 4 7 ] 0 ]", "[MAX 2 9 [MIN 4 7 ] 0 1 3 5 ]"
    sizes = [len(trees.postorder(tree)) for tree in model_trees(task, config, [fits, too_large])]
    assert sizes == [13, 19]  # binarised: one node per argument of each list, and the leaves
    outputs = evaluate(expression=tf.constant([fits]))
    assert outputs["node_values"].shape == (1, 16) and int(outputs["nodes"][0]) == 13
    with pytest.raises(tf.errors.InvalidArgumentError, match="more nodes than max_nodes=16"):
        evaluate(expression=tf.constant([too_large]))
    warmup = task.warmup_inputs(config, 2)["expression"]  # only test lists that fit
    assert np.all(evaluate(expression=warmup)["nodes"].numpy() <= 16)
    for bad in (0, -1, 2.5, "64"):
        with pytest.raises(ValueError, match="serving_max_nodes must be a positive int or None"):
            task.check_config({**config, "serving_max_nodes": bad})
