import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from serving.server.errors import ServingError
from serving.server.servable import Servable
from tests.helpers import saved_model
from training.data import listops, trees, trees_in_graph
from training.data.trees import Tree

VOCABULARY = {word: index + 2 for index, word in enumerate(["It", "'s", "fine", "-LRB-", "-RRB-", "``", "a", "b"])}
OOV = 1  # the id of a word outside VOCABULARY; 0 is what internal nodes and padding hold
WORDS = list(VOCABULARY) + ["unseen", "n't", "x9"]  # the last three are out of vocabulary
LISTOPS_IDS = {token: index + 1 for index, token in enumerate(listops.VOCABULARY)}


def table(ids, default):
    return tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(list(ids), list(ids.values())), default)


def random_tree(rng, labelled, max_children, depth=0, max_depth=5):
    """A random n-ary tree, unary nodes included: every label 0..9 (labelled) or None, words from WORDS. The root is
    an internal node (an unlabelled leaf alone is a bare word, not a bracketed tree)."""
    label = int(rng.integers(10)) if labelled else None
    if depth >= max_depth or (depth > 0 and rng.random() < 0.4):
        return Tree(label, WORDS[int(rng.integers(len(WORDS)))])
    count = int(rng.integers(1, max_children + 1))
    return Tree(label, None, tuple(random_tree(rng, labelled, max_children, depth + 1, max_depth)
                                   for _ in range(count)))


def chain(length, labelled):
    """A left-branching chain of `length` internal nodes: deeper nesting than random trees reach."""
    label = 1 if labelled else None
    tree = Tree(label, "a")
    for _ in range(length):
        tree = Tree(label, None, (tree, Tree(label, "b")))
    return tree


def respace(text, rng):
    """`text` with its whitespace changed but not its tokens: spaces and tabs of random width between tokens, and
    next to parentheses either none or some, so that the tokenizer is shown not to depend on the spacing."""
    pieces = []
    for token in text.replace("(", " ( ").replace(")", " ) ").split():
        spaces = "".join(rng.choice([" ", "\t", "  "], 1 + rng.integers(2)))
        gap = "" if token in ("(", ")") and rng.random() < 0.5 else spaces
        pieces.append(gap + token)
    return "".join(pieces).strip() if rng.random() < 0.5 else " " + "".join(pieces) + "\t"


@tf.function
def parse_in_graph(strings, lookup, max_nodes, max_children, labelled, spans=False):
    return trees_in_graph.parse_bracketed(strings, lookup, max_nodes, max_children, labelled=labelled, spans=spans)


def with_spans(batch, spans, max_nodes):
    """`batch` (encode_batch's dict) with "starts" and "ends" [B, N] from each tree's reference spans, -1 padded."""
    starts = np.full([len(spans), max_nodes], -1, np.int32)
    ends = np.full([len(spans), max_nodes], -1, np.int32)
    for row, pairs in enumerate(spans):
        starts[row, :len(pairs)], ends[row, :len(pairs)] = zip(*pairs)
    return dict(batch, starts=starts, ends=ends)


def assert_batch_equal(result, expected):
    assert sorted(result) == sorted(expected)
    for key, value in expected.items():
        got = result[key].numpy() if hasattr(result[key], "numpy") else result[key]
        assert got.dtype == np.int32, key
        np.testing.assert_array_equal(got, value, err_msg=key)


def test_the_docstring_example_eagerly():
    batch = trees_in_graph.parse_bracketed(tf.constant(["(3 (2 It) (4 (2 's) (3 fine)))"]),
                                           table({"It": 4, "'s": 5, "fine": 6}, 1), 8, 2, labelled=True)
    np.testing.assert_array_equal(batch["children"][0, :5], [[-1, -1], [-1, -1], [-1, -1], [1, 2], [0, 3]])
    assert batch["children"].shape.as_list() == [1, 8, 2]


