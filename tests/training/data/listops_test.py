import collections
import itertools

import numpy as np
import pytest

from training.data import listops, trees
from training.data.trees import Tree


def digit(value):
    return Tree(value, str(value))


def test_evaluate_examples():
    assert listops.evaluate("[MAX 2 9 [MIN 4 7 ] 0 ]") == 9  # the paper's example
    assert listops.evaluate("[MIN 4 [MAX 1 2 ] 3 ]") == 2
    assert listops.evaluate("[SM 5 6 7 ]") == 8
    assert listops.evaluate("[SM [SM 9 9 ] [MED 1 8 3 ] 0 ]") == 1
    assert listops.evaluate("[MED 3 1 2 ]") == 2
    # An even count: the mean of the two middle values rounded down, as the released generator's int(np.median(...)).
    assert listops.evaluate("[MED 2 5 ]") == 3
    assert listops.evaluate("[MED 1 2 3 4 ]") == 2
    assert listops.evaluate("[MED 9 0 9 0 ]") == 4
    assert listops.evaluate("7") == 7
    assert listops.evaluate("  [MAX   1\t2 ]\n") == 2


def test_apply_median_matches_the_released_rule_on_every_short_list():
    for count in (1, 2, 3, 4):
        for arguments in itertools.product(range(10), repeat=count):
            assert listops.apply(listops.MED, list(arguments)) == int(np.median(arguments)), arguments
    with pytest.raises(ValueError, match=r"unknown ListOps operator '\[AVG'"):
        listops.apply("[AVG", [1, 2])


@pytest.mark.parametrize("expression,position,what", [
    ("", 1, "no tokens"),
    ("[MAX 2 9 ] 3", 5, "'3' after the end of the expression"),
    ("[MAX 2 ] ]", 4, "']' after the end of the expression"),
    ("] 3", 1, "']' closes no list"),
    ("[MAX ]", 2, "[MAX has no arguments; expected at least one before ']'"),
    ("[MAX 2 12 ]", 3, "unknown token '12'; expected one of"),
    ("[MAX 2 [AVG 1 ] ]", 3, "unknown token '[AVG'"),
    ("[MAX 2 [MIN 1 2 ]", 7, "1 list(s) never closed; expected 1 more ']'"),
])
@pytest.mark.parametrize("function", [listops.evaluate, listops.parse])
def test_malformed_expressions_name_the_token(function, expression, position, what):
    with pytest.raises(ValueError) as error:
        function(expression)
    assert str(error.value).startswith(f"ListOps expression {expression!r}, token {position}: {what}"), error.value


def test_parse_gives_the_tree_with_a_value_on_every_list_and_digit():
    tree = listops.parse("[MAX 2 9 [MIN 4 7 ] 0 ]")
    inner = Tree(4, None, (Tree(None, "[MIN"), digit(4), digit(7)))
    assert tree == Tree(9, None, (Tree(None, "[MAX"), digit(2), digit(9), inner, digit(0)))
    assert listops.to_expression(tree) == "[MAX 2 9 [MIN 4 7 ] 0 ]"
    assert (listops.depth(tree), listops.length(tree)) == (2, 9)
    assert trees.leaves(tree) == "[MAX 2 9 [MIN 4 7 0".split()
    # Left-branching binarisation: the paper's tree shape, the operator first.
    binary = trees.binarize(listops.parse("[MAX 2 9 0 ]"), how="left")
    assert binary == Tree(9, None, (Tree(None, None, (Tree(None, None, (Tree(None, "[MAX"), digit(2))), digit(9))),
                                    digit(0)))


def test_generated_values_agree_with_the_string_evaluator_at_every_node():
    examples = listops.generate_many(np.random.default_rng(0), 300, max_depth=6, max_args=5)
    for example in examples:
        assert example.value == example.tree.label == listops.evaluate(example.expression)
        assert listops.parse(example.expression) == example.tree
        for item in trees.postorder(example.tree):
            if item.word in listops.OPERATORS:
                assert item.label is None
            else:
                assert item.label == listops.evaluate(listops.to_expression(item))


def test_token_spans_of_the_tree_and_of_its_binarised_forms():
    expression = "[MED [SM 1 2 ] 3 [MIN 4 5 ] ]"  # tokens 0..10
    tree = listops.parse(expression)
    assert listops.token_spans(tree) == [(0, 0), (1, 1), (2, 2), (3, 3), (1, 4), (5, 5), (6, 6), (7, 7), (8, 8),
                                         (6, 9), (0, 10)]
    # Left: [SM 1 2 ] is ((SM 1) 2), its inner node "[SM 1" (1, 2); the list's inner nodes "[MED [SM 1 2 ]" (0, 4)
    # and "[MED [SM 1 2 ] 3" (0, 5), from the operator to the last token of the last argument.
    assert listops.token_spans(trees.binarize(tree, how="left")) == [
        (0, 0), (1, 1), (2, 2), (1, 2), (3, 3), (1, 4), (0, 4), (5, 5), (0, 5), (6, 6), (7, 7), (6, 7), (8, 8),
        (6, 9), (0, 10)]
    assert listops.token_spans(trees.binarize(tree, how="right"))[-4:] == [(6, 9), (5, 9), (1, 9), (0, 10)]
    assert listops.token_spans(listops.parse("7")) == [(0, 0)]
    for example in listops.generate_many(np.random.default_rng(1), 200, max_depth=6, max_args=5):
        tokens = example.expression.split()
        spans = listops.token_spans(example.tree)
        assert spans[-1] == (0, len(tokens) - 1)
        for item, (first, last) in zip(trees.postorder(example.tree), spans):
            covered = " ".join(tokens[first:last + 1])
            assert covered == (item.word if item.is_leaf else listops.to_expression(item))
        for how in ("left", "right"):
            binary = trees.binarize(example.tree, how=how)
            for item, (first, last) in zip(trees.postorder(binary), listops.token_spans(binary)):
                # The leaves under a node are its tokens but the "]"s, which lists (labelled nodes) end with.
                assert trees.leaves(item) == [token for token in tokens[first:last + 1] if token != listops.END]
                if not item.is_leaf and item.label is not None:
                    assert tokens[last] == listops.END


