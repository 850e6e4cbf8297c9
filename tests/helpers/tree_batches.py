"""Trees written by hand as nested tuples, their batch arrays in the tree batch format, and node-by-node recursion.

A leaf is its word id (a positive int); an internal node is a tuple of its children, left to right, or `node(*children,
word=w)` for an internal node that carries a word (a dependency tree's head). `tree_batch` numbers the nodes of each
tree in post-order (every child before its parent, the root last) and pads them to N, as the input pipeline does:

    words    [B, N]     the word id of a leaf (or of a node made with `node(..., word=w)`), 0 elsewhere
    children [B, N, K]  each node's children's indices, -1 for an empty slot, for leaves and for padding
    heights  [B, N]     0 for a leaf, 1 + the largest child height for an internal node, -1 for padding
    roots    [B]        the root's index, the last real node

`recursive_states` is the reference the level-wise encoder is held to: it walks one tree's nested structure (not the
arrays) recursively, composing one node at a time.
"""

import numpy as np


class Node(tuple):
    """An internal node that carries a word: a tuple of children with a `word` attribute."""

    word = 0


def node(*children, word=0):
    result = Node(children)
    result.word = word
    return result


def post_order(tree):
    """[(word, [child indices], height)] of every node of `tree`, in post-order."""
    nodes = []

    def visit(t):
        if isinstance(t, tuple):
            kids = [visit(child) for child in t]
            nodes.append((getattr(t, "word", 0), kids, 1 + max(nodes[k][2] for k in kids)))
        else:
            nodes.append((int(t), [], 0))
        return len(nodes) - 1

    visit(tree)
    return nodes


def tree_batch(trees, nodes=None, arity=2):
    """The batch arrays of `trees` padded to `nodes` (default: the largest tree's size): {words, children, heights,
    roots, sizes}, int32."""
    flat = [post_order(tree) for tree in trees]
    size = nodes or max(len(f) for f in flat)
    batch = {
        "words": np.zeros((len(trees), size), "int32"),
        "children": np.full((len(trees), size, arity), -1, "int32"),
        "heights": np.full((len(trees), size), -1, "int32"),
        "roots": np.array([len(f) - 1 for f in flat], "int32"),
        "sizes": np.array([len(f) for f in flat], "int32"),
    }
    for b, f in enumerate(flat):
        assert len(f) <= size, f"tree {b} has {len(f)} nodes, more than N={size}"
        for n, (word, kids, height) in enumerate(f):
            assert len(kids) <= arity, f"node {n} of tree {b} has {len(kids)} children, more than K={arity}"
            batch["words"][b, n], batch["heights"][b, n] = word, height
            batch["children"][b, n, :len(kids)] = kids
    return batch


def recursive_states(tree, x_of, compose, arity, units, states=1):
    """Every node's states, composed one node at a time by recursion over `tree`.

    Args:
        x_of: (word, is_leaf) -> x of that node, [input_dim].
        compose: (x [1, input_dim], children's states [[1, K, units], ...], mask [1, K] bool) -> [[1, units], ...].
        states: how many states the composition has (1 for h, 2 for h and c).

    Returns:
        a list of [size, units] arrays, one per state, the nodes in post-order (the order of `tree_batch`).
    """
    results = []

    def visit(t):
        kids = [visit(child) for child in t] if isinstance(t, tuple) else []
        children = [np.zeros((1, arity, units)) for _ in range(states)]
        for k, kid in enumerate(kids):
            for s in range(states):
                children[s][0, k] = kid[s]
        mask = np.zeros((1, arity), bool)
        mask[0, :len(kids)] = True
        word = getattr(t, "word", 0) if isinstance(t, tuple) else int(t)
        new = [np.asarray(s)[0] for s in compose(x_of(word, not kids)[None], children, mask)]
        results.append(new)
        return new

    visit(tree)
    return [np.stack([r[s] for r in results]) for s in range(states)]