@pytest.mark.parametrize("labelled", [True, False])
@pytest.mark.parametrize("shape", ["n-ary", "binary"])
def test_random_trees_equal_encode_batch(labelled, shape):
    """Random trees (seeded), in batches of mixed sizes, respaced, parsed in the graph: the arrays of encode_batch."""
    rng = np.random.default_rng(13 + 2 * labelled + (shape == "binary"))
    lookup = table(VOCABULARY, OOV)
    max_children = 4 if shape == "n-ary" else 2
    for size in (1, 7, 16, 25):
        batch = [random_tree(rng, labelled, 4) for _ in range(size)]
        batch[0] = chain(int(rng.integers(8, 20)), labelled)  # deep nesting in every batch
        if shape == "binary":
            # The chains' new nodes take the label of the node they replace, so that every node stays labelled.
            batch = [trees.binarize(tree, how=str(rng.choice(["left", "right"])), inherit_label=labelled)
                     for tree in batch]
        strings = [respace(trees.format_tree(tree), rng) for tree in batch]
        assert [trees.parse_tree(s, labelled=labelled) for s in strings] == batch  # the respacing kept the trees
        max_nodes = trees.bucket(max(len(trees.postorder(tree)) for tree in batch))
        expected = trees.encode_batch(batch, VOCABULARY, max_nodes, max_children, unknown_id=OOV)
        result = parse_in_graph(tf.constant(strings), lookup, max_nodes, max_children, labelled)
        assert result["words"].shape.as_list() == [size, max_nodes]
        assert_batch_equal(result, expected)
        # With spans: each node's first and last leaf, as trees.leaf_spans gives them.
        result = parse_in_graph(tf.constant(strings), lookup, max_nodes, max_children, labelled, spans=True)
        assert_batch_equal(result, with_spans(expected, [trees.leaf_spans(tree) for tree in batch], max_nodes))


def test_sst_lines_labels_and_a_callable_for_ids():
    """Treebank lines, labels of several digits and leading zeros, and ids from a callable (a hash) instead of a
    table: the callable's ids, as encode_batch takes them from the same function."""
    lines = ["(1 (2 (2 The) (2 film)) (1 (2 (2 is) (1 (2 n't) (3 good))) (2 .)))",
             "(2 (2 -LRB-) (2 (2 (2 ``) (2 (2 Sorry) (2 ''))) (2 -RRB-)))",
             "(007 (12 It) (+4 (0 's) (-0 fine)))", "(3 only)"]

    def ids(words):
        return tf.strings.to_hash_bucket_fast(words, 50) + 3

    result = trees_in_graph.parse_bracketed(tf.constant(lines), ids, 16, 2, labelled=True)
    expected = trees.encode_batch([trees.parse_tree(line) for line in lines], lambda w: int(ids(tf.constant(w))), 16, 2)
    assert_batch_equal(result, expected)
    np.testing.assert_array_equal(result["labels"][2, :5], [12, 0, 0, 4, 7])


def test_mixed_labelled_words_and_nodes_in_unlabelled_trees():
    strings = ["(It ('s fine))", "(It 's fine)", "((a))", "(a (b (a b) a) (b))"]
    batch = [trees.parse_tree(s, labelled=False) for s in strings]
    result = parse_in_graph(tf.constant(strings), table(VOCABULARY, OOV), 16, 3, False)
    assert_batch_equal(result, trees.encode_batch(batch, VOCABULARY, 16, 3, unknown_id=OOV))


def test_empty_batch():
    for labelled in (True, False):
        result = parse_in_graph(tf.constant([], tf.string), table(VOCABULARY, OOV), 8, 2, labelled)
        assert {key: value.shape.as_list() for key, value in result.items()} == {
            "words": [0, 8], "children": [0, 8, 2], "heights": [0, 8], "labels": [0, 8], "roots": [0]}
    result = trees_in_graph.parse_listops([], table(LISTOPS_IDS, 0), 8, 3)  # a Python list, too
    assert result["children"].shape.as_list() == [0, 8, 3]


