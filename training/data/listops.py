"""ListOps (Nangia & Bowman 2018, "ListOps: a diagnostic dataset for latent tree learning"), as a seeded generator.

An expression is a nested list operation over the digits 0..9, written in the released data's syntax: an operator
token opens a list, the arguments follow (digits or nested lists), "]" closes it, tokens separated by single spaces:

    [MAX 2 9 [MIN 4 7 ] 0 ]   ->  9

Operators: `[MIN` (smallest argument), `[MAX` (largest), `[MED` (median), `[SM` (sum modulo 10). Every value, of a
list or of the whole expression, is a digit 0..9.

The median of an even number of arguments follows the released generator (`make_data.py` of the ListOps release,
`int(np.median(values))`; read in copies of it kept in forks of nyu-mll/spinn and in the Long Range Arena's listops
generator, google-research/long-range-arena): the mean of the two middle values rounded down, e.g. [MED 2 5 ] = 3
(3.5 rounded down), [MED 1 2 3 4 ] = 2. It is not the lower median (which would give 2 for [MED 2 5 ]).

Trees (`parse`, and the tree of each generated `Example`): a list is an internal node whose first child is a leaf
holding the operator token (word "[MAX", label None: an operator has no value) and whose other children are its
arguments in order; a digit is a leaf (word "7", label 7); every list node's label is its value. So the tree a model
composes over sees the operator as an input like any word, and every node but the operator leaves has a value to
predict: a list of n arguments is a node of n + 1 children (`trees.binarize(tree, how="left")` turns it into the
left-branching binary shape of the paper's trees, ((([MAX 2) 9) 0), less the closing "]" leaf).

Generation (`generate`) follows the released generator: a node is a list with probability `list_p` (0.25 there) and
a digit otherwise, a list has 2..`max_args` arguments (uniform), its operator uniform over the four, a digit uniform
over 0..9. Unlike the release, whose top level is a bare digit three times in four, the top level here is always a
list. Depth is the bracket nesting (`[MAX 2 9 ]` has depth 1, `[MAX 2 [MIN 4 7 ] 0 ]` depth 2): lists deeper than
`max_depth` are never drawn (the release's MAX_DEPTH = 20 is max_depth = 19 here). `min_depth` forces one chain of
lists to that depth (one argument, chosen uniformly, of each list on the chain is a list), so that deep test sets
come without rejecting most draws. Length is the number of tokens (operators, digits and "]"); an expression outside
[`min_length`, `max_length`] is drawn again.
"""

import collections

import numpy as np

from training.data import trees

MIN, MAX, MED, SUM_MOD, END = "[MIN", "[MAX", "[MED", "[SM", "]"
OPERATORS = (MIN, MAX, MED, SUM_MOD)
DIGITS = tuple(str(digit) for digit in range(10))
VOCABULARY = OPERATORS + DIGITS + (END,)  # every token an expression can hold

Example = collections.namedtuple("Example", "expression tree value")
Example.__doc__ = """One ListOps expression: `expression` (the string, e.g. "[MAX 2 9 [MIN 4 7 ] 0 ]"), `tree`
(`trees.Tree` as the module docstring describes: every list and digit node labelled with its value) and `value` (the
value of the whole expression, 0..9: the root's label)."""


def apply(operator, arguments):
    """The value of `operator` (one of OPERATORS) over `arguments` (a non-empty list of digits 0..9)."""
    if operator == MIN:
        return min(arguments)
    if operator == MAX:
        return max(arguments)
    if operator == MED:
        ordered = sorted(arguments)
        middle = len(ordered) // 2
        return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) // 2
    if operator == SUM_MOD:
        return sum(arguments) % 10
    raise ValueError(f"unknown ListOps operator {operator!r}; expected one of {OPERATORS}")


def _fail(expression, position, what):
    raise ValueError(f"ListOps expression {expression!r}, token {position}: {what}")


