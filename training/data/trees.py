"""Bracketed trees: the Stanford Sentiment Treebank layout, binarisation, and the padded batch arrays that the tree
layers compose over level by level.

Layout (`parse_tree`, `read_trees`): one tree per line, a node is "(" LABEL CONTENT ")", the label a non-negative
integer on every node, the content either one word (a leaf) or one or more nodes, e.g. the Stanford Sentiment Treebank
(Socher et al. 2013) line

    (3 (2 It) (4 (2 's) (3 fine)))

A word is a run of characters other than whitespace and parentheses (the treebank writes "(" and ")" in its text as
-LRB- and -RRB-). With `labelled=False` nodes carry no label and a word stands bare: "(It ('s fine))" is a root with
the leaf "It" and a node over "'s" and "fine". Whitespace between tokens is free (any amount, none needed next to a
parenthesis).

A malformed tree is a `ValueError` naming the source (the file), the line (from 1), the column (the character position
in the line, from 1) and what was expected, e.g. "'dev.txt', line 7, column 31: unbalanced parentheses: the
line ends with 1 '(' never closed (the innermost at column 1); expected 1 more ')'". The cases: an empty line where a
tree was expected, text before the first "(", an empty node "()", a missing label ("((" in a labelled tree), a label
that is not an integer or is negative, a node with a label but no content, a second word in a leaf, a word among
child nodes, a ")" that closes nothing, a "(" never closed, and text after the tree's last ")".

The batch format (`encode_tree`, `encode_batch`): a batch of B trees, each padded to N nodes (`bucket` picks N) with at
most K children per node, as NumPy int32 arrays:

    words     [B, N]     the token id of a leaf, 0 for internal nodes and padding
    children  [B, N, K]  each node's children's indices (0..N-1, same tree), left to right, -1 past the last child; all
                         -1 for leaves and padding
    heights   [B, N]     0 for a leaf, 1 + the largest of its children's heights for an internal node, -1 for padding
    labels    [B, N]     the node's label, -1 where it has none (None) and for padding
    roots     [B]        the index of each tree's root: its number of nodes less one

Nodes are numbered in post-order (`postorder`): every child before its parent, children left to right, so the root is
the last real node, and padding follows the real nodes. A layer that composes all nodes of height h at once (h = 1,
2, ...) finds every child already computed at a lower height.

Example:
    tree = parse_tree("(3 (2 It) (4 (2 's) (3 fine)))")
    leaves(tree)  # ["It", "'s", "fine"]
    batch = encode_batch([tree], {"It": 4, "'s": 5, "fine": 6}, max_nodes=bucket(5), max_children=2)
    batch["children"][0, :5]  # [[-1, -1], [-1, -1], [-1, -1], [1, 2], [0, 3]]   (N = 8: 3 rows of padding follow)
"""

import collections.abc
import dataclasses
import os
import re

import numpy as np

from training.data import text_files

_INTEGER = re.compile(r"[+-]?[0-9]+")
_MISSING = object()  # a labelled node whose label has not been read yet


@dataclasses.dataclass(frozen=True)
class Tree:
    """One node of a tree and, through `children`, the subtree below it. Immutable (frozen, children a tuple), so that
    trees can be shared, hashed and compared by value.

    A leaf has a `word` and no children; an internal node has no word and one or more children, in order (left to
    right). `label` is a non-negative int (a class, or a value) or None where the node has none.

    Args:
        label: int >= 0, or None.
        word: str (a leaf's word, non-empty, no whitespace or parentheses, so that it prints back as it parses), or
            None for an internal node.
        children: the child nodes (a sequence of `Tree`, stored as a tuple); empty for a leaf.
    """

    label: object = None
    word: object = None
    children: tuple = ()

    def __post_init__(self):
        children = tuple(self.children)
        object.__setattr__(self, "children", children)
        if self.label is not None and (
            not isinstance(self.label, (int, np.integer)) or isinstance(self.label, bool) or self.label < 0
        ):
            raise ValueError(f"a tree label must be a non-negative int or None, got {self.label!r}")
        if self.label is not None:
            object.__setattr__(self, "label", int(self.label))
        if any(not isinstance(child, Tree) for child in children):
            raise ValueError(f"a tree's children must be Tree nodes, got {[type(c).__name__ for c in children]}")
        if self.word is None and not children:
            raise ValueError("a tree node needs a word (a leaf) or children (an internal node), got neither")
        if self.word is not None:
            if children:
                raise ValueError(f"a leaf has a word and no children; got the word {self.word!r} and "
                                 f"{len(children)} children")
            if not isinstance(self.word, str) or not self.word or re.search(r"[\s()]", self.word):
                raise ValueError(f"a leaf's word must be a non-empty str without whitespace or parentheses, got "
                                 f"{self.word!r}")

    @property
    def is_leaf(self):
        """Whether the node is a leaf (has a word, no children)."""
        return self.word is not None

    def __str__(self):
        return format_tree(self)