def test_listops_expressions_equal_the_encoding_of_listops_parse():
    """Generated expressions (seeded; all four operators, medians of even counts, deep nesting) and a lone digit:
    the in-graph trees, list values included, equal encode_batch of listops.parse."""
    rng = np.random.default_rng(5)
    examples = listops.generate_many(rng, 40, max_depth=6, max_args=5)
    examples += listops.generate_many(rng, 8, max_depth=12, min_depth=10, max_args=3)
    expressions = [example.expression for example in examples]
    expressions += ["7", "[MED 2 5 ]", "[MED 1 2 3 4 ]", "[SM 9 9 [MED 0 1 ] ]", "[MIN 3 ]", " [MAX  2\t9 ] "]
    parsed = [listops.parse(expression) for expression in expressions]
    assert {tree.children[0].word for tree in parsed if not tree.is_leaf} == set(listops.OPERATORS)
    max_nodes = trees.bucket(max(listops.length(tree) for tree in parsed))
    expected = trees.encode_batch(parsed, LISTOPS_IDS, max_nodes, 6)
    result = tf.function(trees_in_graph.parse_listops)(tf.constant(expressions), table(LISTOPS_IDS, 0), max_nodes, 6)
    assert_batch_equal(result, expected)
    roots = result["labels"].numpy()[np.arange(len(expressions)), result["roots"].numpy()]
    np.testing.assert_array_equal(roots, [listops.evaluate(expression) for expression in expressions])


# Hand cases: one argument, a lone digit, nested lists as the first and the last argument, a list of many arguments.
LISTOPS_HAND = ["[MAX 5 ]", "7", "[MIN [MAX 1 2 ] 3 [SM 4 5 ] ]", "[MED [MAX [MIN 1 2 3 ] 4 ] [SM 5 [MIN 6 7 ] ] ]",
                "[SM [MED 3 ] ]", "[MED 9 0 9 0 1 2 8 ]", " [MAX  2\t9 ] "]


def listops_examples(seed, count):
    """`count` seeded expressions of depths 1..7 (some forced deep) and 2..5 arguments, then the hand cases."""
    rng = np.random.default_rng(seed)
    expressions = []
    for index in range(count):
        max_depth, max_args = 1 + index % 7, 2 + index % 4
        example = listops.generate(rng, max_depth=max_depth, max_args=max_args, min_depth=max_depth if index % 3 == 0
                                   else 1)
        expressions.append(example.expression)
    return expressions + LISTOPS_HAND


@pytest.mark.parametrize("binarize", [None, "left", "right"])
def test_listops_binarized_and_spans_equal_the_python_path(binarize):
    """A few hundred generated expressions and the hand cases, parsed in a tf.function with binarize and spans:
    encode_batch of (trees.binarize of) listops.parse, same post-order numbering, inner nodes unlabelled, list
    values on the lists' outermost nodes, heights; and each node's first and last token, as listops.token_spans."""
    expressions = listops_examples(21, 300)
    parsed = [listops.parse(expression) for expression in expressions]
    assert max(listops.depth(tree) for tree in parsed) == 7
    if binarize:
        parsed = [trees.binarize(tree, how=binarize) for tree in parsed]
    max_nodes = trees.bucket(max(len(trees.postorder(tree)) for tree in parsed))
    max_children = 2 if binarize else 8  # [MED 9 0 9 0 1 2 8 ]: 7 arguments
    expected = trees.encode_batch(parsed, LISTOPS_IDS, max_nodes, max_children)
    expected = with_spans(expected, [listops.token_spans(tree) for tree in parsed], max_nodes)
    parse = tf.function(trees_in_graph.parse_listops)
    lookup = table(LISTOPS_IDS, 0)
    for rows in (slice(0, 1), slice(0, 150), slice(150, None)):  # batches of different sizes and widths
        result = parse(tf.constant(expressions[rows]), lookup, max_nodes, max_children, binarize=binarize, spans=True)
        assert_batch_equal(result, {key: value[rows] for key, value in expected.items()})
    roots = result["labels"].numpy()[np.arange(len(result["roots"])), result["roots"].numpy()]
    np.testing.assert_array_equal(roots, [listops.evaluate(expression) for expression in expressions[150:]])


