import numpy as np
import pytest

from training.data import trees
from training.data.trees import Tree

# Lines in the Stanford Sentiment Treebank layout (binary PTB brackets, a label 0..4 on every node, "(" written
# -LRB-).
SST = [
    "(3 (2 It) (4 (2 's) (3 fine)))",
    "(1 (2 (2 The) (2 film)) (1 (2 (2 is) (1 (2 n't) (3 good))) (2 .)))",
    "(2 (2 -LRB-) (2 (2 (2 ``) (2 (2 Sorry) (2 ''))) (2 -RRB-)))",
]


def leaf(label, word):
    return Tree(label, word)


def node(label, *children):
    return Tree(label, None, children)


def random_tree(rng, depth=0, max_children=4):
    """A random n-ary tree: labelled nodes (or None), unary nodes included, words w0, w1, ... numbered later."""
    label = int(rng.integers(5)) if rng.random() < 0.8 else None
    if depth >= 4 or rng.random() < 0.35:
        return Tree(label, "w")
    count = int(rng.integers(1, max_children + 1))
    return Tree(label, None, tuple(random_tree(rng, depth + 1, max_children) for _ in range(count)))


def number_words(tree):
    """`tree` with its leaves' words renamed w0, w1, ... left to right, so that their order can be checked."""
    counter = iter(range(10**6))
    done = {}
    for item in trees.postorder(tree):
        done[id(item)] = (Tree(item.label, f"w{next(counter)}") if item.is_leaf
                          else Tree(item.label, None, tuple(done[id(c)] for c in item.children)))
    return done[id(tree)]


def test_parse_sst_lines_gives_the_tree_and_prints_back():
    assert trees.parse_tree(SST[0]) == node(3, leaf(2, "It"), node(4, leaf(2, "'s"), leaf(3, "fine")))
    for line in SST:
        tree = trees.parse_tree(line)
        assert trees.format_tree(tree) == line == str(tree)
    assert trees.leaves(trees.parse_tree(SST[1])) == ["The", "film", "is", "n't", "good", "."]
    assert trees.leaves(trees.parse_tree(SST[2])) == ["-LRB-", "``", "Sorry", "''", "-RRB-"]
    # Whitespace is free: none next to a parenthesis, several elsewhere, tabs.
    assert trees.parse_tree("  (3(2 It)\t(4 (2  's)(3 fine)) ) ") == trees.parse_tree(SST[0])


def test_unlabelled_trees_hold_bare_words():
    tree = trees.parse_tree("(It ('s fine) (x))", labelled=False)
    assert tree == node(None, leaf(None, "It"), node(None, leaf(None, "'s"), leaf(None, "fine")),
                        node(None, leaf(None, "x")))
    assert trees.format_tree(tree) == "(It ('s fine) (x))"
    # An integer is a word in an unlabelled tree.
    assert trees.parse_tree("(2 It)", labelled=False) == node(None, leaf(None, "2"), leaf(None, "It"))


# (text, column, what the message says): every malformed case of the module docstring.
MALFORMED = [
    ("", 1, "an empty line; expected a tree"),
    ("   ", 1, "an empty line; expected a tree"),
    ("  x (2 a)", 3, "'x' outside the tree; expected '(' first"),
    ("()", 1, "an empty node '()'; expected a label"),
    ("(3 (2 a) ())", 10, "an empty node '()'"),
    ("(3 (2 a) ((1 b)))", 11, "a missing label: the node opened at column 10 has '(' where its label should be; "
                              "expected an integer label"),
    ("(x a)", 2, "the label 'x' is not an integer; expected an integer label"),
    ("(3 (2 a) (1.5 b))", 11, "the label '1.5' is not an integer"),
    ("(-1 a)", 2, "the label -1 is negative; expected a non-negative integer"),
    ("(3 (2 a) (2))", 10, "the node labelled 2 has no content; expected a word or child nodes before the ')' at "
                          "column 12"),
    ("(2 good movie)", 9, "a second word 'movie' in the leaf opened at column 1 (after 'good'); expected ')'"),
    ("(2 (1 a) b)", 10, "the word 'b' among the child nodes of the node opened at column 1; expected '(' or ')'"),
    ("(2 a (1 b))", 6, "a child node after the word 'a' in the leaf opened at column 1; expected ')'"),
    ("(2 (1 a)))", 10, "unbalanced parentheses: this ')' closes nothing"),
    (")", 1, "unbalanced parentheses: this ')' closes nothing; expected '(' first"),
    ("(3 (2 It) (4 (2 's)", 20, "unbalanced parentheses: the line ends with 2 '(' never closed (the innermost at "
                                "column 11); expected 2 more ')'"),
    ("(2 a) b", 7, "trailing text 'b' after the tree's last ')'; expected one tree per line"),
    ("(2 a) (3 b)", 7, "trailing text '(' after the tree's last ')'"),
]