def evaluate(expression):
    """The value of a ListOps expression, computed from the string alone with a stack of open lists (independent of
    `parse` and of the trees, so that tests can check one against the other). The median is NumPy's, rounded down,
    exactly as the released generator computes it.

    Args:
        expression: tokens separated by whitespace, e.g. "[MAX 2 9 [MIN 4 7 ] 0 ]"; a lone digit is an expression.

    Returns:
        int: 0..9.

    Raises:
        ValueError: a malformed expression (the message names the token position, from 1, and what was expected).
    """
    tokens = expression.split()
    if not tokens:
        _fail(expression, 1, "no tokens; expected an expression like '[MAX 2 9 ]'")
    open_lists = []  # [operator, arguments]
    value = None
    for position, token in enumerate(tokens, start=1):
        if value is not None:
            _fail(expression, position, f"{token!r} after the end of the expression; expected nothing more")
        if token in OPERATORS:
            open_lists.append([token, []])
        elif token in DIGITS or token == END:
            if token == END:
                if not open_lists:
                    _fail(expression, position, "']' closes no list; expected an operator before it")
                operator, arguments = open_lists.pop()
                if not arguments:
                    _fail(expression, position, f"{operator} has no arguments; expected at least one before ']'")
                if operator == MED:
                    result = int(np.median(arguments))
                elif operator == SUM_MOD:
                    result = int(np.sum(arguments)) % 10
                else:
                    result = int({MIN: np.min, MAX: np.max}[operator](arguments))
            else:
                result = int(token)
            if open_lists:
                open_lists[-1][1].append(result)
            else:
                value = result
        else:
            _fail(expression, position, f"unknown token {token!r}; expected one of {VOCABULARY}")
    if open_lists:
        _fail(expression, len(tokens) + 1, f"{len(open_lists)} list(s) never closed; expected {len(open_lists)} "
                                           "more ']'")
    return value


def parse(expression):
    """The tree of a ListOps expression (module docstring), every list and digit node labelled with its value.

    Args:
        expression: as for `evaluate`.

    Returns:
        trees.Tree.

    Raises:
        ValueError: a malformed expression, as for `evaluate`.
    """
    tokens = expression.split()
    if not tokens:
        _fail(expression, 1, "no tokens; expected an expression like '[MAX 2 9 ]'")
    open_lists = []  # [operator, [child trees]]
    root = None
    for position, token in enumerate(tokens, start=1):
        if root is not None:
            _fail(expression, position, f"{token!r} after the end of the expression; expected nothing more")
        if token in OPERATORS:
            open_lists.append([token, []])
            continue
        if token == END:
            if not open_lists:
                _fail(expression, position, "']' closes no list; expected an operator before it")
            operator, arguments = open_lists.pop()
            if not arguments:
                _fail(expression, position, f"{operator} has no arguments; expected at least one before ']'")
            node = _list_node(operator, arguments)
        elif token in DIGITS:
            node = trees.Tree(int(token), token)
        else:
            _fail(expression, position, f"unknown token {token!r}; expected one of {VOCABULARY}")
        if open_lists:
            open_lists[-1][1].append(node)
        else:
            root = node
    if open_lists:
        _fail(expression, len(tokens) + 1, f"{len(open_lists)} list(s) never closed; expected {len(open_lists)} "
                                           "more ']'")
    return root


def _list_node(operator, arguments):
    """The tree node of a list: the operator leaf, then the argument nodes; labelled with the list's value."""
    value = apply(operator, [argument.label for argument in arguments])
    return trees.Tree(value, None, (trees.Tree(None, operator),) + tuple(arguments))


def to_expression(tree):
    """The ListOps string of a tree in this module's form (the inverse of `parse`), e.g. of a subtree."""
    if tree.is_leaf:
        return tree.word
    operator, *arguments = tree.children
    return " ".join([operator.word] + [to_expression(argument) for argument in arguments] + [END])


def token_spans(tree):
    """The first and last token (positions from 0 among the expression's tokens, as `str.split` cuts them) that
    every node of `tree` covers, in post-order.

    `tree` is in this module's form (`parse`), or that form binarised by `trees.binarize` without `inherit_label`:
    a leaf (operator or digit) covers its own token; a labelled internal node is a list, covering its children's
    tokens and its "]" after them; an unlabelled internal node is a node that binarisation added inside a list,
    covering its children's tokens (e.g. in `((([MAX 2) 9) 0)`, the node over "[MAX 2 9": from the operator to the
    last token of its last argument).

    Returns:
        list of (first, last) int pairs, item i for `trees.postorder(tree)[i]`.
    """
    spans = []
    count = 0  # the tokens met so far: post-order meets the leaves, and each list's "]" after its children
    stack = [[tree, 0, None]]  # node, next child to visit, the first token of its first child (once known)
    while stack:
        frame = stack[-1]
        node = frame[0]
        if not node.is_leaf and frame[1] < len(node.children):
            frame[1] += 1
            stack.append([node.children[frame[1] - 1], 0, None])
            continue
        stack.pop()
        if node.is_leaf:
            span = (count, count)
        elif node.label is None:
            span = (frame[2], count - 1)  # its last child ended at the last token met
        else:
            span = (frame[2], count)  # and its "]"
        count += node.is_leaf or node.label is not None
        spans.append(span)
        if stack and stack[-1][2] is None:  # the first child of its parent to finish is the first child
            stack[-1][2] = span[0]
    return spans