def test_listops_left_binarized_by_hand():
    """[MAX 2 9 0 ]: ((([MAX 2) 9) 0), each inner node numbered right after its last argument."""
    result = trees_in_graph.parse_listops(tf.constant(["[MAX 2 9 0 ]"]), table(LISTOPS_IDS, 0), 8, 2,
                                          binarize="left", spans=True)
    np.testing.assert_array_equal(result["children"][0], [[-1, -1], [-1, -1], [0, 1], [-1, -1], [2, 3], [-1, -1],
                                                          [4, 5], [-1, -1]])
    np.testing.assert_array_equal(result["labels"][0], [-1, 2, -1, 9, -1, 0, 9, -1])
    np.testing.assert_array_equal(result["heights"][0], [0, 0, 1, 0, 2, 0, 3, -1])
    np.testing.assert_array_equal(result["starts"][0], [0, 1, 0, 2, 0, 3, 0, -1])
    np.testing.assert_array_equal(result["ends"][0], [0, 1, 1, 2, 2, 3, 4, -1])
    assert int(result["roots"][0]) == 6


def test_listops_right_binarized_by_hand():
    """[MAX 2 9 0 ]: ([MAX (2 (9 0))), the new nodes numbered at the "]", innermost first; and a list as the last
    argument of a list that is not the last argument of its own list, whose "]" closes new nodes and the list in
    turn."""
    result = trees_in_graph.parse_listops(tf.constant(["[MAX 2 9 0 ]", "[SM [MIN 1 [MAX 2 3 ] ] 4 ]"]),
                                          table(LISTOPS_IDS, 0), 16, 2, binarize="right", spans=True)
    np.testing.assert_array_equal(result["children"][0, :8], [[-1, -1], [-1, -1], [-1, -1], [-1, -1], [2, 3],
                                                              [1, 4], [0, 5], [-1, -1]])
    np.testing.assert_array_equal(result["labels"][0, :8], [-1, 2, 9, 0, -1, -1, 9, -1])
    np.testing.assert_array_equal(result["heights"][0, :8], [0, 0, 0, 0, 1, 2, 3, -1])
    np.testing.assert_array_equal(result["starts"][0, :8], [0, 1, 2, 3, 2, 1, 0, -1])
    np.testing.assert_array_equal(result["ends"][0, :8], [0, 1, 2, 3, 3, 3, 4, -1])
    # [SM, [MIN, 1, [MAX, 2, 3, (2 3), [MAX .. ], (1 [MAX ..]), [MIN .. ], 4, ([MIN ..] 4), [SM .. ]
    np.testing.assert_array_equal(result["labels"][1, :14], [-1, -1, 1, -1, 2, 3, -1, 3, -1, 1, 4, -1, 5, -1])
    np.testing.assert_array_equal(result["children"][1, 11:13], [[9, 10], [0, 11]])
    np.testing.assert_array_equal(result["starts"][1, :13], [0, 1, 2, 3, 4, 5, 4, 3, 2, 1, 8, 1, 0])
    np.testing.assert_array_equal(result["ends"][1, :13], [0, 1, 2, 3, 4, 5, 5, 6, 6, 7, 8, 8, 9])