def format_tree(tree):
    """`tree` in the bracketed layout: "(label word)" for a labelled leaf, "(label child ...)" for a labelled internal
    node; an unlabelled leaf is its bare word and an unlabelled internal node "(child ...)". A fully labelled tree
    reads back with `parse_tree(text)`, a fully unlabelled one with `parse_tree(text, labelled=False)`."""
    parts = []
    stack = [tree]  # Trees still to write, and the strings between them, last first
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            parts.append(item)
        elif item.label is None and item.is_leaf:
            parts.append(item.word)
        else:
            content = [item.word] if item.is_leaf else list(item.children)
            pieces = ["(" if item.label is None else f"({item.label} ", content[0]]
            for element in content[1:]:
                pieces.extend([" ", element])
            pieces.append(")")
            stack.extend(reversed(pieces))
    return "".join(parts)


def _tokens(text):
    """(token, column from 1) for every "(", ")" and word of `text`."""
    tokens = []
    for match in re.finditer(r"[()]|[^\s()]+", text):
        tokens.append((match.group(), match.start() + 1))
    return tokens


def parse_tree(text, *, labelled=True, source="<string>", line=1):
    """The tree written in `text` (one line, in the layout of the module docstring).

    Args:
        text: the bracketed tree, e.g. "(3 (2 It) (4 (2 's) (3 fine)))".
        labelled: True (the treebank layout): every node starts with its integer label; False: no labels, words
            stand bare ("(It ('s fine))").
        source: the name of the file the text comes from, for error messages.
        line: the line number (from 1) of `text` in `source`, for error messages.

    Returns:
        Tree: the root.

    Raises:
        ValueError: the tree is malformed; the message names `source`, `line`, the column (from 1) and what was
            expected.
    """

    def fail(column, what):
        raise ValueError(f"{source!r}, line {line}, column {column}: {what}")

    tokens = _tokens(text)
    if not tokens:
        fail(1, "an empty line; expected a tree, e.g. '(3 (2 It) (4 (2 's) (3 fine)))'")
    # Each open node: [column of its "(", label, word, children].
    stack = []
    root = None
    for token, column in tokens:
        if root is not None:
            if token == ")":
                fail(column, "unbalanced parentheses: this ')' closes nothing (the tree ended before it); expected the "
                             "end of the line")
            fail(column, f"trailing text {token!r} after the tree's last ')'; expected one tree per line")
        if token == "(":
            if stack:
                parent = stack[-1]
                if parent[1] is _MISSING:
                    fail(column, f"a missing label: the node opened at column {parent[0]} has '(' where its label "
                                 "should be; expected an integer label after '(', e.g. '(2 word)'")
                if parent[2] is not None:
                    fail(column, f"a child node after the word {parent[2]!r} in the leaf opened at column "
                                 f"{parent[0]}; expected ')': a leaf holds one word and no child nodes")
            stack.append([column, _MISSING if labelled else None, None, []])
        elif token == ")":
            if not stack:
                fail(column, "unbalanced parentheses: this ')' closes nothing; expected '(' first")
            opened, label, word, children = stack.pop()
            if label is _MISSING:
                fail(opened, "an empty node '()'; expected a label and a word or child nodes, e.g. '(2 word)'")
            if word is None and not children:
                if labelled:
                    fail(opened, f"the node labelled {label} has no content; expected a word or child nodes before "
                                 f"the ')' at column {column}")
                fail(opened, "an empty node '()'; expected words or child nodes")
            node = Tree(label, word, children)
            if stack:
                stack[-1][3].append(node)
            else:
                root = node
        else:
            if not stack:
                fail(column, f"{token!r} outside the tree; expected '(' first")
            node = stack[-1]
            if node[1] is _MISSING:
                if not _INTEGER.fullmatch(token):
                    fail(column, f"the label {token!r} is not an integer; expected an integer label after '(', "
                                 "e.g. '(2 word)'")
                if int(token) < 0:
                    fail(column, f"the label {token} is negative; expected a non-negative integer")
                node[1] = int(token)
            elif not labelled:
                node[3].append(Tree(None, token, ()))
            elif node[3]:
                fail(column, f"the word {token!r} among the child nodes of the node opened at column {node[0]}; "
                             "expected '(' or ')': a node holds one word (a leaf) or child nodes, not both")
            elif node[2] is not None:
                fail(column, f"a second word {token!r} in the leaf opened at column {node[0]} (after "
                             f"{node[2]!r}); expected ')': a leaf holds one word")
            else:
                node[2] = token
    if stack:
        fail(len(text) + 1, f"unbalanced parentheses: the line ends with {len(stack)} '(' never closed (the "
                            f"innermost at column {stack[-1][0]}); expected {len(stack)} more ')'")
    return root