def test_generation_is_reproducible_from_the_seed():
    def draw(seed):
        return [e.expression for e in listops.generate_many(np.random.default_rng(seed), 50, max_depth=5)]

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)


def test_depth_argument_and_length_limits_are_respected_and_reached():
    rng = np.random.default_rng(1)
    examples = listops.generate_many(rng, 400, max_depth=4, max_args=3, min_length=8, max_length=30)
    depths = collections.Counter(listops.depth(e.tree) for e in examples)
    assert set(depths) <= {1, 2, 3, 4} and depths[4] > 0
    arguments = {len(n.children) - 1 for e in examples for n in trees.postorder(e.tree) if not n.is_leaf}
    assert arguments == {2, 3}
    lengths = [len(e.expression.split()) for e in examples]
    assert lengths == [listops.length(e.tree) for e in examples]
    assert min(lengths) >= 8 and max(lengths) <= 30
    deep = listops.generate_many(rng, 50, max_depth=12, min_depth=10, max_args=4)
    assert all(10 <= listops.depth(e.tree) <= 12 for e in deep)
    assert all(e.value == listops.evaluate(e.expression) for e in deep)
    # The shortest expression of depth 3 has 3 * 3 + 1 tokens: [OP d [OP d [OP d d ] ] ].
    shortest = listops.generate_many(rng, 20, max_depth=3, min_depth=3, max_length=10)
    assert all(len(e.expression.split()) == 10 and listops.depth(e.tree) == 3 for e in shortest)


def test_values_and_operators_are_not_degenerate():
    examples = listops.generate_many(np.random.default_rng(2), 2000, max_depth=6, max_args=5)
    values = collections.Counter(e.value for e in examples)
    assert set(values) == set(range(10))
    # Ten values: 10% each if uniform; these 2000 draws (seed 2) give 8.9% to 11.9% (the sampling error is about
    # 0.7%), so one value above 20% means the generator (or an operator's rule) has collapsed onto it.
    assert max(values.values()) / len(examples) < 0.2, values
    operators = collections.Counter(e.expression.split()[0] for e in examples)
    assert set(operators) == set(listops.OPERATORS) and min(operators.values()) > 400  # 489..522 here


def test_generate_argument_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="max_args must be an int >= 2, got 1"):
        listops.generate(rng, max_args=1)
    with pytest.raises(ValueError, match="max_depth must be an int >= 1, got 0"):
        listops.generate(rng, max_depth=0)
    with pytest.raises(ValueError, match="min_depth must be <= max_depth, got min_depth=5, max_depth=3"):
        listops.generate(rng, max_depth=3, min_depth=5)
    with pytest.raises(ValueError, match=r"max_length must be None or an int >= .* = 10 \(the shortest expression of "
                                         r"depth 3\), got 9"):
        listops.generate(rng, max_depth=3, min_depth=3, max_length=9)
    with pytest.raises(ValueError, match=r"list_p must be in \[0, 1\), got 1.0"):
        listops.generate(rng, list_p=1.0)
    with pytest.raises(ValueError, match="no expression of 200..210 tokens in 20 draws"):
        listops.generate(rng, max_depth=2, max_args=3, min_length=200, max_length=210, max_draws=20)


def test_listops_trees_encode_in_the_batch_format():
    ids = {token: index + 1 for index, token in enumerate(listops.VOCABULARY)}
    tree = listops.parse("[SM 3 [MIN 4 7 ] ]")
    batch = trees.encode_batch([tree], ids, max_nodes=trees.bucket(listops.length(tree)), max_children=4)
    # Post-order: [SM 0, 3 1, [MIN 2, 4 3, 7 4, (MIN 4 7) 5, root 6, padding 7.
    np.testing.assert_array_equal(batch["words"], [[ids["[SM"], ids["3"], ids["[MIN"], ids["4"], ids["7"], 0, 0, 0]])
    np.testing.assert_array_equal(batch["labels"], [[-1, 3, -1, 4, 7, 4, 7, -1]])
    np.testing.assert_array_equal(batch["children"][0, 5:], [[2, 3, 4, -1], [0, 1, 5, -1], [-1, -1, -1, -1]])
    np.testing.assert_array_equal(batch["heights"], [[0, 0, 0, 0, 0, 1, 2, -1]])