def depth(tree):
    """The bracket nesting of a tree in this module's form: 0 for a digit, 1 for a list of digits."""
    if tree.is_leaf:
        return 0
    return 1 + max(depth(argument) for argument in tree.children[1:])


def length(tree):
    """The number of tokens of the tree's expression (operators, digits and "]"): its number of nodes, as each
    operator and digit is a leaf and each "]" closes one list node."""
    return len(trees.postorder(tree))


def _draw(rng, level, need, max_depth, max_args, list_p):
    """A random subtree at bracket level `level` (1 for the top list) that must reach `need` more levels."""
    if need <= 0 and (level > max_depth or rng.random() >= list_p):
        return _digit(rng)
    count = int(rng.integers(2, max_args + 1))
    operator = OPERATORS[int(rng.integers(len(OPERATORS)))]
    forced = int(rng.integers(count)) if need > 1 else -1
    arguments = [_draw(rng, level + 1, need - 1 if i == forced else 0, max_depth, max_args, list_p)
                 for i in range(count)]
    return _list_node(operator, arguments)


def _digit(rng):
    digit = int(rng.integers(10))
    return trees.Tree(digit, DIGITS[digit])


def generate(rng, *, max_depth=10, max_args=5, min_depth=1, min_length=1, max_length=None, list_p=0.25,
             max_draws=10000):
    """One random ListOps expression (module docstring for the distribution).

    Args:
        rng: a `numpy.random.Generator` (the only source of randomness: the same seed gives the same expressions).
        max_depth: the deepest bracket nesting, >= 1.
        max_args: the most arguments of a list, >= 2 (every list has 2..max_args).
        min_depth: the least bracket nesting, 1..max_depth.
        min_length, max_length: the token count's bounds (max_length None: no bound); drawn again outside them.
        list_p: the probability that an argument is a list rather than a digit where `max_depth` still allows a
            list (0.25 in the release), in [0, 1).
        max_draws: how many draws to try before giving up on the length bounds.

    Returns:
        Example.

    Raises:
        ValueError: an argument out of range, or bounds that no draw met in `max_draws` draws.
    """
    for name, value, least in (("max_depth", max_depth, 1), ("max_args", max_args, 2), ("min_depth", min_depth, 1),
                               ("min_length", min_length, 1), ("max_draws", max_draws, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    if min_depth > max_depth:
        raise ValueError(f"min_depth must be <= max_depth, got min_depth={min_depth}, max_depth={max_depth}")
    if not 0 <= list_p < 1:
        raise ValueError(f"list_p must be in [0, 1), got {list_p!r}")
    shortest = 3 * min_depth + 1  # a chain of min_depth lists of two arguments: "[OP d [OP d ... [OP d d ] ... ] ]"
    if max_length is not None and (not isinstance(max_length, (int, np.integer)) or max_length < max(shortest,
                                                                                                      min_length)):
        raise ValueError(f"max_length must be None or an int >= max(min_length, 3 * min_depth + 1) = "
                         f"{max(shortest, min_length)} (the shortest expression of depth {min_depth}), got "
                         f"{max_length!r}")
    for _ in range(max_draws):
        tree = _draw(rng, 1, min_depth, max_depth, max_args, list_p)
        size = length(tree)
        if size >= min_length and (max_length is None or size <= max_length):
            return Example(to_expression(tree), tree, tree.label)
    raise ValueError(f"no expression of {min_length}..{max_length} tokens in {max_draws} draws (max_depth="
                     f"{max_depth}, max_args={max_args}, min_depth={min_depth}, list_p={list_p}); widen the length "
                     "bounds")


def generate_many(rng, count, **kwargs):
    """`count` examples from `generate(rng, **kwargs)`, in order (repeats possible: they are drawn independently)."""
    if not isinstance(count, (int, np.integer)) or isinstance(count, bool) or count < 0:
        raise ValueError(f"count must be a non-negative int, got {count!r}")
    return [generate(rng, **kwargs) for _ in range(count)]