# (string, labelled, the token the message names or None for the end of the string, what the message says)
MALFORMED = [
    ("", True, None, "an empty string"),
    ("   ", False, None, "an empty string"),
    ("It (2 a)", True, "token 1 `It`", "a word outside the tree"),
    ("(2 a) (2 b)", True, "token 5 `(`", "text after the last `)` of the tree"),
    ("(2 a))", True, "token 5 `)`", "text after the last `)` of the tree"),
    (")(2 a)", True, "token 1 `)`", "a `)` that closes nothing"),
    ("(2 (1 a)", True, None, "`(` never closed; expected one more `)` for each (1 open)"),
    ("((a b)", False, None, "`(` never closed; expected one more `)` for each (1 open)"),
    ("(2 ())", True, "token 4 `)`", "an empty node `()`"),
    ("(a ())", False, "token 4 `)`", "an empty node `()`"),
    ("((2 a))", True, "token 2 `(`", "a missing label"),
    ("(x a)", True, "token 2 `x`", "a label that is not an integer"),
    ("(-3 a)", True, "token 2 `-3`", "a negative label"),
    ("(2 (1 a) (3))", True, "token 9 `)`", "a labelled node with no content"),
    ("(2 a b)", True, "token 4 `b`", "a second word in a leaf"),
    ("(2 (1 a) b)", True, "token 7 `b`", "a word among child nodes"),
    ("(2 a (1 b))", True, "token 4 `(`", "a child node after the word of a leaf"),
    ("(2 (1 a) (1 (1 b) (1 b) (1 a)))", True, "token 20 `)`", "a node of more than max_children=2 children"),
    ("(a b c)", False, "token 4 `c`", "a node of more than max_children=2 children"),
    ("(2 (1 a) (1 (1 (1 (1 (1 a) (1 b)) (1 a)) (1 b)) (1 a)))", True, "token 24 `(`",
     "more nodes than max_nodes=8"),  # 11 nodes: the 9th to open or be read is at token 24
    ("((((((((a))))))))", False, "token 9 `a`", "more nodes than max_nodes=8"),
    ("(a b (a b (a b (a b))))", False, "token 9 `b`", "more nodes than max_nodes=8"),
]


@pytest.mark.parametrize("text,labelled,token,what", MALFORMED)
def test_a_malformed_string_is_an_error_naming_the_row_token_and_problem(text, labelled, token, what):
    """The bad string sits in row 2 of a batch of good ones; the Python reader rejects it too."""
    good = "(1 (2 a) (0 b))" if labelled else "(a b)"
    with pytest.raises(ValueError):
        trees.encode_tree(trees.parse_tree(text, labelled=labelled), VOCABULARY, 8, 2, unknown_id=OOV)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        parse_in_graph(tf.constant([good, good, text, good]), table(VOCABULARY, OOV), 8, 2, labelled)
    message = error.value.message
    assert f"parse_bracketed: row 2, {token or 'at the end of the string'}: " in message, message
    assert what in message and f"The string: `{text}`" in message, message


def test_the_first_bad_row_is_named_and_eager_mode_fails_too():
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row 1, token 4 `b`: a second word"):
        trees_in_graph.parse_bracketed(tf.constant(["(1 a)", "(1 a b)", "(1"]), table(VOCABULARY, OOV), 8, 2,
                                       labelled=True)


def test_labels_beyond_int32_are_an_error_in_the_graph_only():
    """A documented difference from the Python reader, which takes any integer: the graph holds int32 labels."""
    assert trees.parse_tree("(1234567890 a)").label == 1234567890
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row 0, token 2 `1234567890`: a label that is not an "
                                                             r"integer of at most nine digits"):
        trees_in_graph.parse_bracketed(tf.constant(["(1234567890 a)"]), table(VOCABULARY, OOV), 8, 2, labelled=True)


def test_a_negative_word_id_is_an_error():
    """A table whose default is -1 (the kernel's "not found") gives an unknown word the id -1: an error, not a
    negative index into an embedding."""
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row 0, token 3 `unseen`: a word whose id is negative"):
        trees_in_graph.parse_bracketed(tf.constant(["(a unseen)"]), table(VOCABULARY, -1), 8, 2)