def read_trees(path, *, labelled=True):
    """Every tree of the UTF-8 file at `path`, one per line, blank lines (empty or whitespace only) skipped.

    Args:
        path: a file path (str or os.PathLike), read through `training.data.text_files.read_lines`.
        labelled: see `parse_tree`.

    Returns:
        list of Tree, in file order.

    Raises:
        FileNotFoundError (or another OSError): the file cannot be opened.
        ValueError: a byte is not UTF-8, or a tree is malformed (the message names the file, line and column).
    """
    source = os.fspath(path)
    trees = []
    for number, text in enumerate(text_files.read_lines(path), start=1):
        if text.strip():
            trees.append(parse_tree(text, labelled=labelled, source=source, line=number))
    return trees


def postorder(tree):
    """The nodes of `tree` in post-order (children left to right, each before its parent; the root last).

    Iterative, so that deep trees (left- or right-branching chains of hundreds of nodes) do not hit Python's
    recursion limit.

    Returns:
        list of Tree: item i is the node numbered i in the batch format.
    """
    return [node for node, _ in _numbered(tree)]


def _numbered(tree):
    """(node, [indices of its children in the returned list]) for every node of `tree`, in post-order."""
    order = []
    stack = [[tree, 0, []]]  # node, next child to visit, indices of the children visited
    while stack:
        frame = stack[-1]
        node, next_child, _ = frame
        if next_child < len(node.children):
            frame[1] += 1
            stack.append([node.children[next_child], 0, []])
        else:
            stack.pop()
            order.append((node, frame[2]))
            if stack:
                stack[-1][2].append(len(order) - 1)
    return order


def heights(tree):
    """The height of every node of `tree`, in post-order: 0 for a leaf, 1 + the largest child height otherwise.

    Returns:
        list of int, item i the height of `postorder(tree)[i]`; the last is the tree's height.
    """
    result = []
    for node, child_indices in _numbered(tree):
        result.append(1 + max(result[i] for i in child_indices) if child_indices else 0)
    return result


def leaves(tree):
    """The words of the leaves of `tree`, left to right (the sentence, for a treebank tree)."""
    return [node.word for node in postorder(tree) if node.is_leaf]


def leaf_spans(tree):
    """The first and last leaf under every node of `tree`, in post-order: leaves numbered from 0, left to right.

    Returns:
        list of (first, last) int pairs, item i for `postorder(tree)[i]`: (j, j) for the leaf j, and for an internal
        node its first child's first and its last child's last, so that `leaves(tree)[first:last + 1]` are its
        words.
    """
    spans = []
    count = 0  # the leaves met so far: post-order meets them left to right
    for node, child_indices in _numbered(tree):
        if node.is_leaf:
            spans.append((count, count))
            count += 1
        else:
            spans.append((spans[child_indices[0]][0], spans[child_indices[-1]][1]))
    return spans