@pytest.mark.parametrize("text,column,what", MALFORMED)
def test_a_malformed_tree_names_the_file_line_column_and_what_was_expected(text, column, what):
    with pytest.raises(ValueError) as error:
        trees.parse_tree(text, source="dev.txt", line=7)
    assert str(error.value).startswith(f"'dev.txt', line 7, column {column}: "), str(error.value)
    assert what in str(error.value)


def test_malformed_unlabelled_trees():
    with pytest.raises(ValueError, match=r"^'<string>', line 1, column 6: an empty node '\(\)'; expected words"):
        trees.parse_tree("(a b () c)", labelled=False)
    with pytest.raises(ValueError, match=r"column 5: unbalanced parentheses: the line ends with 1 '\('"):
        trees.parse_tree("(a b", labelled=False)


def test_read_trees_skips_blank_lines_and_names_the_file_and_line_of_a_bad_tree(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(("\ufeff" + SST[0] + "\r\n\r\n  \n" + SST[1] + "\n").encode("utf-8"))
    assert trees.read_trees(path) == [trees.parse_tree(SST[0]), trees.parse_tree(SST[1])]
    path.write_text(SST[0] + "\n\n" + SST[1] + "\n(2 (2 a) (3 b)\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        trees.read_trees(path)
    assert str(error.value).startswith(f"{str(path)!r}, line 4, column 15: unbalanced parentheses")
    (tmp_path / "u.txt").write_text("(a (b c))\n", encoding="utf-8")
    assert trees.read_trees(tmp_path / "u.txt", labelled=False) == [trees.parse_tree("(a (b c))", labelled=False)]


def test_tree_nodes_are_validated():
    with pytest.raises(ValueError, match="non-negative int or None, got -1"):
        Tree(-1, "a")
    with pytest.raises(ValueError, match="non-negative int or None, got True"):
        Tree(True, "a")
    with pytest.raises(ValueError, match="needs a word .* or children"):
        Tree(1)
    with pytest.raises(ValueError, match="a leaf has a word and no children"):
        Tree(1, "a", (Tree(1, "b"),))
    with pytest.raises(ValueError, match="without whitespace or parentheses, got 'a b'"):
        Tree(1, "a b")
    with pytest.raises(ValueError, match="children must be Tree nodes"):
        Tree(1, None, ("a",))


def test_postorder_and_heights():
    tree = trees.parse_tree(SST[1])
    words = [item.word for item in trees.postorder(tree)]
    assert words == ["The", "film", None, "is", "n't", "good", None, None, ".", None, None]
    assert trees.heights(tree) == [0, 0, 1, 0, 0, 0, 1, 2, 0, 3, 4]
    # A 3000-node chain does not hit the recursion limit.
    chain = Tree(0, "a")
    for _ in range(3000):
        chain = Tree(0, None, (chain, Tree(0, "b")))
    assert trees.heights(chain)[-1] == 3000 and len(trees.postorder(chain)) == 6001


def test_leaf_spans():
    tree = trees.parse_tree(SST[1])  # post-order: The film . is n't good . . . . . (internal nodes as ".")
    assert trees.leaf_spans(tree) == [(0, 0), (1, 1), (0, 1), (2, 2), (3, 3), (4, 4), (3, 4), (2, 4), (5, 5),
                                      (2, 5), (0, 5)]
    assert trees.leaf_spans(Tree(1, "a")) == [(0, 0)]
    rng = np.random.default_rng(3)
    for _ in range(100):
        tree = number_words(random_tree(rng))
        words = trees.leaves(tree)
        spans = trees.leaf_spans(tree)
        assert len(spans) == len(trees.postorder(tree)) and spans[-1] == (0, len(words) - 1)
        for item, (first, last) in zip(trees.postorder(tree), spans):
            assert trees.leaves(item) == words[first:last + 1]


def test_binarize_right_and_left_branching():
    tree = node(1, leaf(0, "a"), leaf(1, "b"), leaf(2, "c"), leaf(3, "d"))
    assert trees.binarize(tree) == node(1, leaf(0, "a"), node(None, leaf(1, "b"), node(None, leaf(2, "c"),
                                                                                      leaf(3, "d"))))
    assert trees.binarize(tree, "left") == node(1, node(None, node(None, leaf(0, "a"), leaf(1, "b")), leaf(2, "c")),
                                                leaf(3, "d"))
    assert trees.binarize(tree, inherit_label=True) == node(1, leaf(0, "a"), node(1, leaf(1, "b"), node(
        1, leaf(2, "c"), leaf(3, "d"))))
    unary = node(4, node(3, node(2, leaf(1, "a"))), leaf(0, "b"))
    assert trees.binarize(unary) == unary  # kept by default
    assert trees.binarize(unary, collapse_unary=True) == node(4, leaf(3, "a"), leaf(0, "b"))
    for line in SST:  # already binary: unchanged
        assert trees.binarize(trees.parse_tree(line)) == trees.parse_tree(line)
    with pytest.raises(ValueError, match="how must be 'right' or 'left', got 'middle'"):
        trees.binarize(tree, "middle")


@pytest.mark.parametrize("how", ["right", "left"])
def test_binarize_invariants_on_random_trees(how):
    rng = np.random.default_rng(0)
    for _ in range(200):
        tree = number_words(random_tree(rng))
        labels = sorted(n.label for n in trees.postorder(tree) if n.label is not None)
        for collapse in (False, True):
            binary = trees.binarize(tree, how, collapse_unary=collapse)
            assert trees.leaves(binary) == trees.leaves(tree)
            counts = {len(n.children) for n in trees.postorder(binary) if not n.is_leaf}
            assert counts <= ({2} if collapse else {1, 2})
            assert binary.label == tree.label
            if not collapse:
                # Every original label is kept, and the new nodes have none.
                assert sorted(n.label for n in trees.postorder(binary) if n.label is not None) == labels
                # A node of n > 2 children gains n - 2 new nodes.
                added = sum(len(n.children) - 2 for n in trees.postorder(tree) if len(n.children) > 2)
                assert len(trees.postorder(binary)) == len(trees.postorder(tree)) + added


def test_encode_batch_against_hand_computed_arrays():
    first = trees.parse_tree(SST[0])
    # Post-order: bad 0, not 1, good 2, fine 3, (2 not good fine) 4, . 5, root 6.
    second = trees.parse_tree("(1 (0 bad) (2 (2 not) (1 good) (3 fine)) (2 .))")
    ids = {"It": 4, "'s": 5, "fine": 6, "bad": 7, "not": 8, "good": 9, ".": 10}
    batch = trees.encode_batch([first, second], ids, max_nodes=8, max_children=3)
    assert set(batch) == {"words", "children", "heights", "labels", "roots"}
    assert all(array.dtype == np.int32 for array in batch.values())
    np.testing.assert_array_equal(batch["words"], [[4, 5, 6, 0, 0, 0, 0, 0], [7, 8, 9, 6, 0, 10, 0, 0]])
    _ = -1
    np.testing.assert_array_equal(batch["children"], [
        [[_, _, _], [_, _, _], [_, _, _], [1, 2, _], [0, 3, _], [_, _, _], [_, _, _], [_, _, _]],
        [[_, _, _], [_, _, _], [_, _, _], [_, _, _], [1, 2, 3], [_, _, _], [0, 4, 5], [_, _, _]],
    ])
    np.testing.assert_array_equal(batch["heights"], [[0, 0, 0, 1, 2, _, _, _], [0, 0, 0, 0, 1, 0, 2, _]])
    np.testing.assert_array_equal(batch["labels"], [[2, 2, 3, 4, 3, _, _, _], [0, 2, 1, 3, 2, 2, 1, _]])
    np.testing.assert_array_equal(batch["roots"], [4, 6])


def test_encode_batch_unlabelled_nodes_unknown_words_and_callable_ids():
    tree = trees.sentiment_labels(trees.parse_tree(SST[0]), binary=True)
    batch = trees.encode_batch([tree], {"fine": 3}, max_nodes=5, max_children=2, unknown_id=1)
    np.testing.assert_array_equal(batch["words"], [[1, 1, 3, 0, 0]])
    np.testing.assert_array_equal(batch["labels"], [[-1, -1, 1, 1, 1]])
    batch = trees.encode_batch([tree], lambda word: len(word), max_nodes=6, max_children=2)
    np.testing.assert_array_equal(batch["words"], [[2, 2, 4, 0, 0, 0]])


def test_encode_batch_errors_name_the_tree_and_what_would_fit():
    small, large = trees.parse_tree(SST[0]), trees.parse_tree(SST[1])
    ids = {word: 4 for word in trees.leaves(large) + trees.leaves(small)}
    with pytest.raises(ValueError, match=r"tree 1 has 11 nodes, more than max_nodes=8; expected max_nodes >= 11"):
        trees.encode_batch([small, large], ids, max_nodes=8, max_children=2)
    ternary = trees.parse_tree("(1 (0 a) (2 b) (3 c))")
    with pytest.raises(ValueError, match=r"tree 0: node 3 \(post-order\) has 3 children, more than max_children=2; "
                                         r"binarize"):
        trees.encode_batch([ternary], {"a": 1, "b": 2, "c": 3}, max_nodes=4, max_children=2)
    with pytest.raises(ValueError, match=r"tree 0: the word 'It' has no id in token_ids and no unknown_id"):
        trees.encode_batch([small], {"fine": 1}, max_nodes=8, max_children=2)
    with pytest.raises(ValueError, match=r"the id of the word 'It' must be a non-negative int, got -2"):
        trees.encode_batch([small], lambda word: -2, max_nodes=8, max_children=2)
    with pytest.raises(ValueError, match="trees must hold at least one tree"):
        trees.encode_batch([], ids, max_nodes=8, max_children=2)
    with pytest.raises(ValueError, match="max_children must be a positive int, got 0"):
        trees.encode_batch([small], ids, max_nodes=8, max_children=0)


def test_encoded_random_trees_keep_the_format_invariants():
    rng = np.random.default_rng(1)
    forest = [trees.binarize(number_words(random_tree(rng)), collapse_unary=True) for _ in range(50)]
    ids = {f"w{i}": i + 1 for i in range(1000)}
    sizes = [len(trees.postorder(tree)) for tree in forest]
    batch = trees.encode_batch(forest, ids, max_nodes=trees.bucket(max(sizes)), max_children=2)
    for b, size in enumerate(sizes):
        children, heights = batch["children"][b], batch["heights"][b]
        assert batch["roots"][b] == size - 1
        assert (heights[size:] == -1).all() and (children[size:] == -1).all() and (batch["words"][b, size:] == 0).all()
        for i in range(size):
            real = children[i][children[i] >= 0]
            assert (real < i).all()  # post-order: children come first
            assert heights[i] == (0 if real.size == 0 else 1 + heights[real].max())
            assert (batch["words"][b, i] > 0) == (real.size == 0)


def test_bucket():
    assert [trees.bucket(n) for n in (1, 2, 3, 4, 5, 100, 128, 129)] == [1, 2, 4, 4, 8, 128, 128, 256]
    assert [trees.bucket(n, [64, 16, 32]) for n in (1, 16, 17, 64)] == [16, 16, 32, 64]
    with pytest.raises(ValueError, match="size 65 exceeds the largest bucket 64; expected size <= 64"):
        trees.bucket(65, [16, 64])
    with pytest.raises(ValueError, match="size must be a positive int, got 0"):
        trees.bucket(0)
    with pytest.raises(ValueError, match="buckets must be None or a non-empty list of positive ints"):
        trees.bucket(3, [])


def test_sentiment_labels_fine_grained_and_binary():
    tree = trees.parse_tree("(4 (0 a) (1 (2 b) (3 c)))")
    assert trees.sentiment_labels(tree) == tree
    assert trees.sentiment_labels(tree, binary=True) == node(1, leaf(0, "a"), node(0, leaf(None, "b"),
                                                                                   leaf(1, "c")))
    assert trees.sentiment_labels(trees.parse_tree("(2 (4 a) (0 b))"), binary=True).label is None
    with pytest.raises(ValueError, match="the label 5 is not a Stanford Sentiment Treebank class; expected 0..4"):
        trees.sentiment_labels(trees.parse_tree("(3 (5 a) (1 b))"))