@pytest.mark.parametrize("expression,token,what", [
    ("", None, "no tokens"),
    ("[MAX 2 ] 3", "token 4 `3`", "a token after the end of the expression"),
    ("] 3", "token 1 `]`", "`]` closes no list"),
    ("[MAX 2 [MIN 3", None, "a list never closed; expected one more `]` for each (2 open)"),
    ("[MAX [MIN ] 2 ]", "token 3 `]`", "a list with no arguments"),
    ("[MAX 2 x ]", "token 3 `x`", "an unknown token"),
    ("[MAX 2 10 ]", "token 3 `10`", "an unknown token"),
    ("[MAX 2 3 4 5 ]", "token 5 `5`", "a node of more than max_children=4 children"),
    ("[MAX 2 [MIN 3 [SM 4 5 ] ] ]", "token 6 `4`", "more nodes than max_nodes=8"),  # the 9th of 10 nodes
])
def test_malformed_listops_expressions(expression, token, what):
    with pytest.raises(ValueError):
        trees.encode_tree(listops.parse(expression), LISTOPS_IDS, 8, 4)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        trees_in_graph.parse_listops(tf.constant(["[SM 1 2 ]", expression]), table(LISTOPS_IDS, 0), 8, 4)
    message = error.value.message
    assert f"parse_listops: row 1, {token or 'at the end of the string'}: {what}" in message, message


@pytest.mark.parametrize("expression,max_nodes,token,what", [
    ("", 8, None, "no tokens"),
    ("[MAX 2 ] 3", 8, "token 4 `3`", "a token after the end of the expression"),
    ("] 3", 8, "token 1 `]`", "`]` closes no list"),
    ("[MAX 2 [MIN 3", 8, None, "a list never closed; expected one more `]` for each (2 open)"),
    ("[MAX [MIN ] 2 ]", 8, "token 3 `]`", "a list with no arguments"),
    ("[MAX 2 x ]", 8, "token 3 `x`", "an unknown token"),
    # The inner nodes count: 13 nodes once binarised (10 n-ary), the 9th at the open of [SM.
    ("[MAX 2 [MIN 3 [SM 4 5 ] ] ]", 8, "token 5 `[SM`", "more nodes than max_nodes=8"),
    # 7 nodes n-ary, 10 binarised: the fold at `4` makes the 7th, and the list is the 8th.
    ("[MAX 2 3 4 5 6 ]", 7, "token 4 `4`", "more nodes than max_nodes=7"),
    # 8 nodes n-ary, 11 binarised: the fold as [MIN closes (followed by 4) makes the 9th, the list the 10th.
    ("[MAX 1 [MIN 2 3 ] 4 ]", 9, "token 6 `]`", "more nodes than max_nodes=9"),
])
def test_malformed_listops_expressions_binarized(expression, max_nodes, token, what):
    """The errors of the n-ary parse, but where the binarised tree has more nodes than max_nodes (the inner nodes
    counted), which the n-ary tree may not."""
    with pytest.raises(ValueError):
        trees.encode_tree(trees.binarize(listops.parse(expression), how="left"), LISTOPS_IDS, max_nodes, 2)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        tf.function(trees_in_graph.parse_listops)(tf.constant(["[SM 1 2 ]", expression]), table(LISTOPS_IDS, 0),
                                                  max_nodes, 2, binarize="left", spans=True)
    message = error.value.message
    assert f"parse_listops: row 1, {token or 'at the end of the string'}: {what}" in message, message


@pytest.mark.parametrize("expression,max_nodes,token,what", [
    ("", 8, None, "no tokens"),
    ("[MAX 2 ] 3", 8, "token 4 `3`", "a token after the end of the expression"),
    ("] 3", 8, "token 1 `]`", "`]` closes no list"),
    ("[MAX 2 [MIN 3", 8, None, "a list never closed; expected one more `]` for each (2 open)"),  # new nodes aside
    ("[MAX [MIN ] 2 ]", 8, "token 3 `]`", "a list with no arguments"),
    ("[MAX 2 x ]", 8, "token 3 `x`", "an unknown token"),
    ("[MAX 2 3 ] ]", 8, "token 5 `]`", "a token after the end of the expression"),  # after the new node closed
    # 7 nodes n-ary, 10 binarised: the push at `4` holds the 7th node open, and the list is the 8th.
    ("[MAX 2 3 4 5 6 ]", 7, "token 4 `4`", "more nodes than max_nodes=7"),
    # 8 nodes n-ary, 11 binarised: the push as [MIN closes (followed by 4) is the 10th node counted.
    ("[MAX 1 [MIN 2 3 ] 4 ]", 9, "token 6 `]`", "more nodes than max_nodes=9"),
])
def test_malformed_listops_expressions_right_binarized(expression, max_nodes, token, what):
    with pytest.raises(ValueError):
        trees.encode_tree(trees.binarize(listops.parse(expression), how="right"), LISTOPS_IDS, max_nodes, 2)
    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        tf.function(trees_in_graph.parse_listops)(tf.constant(["[SM 1 2 ]", expression, "[MAX 1 2 3 4 ]"]),
                                                  table(LISTOPS_IDS, 0), max_nodes, 2, binarize="right")
    message = error.value.message
    assert f"parse_listops: row 1, {token or 'at the end of the string'}: {what}" in message, message