def binarize(tree, how="right", *, collapse_unary=False, inherit_label=False):
    """`tree` with every node of more than two children replaced by a chain of binary nodes.

    A node with children c1 ... cn (n > 2) becomes, with `how="right"` (right-branching),
    (c1 (c2 (... (cn-1 cn)))), and with `how="left"` (left-branching), (((c1 c2) c3) ... cn); the outermost node of
    the chain keeps the node's label, the n - 2 new nodes inside it get None (no label: the loss skips them) or, with
    `inherit_label=True`, the node's label too. Left-branching over "[MAX 2 9 0" is the shape of the ListOps trees of
    Nangia & Bowman (2018), where the operator comes first and each new node takes one more argument.

    Unary nodes (one child) are kept as they are by default (K = 2 holds them: one child index, then -1). With
    `collapse_unary=True` a chain of unary nodes is replaced by its lowest node's content (word or children) under the
    chain's top label (for the root, the sentence's label), so that every internal node has exactly two children.

    Leaves, their order and the labels of the original nodes are kept. Nodes of two children and leaves are unchanged.

    Args:
        tree: a Tree.
        how: "right" or "left".
        collapse_unary: see above.
        inherit_label: see above.

    Returns:
        Tree: the binary tree.
    """
    if how not in ("right", "left"):
        raise ValueError(f"how must be 'right' or 'left', got {how!r}")
    done = {}  # id(original node) -> binarised node, filled in post-order
    for node in postorder(tree):
        if node.is_leaf:
            done[id(node)] = node
            continue
        children = [done[id(child)] for child in node.children]
        if len(children) == 1:
            child = children[0]
            done[id(node)] = Tree(node.label, child.word, child.children) if collapse_unary else Tree(
                node.label, None, children)
            continue
        inner = node.label if inherit_label else None
        if how == "right":
            chain = children[-1]
            for child in reversed(children[1:-1]):
                chain = Tree(inner, None, (child, chain))
            done[id(node)] = Tree(node.label, None, (children[0], chain))
        else:
            chain = children[0]
            for child in children[1:-1]:
                chain = Tree(inner, None, (chain, child))
            done[id(node)] = Tree(node.label, None, (chain, children[-1]))
    return done[id(tree)]


def bucket(size, buckets=None):
    """The padded size for `size` nodes: the smallest of `buckets` that holds it, or with `buckets=None` the smallest
    power of two >= size, so that batches take a few static shapes (one XLA compilation each) rather than one per
    tree size.

    Args:
        size: int >= 1 (e.g. a tree's number of nodes, or the largest in a batch).
        buckets: None, or a list of ints >= 1 (any order).

    Returns:
        int.

    Raises:
        ValueError: `size` is not a positive int, `buckets` is malformed, or `size` exceeds every bucket.
    """
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < 1:
        raise ValueError(f"size must be a positive int, got {size!r}")
    if buckets is None:
        return 1 << (int(size) - 1).bit_length()
    buckets = list(buckets)
    if not buckets or any(not isinstance(b, (int, np.integer)) or isinstance(b, bool) or b < 1 for b in buckets):
        raise ValueError(f"buckets must be None or a non-empty list of positive ints, got {buckets!r}")
    fitting = [b for b in buckets if b >= size]
    if not fitting:
        raise ValueError(f"size {size} exceeds the largest bucket {max(buckets)}; expected size <= {max(buckets)}, or "
                         f"add a larger bucket")
    return int(min(fitting))


def _token_id(word, token_ids, unknown_id, index):
    if callable(token_ids) and not isinstance(token_ids, collections.abc.Mapping):
        token = token_ids(word)
    elif word in token_ids:
        token = token_ids[word]
    elif unknown_id is not None:
        token = unknown_id
    else:
        raise ValueError(f"tree {index}: the word {word!r} has no id in token_ids and no unknown_id was given; "
                         "expected every leaf word in token_ids, or an unknown_id")
    if not isinstance(token, (int, np.integer)) or isinstance(token, bool) or token < 0:
        raise ValueError(f"tree {index}: the id of the word {word!r} must be a non-negative int, got {token!r}")
    return int(token)


def encode_tree(tree, token_ids, max_nodes, max_children, *, unknown_id=None, index=0):
    """One tree in the batch format, without the batch axis (see the module docstring).

    Args:
        tree: a Tree.
        token_ids: a mapping word -> id (ids >= 0; 0 is what internal nodes and padding hold, so a vocabulary with
            `<pad>` at 0 keeps leaves apart from them), or a callable word -> id.
        max_nodes: N, the padded node count (>= the tree's node count; see `bucket`).
        max_children: K, the most children a node may have (2 for binary trees).
        unknown_id: the id of a word missing from a `token_ids` mapping; None to make that an error.
        index: the tree's position in its batch, for error messages.

    Returns:
        dict of NumPy int32 arrays: words [N], children [N, K], heights [N], labels [N], roots [] (a scalar).

    Raises:
        ValueError: the tree has more than `max_nodes` nodes, a node more than `max_children` children, or a word has
            no id.
    """
    _check_positive(max_nodes, "max_nodes")
    _check_positive(max_children, "max_children")
    numbered = _numbered(tree)
    if len(numbered) > max_nodes:
        raise ValueError(f"tree {index} has {len(numbered)} nodes, more than max_nodes={max_nodes}; expected "
                         f"max_nodes >= {len(numbered)} (see bucket())")
    words = np.zeros([max_nodes], np.int32)
    children = np.full([max_nodes, max_children], -1, np.int32)
    node_heights = np.full([max_nodes], -1, np.int32)
    labels = np.full([max_nodes], -1, np.int32)
    for position, (node, child_indices) in enumerate(numbered):
        if len(child_indices) > max_children:
            raise ValueError(f"tree {index}: node {position} (post-order) has {len(child_indices)} children, more "
                             f"than max_children={max_children}; binarize the tree or raise max_children")
        if node.is_leaf:
            words[position] = _token_id(node.word, token_ids, unknown_id, index)
            node_heights[position] = 0
        else:
            children[position, : len(child_indices)] = child_indices
            node_heights[position] = 1 + max(node_heights[i] for i in child_indices)
        if node.label is not None:
            labels[position] = node.label
    return {"words": words, "children": children, "heights": node_heights, "labels": labels,
            "roots": np.int32(len(numbered) - 1)}


def encode_batch(trees, token_ids, max_nodes, max_children, *, unknown_id=None):
    """A batch of trees in the batch format of the module docstring.

    Args:
        trees: a non-empty sequence of Tree.
        token_ids, max_nodes, max_children, unknown_id: see `encode_tree`. Pick `max_nodes` for a batch with
            `bucket(max(len(postorder(t)) for t in trees))`.

    Returns:
        dict of NumPy int32 arrays: words [B, N], children [B, N, K], heights [B, N], labels [B, N], roots [B].

    Raises:
        ValueError: no trees, or a tree that does not fit (the message names the tree's index in `trees`).
    """
    trees = list(trees)
    if not trees:
        raise ValueError("trees must hold at least one tree, got none")
    encoded = [encode_tree(tree, token_ids, max_nodes, max_children, unknown_id=unknown_id, index=index)
               for index, tree in enumerate(trees)]
    return {key: np.stack([item[key] for item in encoded]) for key in encoded[0]}


def _check_positive(value, name):
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def sentiment_labels(tree, binary=False):
    """`tree` with its labels as the Stanford Sentiment Treebank tasks use them.

    Fine-grained (`binary=False`): the five classes 0..4 (very negative, negative, neutral, positive, very positive)
    as they are, checked. Binary (`binary=True`, the setting of Tai et al. 2015 and Socher et al. 2013): 0 and 1 ->
    0 (negative), 3 and 4 -> 1 (positive), and neutral (2) nodes lose their label (None: -1 in the batch, skipped by
    the loss). A sentence whose root is neutral has no binary label (its root label is None); the binary task leaves
    such sentences out (6920 / 872 / 1821 sentences remain of 8544 / 1101 / 2210).

    Args:
        tree: a Tree with every label in 0..4 or None (None stays None).
        binary: see above.

    Returns:
        Tree: a new tree of the same shape and words.

    Raises:
        ValueError: a label outside 0..4.
    """
    mapping = {0: 0, 1: 0, 2: None, 3: 1, 4: 1} if binary else {c: c for c in range(5)}
    done = {}
    for node in postorder(tree):
        if node.label is not None and node.label not in mapping:
            raise ValueError(f"the label {node.label} is not a Stanford Sentiment Treebank class; expected 0..4 (at "
                             f"the node {format_tree(node)[:60]!r})")
        label = None if node.label is None else mapping[node.label]
        done[id(node)] = Tree(label, node.word, tuple(done[id(child)] for child in node.children))
    return done[id(tree)]