def test_bad_arguments():
    lookup = table(VOCABULARY, OOV)
    with pytest.raises(ValueError, match="max_nodes must be a positive int, got 0"):
        trees_in_graph.parse_bracketed(tf.constant(["(a)"]), lookup, 0, 2)
    with pytest.raises(ValueError, match="max_children must be a positive int, got 2.0"):
        trees_in_graph.parse_listops(tf.constant(["3"]), lookup, 8, 2.0)
    with pytest.raises(ValueError, match=r"strings must be a tf.string tensor of rank 1 \[batch\], got string of "):
        trees_in_graph.parse_bracketed(tf.constant([["(a)"]]), lookup, 8, 2)
    with pytest.raises(ValueError, match="got int32"):
        trees_in_graph.parse_bracketed(tf.constant([1]), lookup, 8, 2)
    with pytest.raises(TypeError, match="token_table_or_fn must be a tf.lookup table or a callable"):
        trees_in_graph.parse_bracketed(tf.constant(["(a)"]), VOCABULARY, 8, 2)
    with pytest.raises(ValueError, match=r"binarize must be None \(the n-ary tree\), 'left' or 'right' .*got "
                                         r"'middle'"):
        trees_in_graph.parse_listops(tf.constant(["3"]), lookup, 8, 2, binarize="middle")
    with pytest.raises(ValueError, match="max_children must be >= 2 for a binarised tree, got 1"):
        trees_in_graph.parse_listops(tf.constant(["3"]), lookup, 8, 1, binarize="left")


class TreeParser(tf.Module):
    """The parse as a SavedModel signature: a tf.string [None] in, the batch format out."""

    def __init__(self):
        super().__init__()
        self.table = table(VOCABULARY, OOV)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="trees")])
    def parse(self, strings):
        return trees_in_graph.parse_bracketed(strings, self.table, 16, 2, labelled=True)


def graph_op_types(path):
    """Every op type of the SavedModel's graph and its function library."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    graph = proto.meta_graphs[0].graph_def
    return {node.op for node in graph.node} | {node.op for function in graph.library.function
                                                for node in function.node_def}


def test_saved_model_in_both_loaders(tmp_path):
    """Exported in a tf.Module, the parse gives encode_batch's arrays through tf.saved_model.load and through the
    TF1 session loader that TF Serving uses (and the model server's `Servable`), for a batch of mixed sizes and an
    empty batch; a malformed string fails in each; the graph holds TensorFlow core ops only, no Python-function ops
    (which TF Serving cannot run)."""
    path = str(tmp_path / "parser")
    module = TreeParser()
    tf.saved_model.save(module, path, signatures={"serving_default": module.parse})
    saved_model.assert_dense_signature_outputs(path)
    op_types = graph_op_types(path)
    assert {"StringSplitV2", "StaticRegexReplace", "StatelessWhile", "Assert", "LookupTableFindV2"} <= op_types
    assert not op_types & {"PyFunc", "EagerPyFunc", "PyFuncStateless", "NumpyFunction"}, op_types
    assert all(hasattr(tf.raw_ops, op) for op in op_types), op_types  # TensorFlow's own ops, no custom op library
    strings = ["(3 (2 It) (4 (2 's) (3 fine)))", "(1 x9)", "(2 (1 (0 a) (4 b)) (3 (2 n't) (1 (0 a) (3 ``))))"]
    expected = trees.encode_batch([trees.parse_tree(s) for s in strings], VOCABULARY, 16, 2, unknown_id=OOV)
    loaded = tf.saved_model.load(path)
    signature = loaded.signatures["serving_default"]
    assert_batch_equal(signature(trees=tf.constant(strings)), expected)
    assert_batch_equal(saved_model.load_with_session(path, {"trees": np.array(strings, object)}), expected)
    empty = saved_model.load_with_session(path, {"trees": np.array([], object)})
    assert {key: value.shape for key, value in empty.items()} == {
        "words": (0, 16), "children": (0, 16, 2), "heights": (0, 16), "labels": (0, 16), "roots": (0,)}
    assert signature(trees=tf.constant([], tf.string))["children"].shape.as_list() == [0, 16, 2]
    bad = ["(1 a)", "(2 (1 a)"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row 1, at the end of the string: unbalanced"):
        signature(trees=tf.constant(bad))
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row 1, at the end of the string: unbalanced"):
        saved_model.load_with_session(path, {"trees": np.array(bad, object)})

    # The model server's loader (TF Serving's way: the serve meta graph in a session): same arrays, and the malformed
    # string an INVALID_ARGUMENT whose message names the row.
    servable = Servable("parser", 1, path)
    assert_batch_equal(servable.predict("serving_default", {"trees": np.array(strings, object)}), expected)
    with pytest.raises(ServingError) as error:
        servable.predict("serving_default", {"trees": np.array(bad, object)})
    assert error.value.code == "INVALID_ARGUMENT" and "parse_bracketed: row 1, at the end" in error.value.message


class ListOpsParser(tf.Module):
    """parse_listops binarised, with spans, as a SavedModel signature: what a ListOps export runs before its model."""

    def __init__(self, binarize):
        super().__init__()
        self.table = table(LISTOPS_IDS, 0)
        self.binarize = binarize

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="expressions")])
    def parse(self, strings):
        return trees_in_graph.parse_listops(strings, self.table, 32, 2, binarize=self.binarize, spans=True)


@pytest.mark.parametrize("binarize", ["left", "right"])
def test_listops_saved_model_in_both_loaders(tmp_path, binarize):
    """Binarised with spans in a SavedModel: the Python path's arrays through tf.saved_model.load and TF Serving's
    session loader, for a batch and an empty batch; a malformed expression fails with the row named."""
    path = str(tmp_path / "listops_parser")
    module = ListOpsParser(binarize)
    tf.saved_model.save(module, path, signatures={"serving_default": module.parse})
    saved_model.assert_dense_signature_outputs(path)
    assert not graph_op_types(path) & {"PyFunc", "EagerPyFunc", "PyFuncStateless", "NumpyFunction"}
    expressions = ["[MAX 2 9 [MIN 4 7 ] 0 ]", "7", "[MED [SM 1 2 ] 3 [MIN 4 5 ] 8 ]", "[MAX 5 ]"]
    parsed = [trees.binarize(listops.parse(expression), how=binarize) for expression in expressions]
    expected = with_spans(trees.encode_batch(parsed, LISTOPS_IDS, 32, 2),
                          [listops.token_spans(tree) for tree in parsed], 32)
    signature = tf.saved_model.load(path).signatures["serving_default"]
    assert_batch_equal(signature(expressions=tf.constant(expressions)), expected)
    assert_batch_equal(saved_model.load_with_session(path, {"expressions": np.array(expressions, object)}), expected)
    empty = saved_model.load_with_session(path, {"expressions": np.array([], object)})
    assert {key: value.shape for key, value in empty.items()} == {
        "words": (0, 32), "children": (0, 32, 2), "heights": (0, 32), "labels": (0, 32), "roots": (0,),
        "starts": (0, 32), "ends": (0, 32)}
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"row 1, token 3 `\]`: a list with no arguments"):
        saved_model.load_with_session(path, {"expressions": np.array(["[SM 1 ]", "[MAX [MIN ] 2 ]"], object)})
