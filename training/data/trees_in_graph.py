"""Bracketed trees and ListOps expressions parsed inside the TensorFlow graph, into the batch format of
`training.data.trees`, so that a tree model's SavedModel can take the tree as a string.

`parse_bracketed(strings, table, max_nodes, max_children, labelled=..., spans=...)` reads the layout of
`trees.parse_tree` (the Stanford Sentiment Treebank's "(3 (2 It) (4 (2 's) (3 fine)))", or unlabelled
"(It ('s fine))") and `parse_listops(strings, table, max_nodes, max_children, binarize=..., spans=...)` the ListOps
syntax of `training.data.listops` ("[MAX 2 9 [MIN 4 7 ] 0 ]"), as its n-ary tree or binarised ("left" or "right");
both return the dict of int32 tensors that `trees.encode_batch` returns for the same trees (words [B, N], children
[B, N, K], heights [B, N], labels [B, N], roots [B]), with the static shapes [None, N(, K)], so that the tree layers
and XLA see the shapes they were built for. With `spans=True` two more [B, N] tensors, "starts" and "ends", give
the part of the string each node covers (-1 for padding): its first and last leaf in a bracketed tree (as
`trees.leaf_spans`), its first and last token in a ListOps expression (as `listops.token_spans`), so that a client
can show what each node's label or prediction is about.

How: the string is cut into tokens with TensorFlow string ops (parentheses spaced out by `tf.strings.regex_replace`,
then `tf.strings.split` on whitespace), the words looked up in a `tf.lookup` table (unknown words get its default
value: give it the vocabulary's out-of-vocabulary id), then one `tf.while_loop` over the token positions runs the
parser of `trees.parse_tree` on every row of the batch at once: a stack of open nodes per row, kept in fixed-size
tensors [B, N(, K)] (an open node's label, word, children so far and their largest height), a node numbered when it
closes (a leaf when its word is read, in unlabelled trees), which is post-order. Only TensorFlow core ops are used
(no `py_function`, no TensorFlow Text), so an export using them loads in stock TF Serving. String ops have no XLA
kernels: the parse runs outside any `jit_compile=True` function, and the model after it can be compiled. Cost: one
loop step per token of the batch's longest string (with `binarize="right"`, one more per node the binarisation
adds), each step O(B N K) element-wise work.

ListOps: an operator token ("[MAX") opens a list node and is that node's first child, a leaf (label -1, as
`listops.parse` gives it None); a digit is a leaf labelled with its value; "]" closes the list, whose label is its
value (MIN, MAX, SM, and MED as the released generator rounds it), computed in the graph when it closes from the
counts of its arguments' values (each a digit) kept with the open list. A lone digit is a tree of one leaf, as in
`listops.parse`. Binarised as `trees.binarize(listops.parse(e), how=...)` does it, in the same pass (the new nodes
unlabelled, -1; the list's value on its outermost node): with "left", (((OP a1) a2) ... am), when a node is numbered
as the second child of an open node and the next token does not close that node, the two children become those of
a new node numbered next (the token after is a gather: all tokens are known up front); with "right",
(OP (a1 (a2 ... (am-1 am)))), when a node is numbered while its parent has a child already and the next token does
not close the parent, a new open node is pushed to hold it, and the list's "]" closes those new nodes, innermost
first, before the list itself. With `binarize`, K = 2 suffices, and N must count the new nodes (one for each argument
of a list but its last).

Differences from the Python reader: words are separated by ASCII whitespace (`tf.strings.split`), where Python's
also splits at other Unicode spaces; a label must fit in int32 (at most nine digits after leading zeros).

A malformed string is a `tf.errors.InvalidArgumentError` raised when the parse runs (a `tf.debugging.Assert`), whose
message names the first bad row of the batch (from 0), the token (its position from 1, parentheses counted as
tokens, and its text) and the problem, e.g. "parse_bracketed: row 2, token 1 `)`: unbalanced parentheses: a `)` that
closes nothing; expected `(` first. The string: `)(2 a)`" (backticks: in a graph the Assert op escapes quotes). The
problems are those of `trees.parse_tree` (empty string, text before the first "(", empty node, missing, non-integer
or negative label, a node without content, a second word in a leaf, a word among child nodes, a ")" that closes
nothing, a "(" never closed, text after the tree), plus what the padding cannot hold (more than `max_nodes` nodes, a
node of more than `max_children` children), a negative word id, and for ListOps an unknown token or a list without
arguments. No garbage comes out: the outputs depend on the assertion. Through TF Serving the error is the request's
INVALID_ARGUMENT, with the same message.

Example:
    table = tf.lookup.StaticHashTable(tf.lookup.KeyValueTensorInitializer(["It", "'s", "fine"], [4, 5, 6]), 1)
    batch = parse_bracketed(tf.constant(["(3 (2 It) (4 (2 's) (3 fine)))"]), table, 8, 2, labelled=True)
    batch["children"][0, :5]  # [[-1, -1], [-1, -1], [-1, -1], [1, 2], [0, 3]], as trees.encode_batch gives
"""

import numpy as np
import tensorflow as tf

from training.data import listops

# Token kinds: 0 is the padding past a row's last token.
_PAD, _OPEN, _CLOSE, _WORD = 0, 1, 2, 3
_MISSING = -2  # the label of an open labelled node whose label has not been read yet

# Error codes (0: none) and their messages ({n} and {k} become max_nodes and max_children; _UNCLOSED gets the number
# of open nodes appended).
_EMPTY, _OUTSIDE, _TRAILING, _CLOSES_NOTHING, _UNCLOSED, _EMPTY_NODE, _MISSING_LABEL, _BAD_LABEL, _NEGATIVE_LABEL, \
    _NO_CONTENT, _SECOND_WORD, _WORD_AMONG_CHILDREN, _CHILD_AFTER_WORD, _TOO_MANY_NODES, _TOO_MANY_CHILDREN, \
    _NEGATIVE_ID, _UNKNOWN_TOKEN, _NO_ARGUMENTS = range(1, 19)
# The messages are printed by the graph's Assert, which escapes quotes (\'): they quote with backticks, and have no
# apostrophes.
_MESSAGES = {
    _EMPTY: "an empty string; expected a tree, e.g. `(3 (2 It) (3 fine))`",
    _OUTSIDE: "a word outside the tree; expected `(` first",
    _TRAILING: "text after the last `)` of the tree; expected one tree per string",
    _CLOSES_NOTHING: "unbalanced parentheses: a `)` that closes nothing; expected `(` first",
    _UNCLOSED: "unbalanced parentheses: the string ends with `(` never closed; expected one more `)` for each",
    _EMPTY_NODE: "an empty node `()`; expected (after its label, in a labelled tree) a word or child nodes",
    _MISSING_LABEL: "a missing label: `(` where the label of the open node should be; expected an integer label "
                    "after `(`, e.g. `(2 word)`",
    _BAD_LABEL: "a label that is not an integer of at most nine digits; expected an integer label after `(`, e.g. "
                "`(2 word)`",
    _NEGATIVE_LABEL: "a negative label; expected a non-negative integer",
    _NO_CONTENT: "a labelled node with no content; expected a word or child nodes before this `)`",
    _SECOND_WORD: "a second word in a leaf; expected `)`: a leaf holds one word",
    _WORD_AMONG_CHILDREN: "a word among child nodes; expected `(` or `)`: a node holds one word (a leaf) or child "
                          "nodes, not both",
    _CHILD_AFTER_WORD: "a child node after the word of a leaf; expected `)`: a leaf holds one word and no child nodes",
    _TOO_MANY_NODES: "more nodes than max_nodes={n}; expected at most {n} nodes (raise max_nodes: see trees.bucket)",
    _TOO_MANY_CHILDREN: "a node of more than max_children={k} children; expected at most {k} (binarize the trees or "
                        "raise max_children)",
    _NEGATIVE_ID: "a word whose id is negative; expected ids >= 0 (give the lookup table the out-of-vocabulary id as "
                  "its default value)",
    _UNKNOWN_TOKEN: "an unknown token; expected one of " + " ".join(listops.VOCABULARY),
    _NO_ARGUMENTS: "a list with no arguments; expected at least one before `]`",
}
# The words of ListOps for the problems its syntax names differently (`[OP` opens a list, `]` closes it).
_LISTOPS_MESSAGES = dict(_MESSAGES)
_LISTOPS_MESSAGES.update({
    _EMPTY: "no tokens; expected an expression like `[MAX 2 9 ]`",
    _TRAILING: "a token after the end of the expression; expected nothing more",
    _CLOSES_NOTHING: "`]` closes no list; expected an operator before it",
    _UNCLOSED: "a list never closed; expected one more `]` for each",
})
_OPERATOR_CODES = {operator: code for code, operator in enumerate(listops.OPERATORS)}  # MIN 0, MAX 1, MED 2, SM 3


def parse_bracketed(strings, token_table_or_fn, max_nodes, max_children, labelled=False, spans=False):
    """Parses a batch of bracketed trees in the graph (module docstring) into the batch format.

    Args:
        strings: a tf.string tensor [B] (B may be 0 or unknown), one tree per string in the layout of
            `trees.parse_tree`.
        token_table_or_fn: a `tf.lookup` table (e.g. `Vocabulary.lookup_table`, or a `StaticHashTable` whose default
            value is the out-of-vocabulary id) or a callable: tf.string tensor -> integer tensor of the same shape,
            mapping a leaf's word to its id (ids must be >= 0).
        max_nodes: N, the padded node count (a positive int).
        max_children: K, the most children a node may have (a positive int; 2 for binary trees).
        labelled: True for the treebank layout (every node starts with its integer label), False for unlabelled
            trees (bare words, labels all -1).
        spans: whether to add "starts" and "ends" [B, N]: the first and last leaf (from 0, left to right) under each
            node, as `trees.leaf_spans` gives them; -1 for padding.

    Returns:
        dict of int32 tensors, equal to `trees.encode_batch` on the same trees: words [B, N], children [B, N, K],
        heights [B, N], labels [B, N], roots [B] (and starts, ends [B, N] with `spans=True`).

    Raises:
        ValueError or TypeError: a bad argument (not a tensor of strings of rank 1, max_nodes or max_children not a
            positive int, a table that is neither a lookup table nor callable).
        tf.errors.InvalidArgumentError: when run, a malformed string (module docstring).
    """
    strings = _check_arguments(strings, token_table_or_fn, max_nodes, max_children, "parse_bracketed")
    tokens = tf.strings.split(tf.strings.regex_replace(strings, r"([()])", r" \1 "))
    dense = tokens.to_tensor(default_value="")
    in_row = tf.sequence_mask(tokens.row_lengths(), tf.shape(dense)[1])
    kinds = tf.where(in_row, tf.where(dense == "(", _OPEN, tf.where(dense == ")", _CLOSE, _WORD)), _PAD)
    positions = tf.broadcast_to(tf.range(1, tf.shape(dense)[1] + 1), tf.shape(dense))
    label_values, label_codes = _labels(dense)
    no_error = tf.zeros(tf.shape(strings), tf.int32)
    return _parse(strings, dense, kinds, positions, dense, _lookup(token_table_or_fn, dense),
                  tf.fill(tf.shape(dense), -1), tf.fill(tf.shape(dense), -1), label_values, label_codes,
                  no_error, no_error, max_nodes, max_children, labelled=bool(labelled), listops_mode=False,
                  binarize=None, spans=bool(spans), name="parse_bracketed")


def parse_listops(strings, token_table_or_fn, max_nodes, max_children, binarize=None, spans=False):
    """Parses a batch of ListOps expressions in the graph into the batch format of `listops.parse`'s trees.

    Args:
        strings: a tf.string tensor [B], one expression per string ("[MAX 2 9 [MIN 4 7 ] 0 ]", tokens separated by
            whitespace, as `listops.parse` reads them).
        token_table_or_fn: as for `parse_bracketed`: maps the operator and digit tokens to their ids.
        max_nodes: N, the padded node count: the expression's number of operators and digits, at least (with
            `binarize`, plus one node for each argument of a list but its last).
        max_children: K: 1 + the most arguments of a list, at least (with `binarize`, at least 2).
        binarize: None for the n-ary tree of `listops.parse`; "left" for `trees.binarize(tree, how="left")` of it,
            (((OP a1) a2) ... am), the shape the binary tree models train on; "right" for `how="right"`,
            (OP (a1 (a2 ... (am-1 am)))). The new (inner) nodes are unlabelled (-1), the list's value is on its
            outermost node.
        spans: whether to add "starts" and "ends" [B, N]: the first and last token (from 0, among the expression's
            whitespace-separated tokens) that each node covers, as `listops.token_spans` gives them: a digit or
            operator leaf its own token, a list from its operator to its "]", an inner node of a binarised list
            from its first token (with "left", the operator) to the last token of its last argument; -1 for
            padding.

    Returns:
        dict of int32 tensors, equal to `trees.encode_batch` on `listops.parse(expression)` (binarised as asked) of
        every string: words, children, heights, labels (every list's value, computed in the graph; -1 for the
        operator leaves and inner nodes), roots (and starts, ends with `spans=True`).

    Raises:
        As `parse_bracketed`; also ValueError for a `binarize` other than None, "left" or "right" (or a binarised
        tree with max_children < 2); when run, also an unknown token or a list without arguments.
    """
    strings = _check_arguments(strings, token_table_or_fn, max_nodes, max_children, "parse_listops")
    if binarize not in (None, "left", "right"):
        raise ValueError(f"parse_listops: binarize must be None (the n-ary tree), 'left' or 'right' (as "
                         f"trees.binarize(tree, how=...)), got {binarize!r}")
    if binarize is not None and max_children < 2:
        raise ValueError(f"parse_listops: max_children must be >= 2 for a binarised tree, got {max_children}")
    source = tf.strings.split(strings)
    source_dense = source.to_tensor(default_value="")
    source_in_row = tf.sequence_mask(source.row_lengths(), tf.shape(source_dense)[1])
    # Unknown tokens are found before the parse, in the expression's own tokens (position from 1).
    known = tf.reduce_any(source_dense[..., None] == tf.constant(listops.VOCABULARY), axis=-1)
    unknown = source_in_row & ~known
    width = tf.shape(source_dense)[1]
    first_unknown = tf.reduce_min(tf.where(unknown, tf.range(width)[None, :], width), axis=1)  # (argmax fails at 0)
    has_unknown = tf.reduce_any(unknown, axis=1)
    initial_errors = tf.where(has_unknown, _UNKNOWN_TOKEN, 0)
    initial_positions = tf.where(has_unknown, first_unknown + 1, 0)
    # The bracketed form: "[MAX" -> "( [MAX" (a list node whose first child is the operator leaf), "]" -> ")".
    is_operator = tf.reduce_any(source_dense[..., None] == tf.constant(listops.OPERATORS), axis=-1)
    rewritten = tf.where(is_operator, "( " + source_dense, tf.where(source_dense == listops.END, ")", source_dense))
    rewritten = tf.strings.reduce_join(tf.where(source_in_row, rewritten, ""), axis=1, separator=" ")
    tokens = tf.strings.split(rewritten)
    dense = tokens.to_tensor(default_value="")
    in_row = tf.sequence_mask(tokens.row_lengths(), tf.shape(dense)[1])
    kinds = tf.where(in_row, tf.where(dense == "(", _OPEN, tf.where(dense == ")", _CLOSE, _WORD)), _PAD)
    # The position of each token in the expression: a "(" stands for the operator after it.
    opens = tf.cast(dense == "(", tf.int32)
    positions = tf.range(tf.shape(dense)[1])[None, :] - tf.cumsum(opens, axis=1) + opens + 1
    is_digit = tf.strings.regex_full_match(dense, "[0-9]")
    leaf_labels = tf.where(is_digit, tf.strings.to_number(tf.where(is_digit, dense, "0"), tf.int32), -1)
    operator_codes = tf.fill(tf.shape(dense), -1)
    for operator, code in _OPERATOR_CODES.items():
        operator_codes = tf.where(dense == operator, code, operator_codes)
    zeros = tf.zeros(tf.shape(dense), tf.int32)
    return _parse(strings, dense, kinds, positions, source_dense, _lookup(token_table_or_fn, dense), leaf_labels,
                  operator_codes, zeros, zeros, initial_errors, initial_positions, max_nodes, max_children,
                  labelled=False, listops_mode=True, binarize=binarize, spans=bool(spans),
                  name="parse_listops")


def _check_arguments(strings, token_table_or_fn, max_nodes, max_children, name):
    for argument, value in (("max_nodes", max_nodes), ("max_children", max_children)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name}: {argument} must be a positive int, got {value!r}")
    if not (hasattr(token_table_or_fn, "lookup") or callable(token_table_or_fn)):
        raise TypeError(f"{name}: token_table_or_fn must be a tf.lookup table or a callable strings -> ids, got "
                        f"{type(token_table_or_fn).__name__}")
    strings = tf.convert_to_tensor(strings, dtype_hint=tf.string)  # an empty Python list is an empty batch
    if strings.dtype != tf.string or strings.shape.rank not in (None, 1):
        raise ValueError(f"{name}: strings must be a tf.string tensor of rank 1 [batch], got {strings.dtype.name} of "
                         f"shape {strings.shape}")
    return strings


def _lookup(token_table_or_fn, tokens):
    """The int32 id of every token (parentheses and padding too: those ids are never used)."""
    if hasattr(token_table_or_fn, "lookup"):
        ids = token_table_or_fn.lookup(tokens)
    else:
        ids = token_table_or_fn(tokens)
    return tf.cast(ids, tf.int32)


def _labels(tokens):
    """Every token read as a label: (value, 0 or the error code of a token that is not a valid label)."""
    integer = tf.strings.regex_full_match(tokens, r"[+-]?0*[0-9]{1,9}")
    negative = tf.strings.regex_full_match(tokens, r"-0*[1-9][0-9]*")
    digits = tf.strings.regex_replace(tokens, r"^[+-]", "")
    values = tf.strings.to_number(tf.where(integer & ~negative, digits, "0"), tf.int32)
    codes = tf.where(negative, _NEGATIVE_LABEL, tf.where(integer, 0, _BAD_LABEL))
    return values, codes


def _first(checks):
    """The code of the first true condition of `checks` ([(bool [B], code or int [B])]), 0 where none is."""
    code = 0
    for condition, value in reversed(checks):
        code = tf.where(condition, value, code)
    return code


def _set(array, mask, value):
    """`array` [B, N] (or [B, N, K]) with its entries (rows) where `mask` [B, N] holds set to `value` [B] (or
    [B, K])."""
    if array.shape.rank == 3:
        return tf.where(mask[:, :, None], value[:, None, :], array)
    return tf.where(mask, value[:, None], array)


def _listops_values(histogram, operator):
    """The value of each list node about to close: histogram [B, 10] counts its arguments' values (digits 0..9),
    operator [B] its code (_OPERATOR_CODES). Kept as counts, the arguments need no room per argument, so a list may
    have any number of them (its node has at most two children once binarised)."""
    values = tf.range(10)[None, :]
    present = histogram > 0
    arguments = tf.reduce_sum(histogram, axis=1)
    smallest = tf.reduce_min(tf.where(present, values, 99), axis=1)
    largest = tf.reduce_max(tf.where(present, values, -1), axis=1)
    total = tf.math.floormod(tf.reduce_sum(histogram * values, axis=1), 10)
    below = tf.cumsum(histogram, axis=1)  # below[v]: the number of arguments <= v

    def at(rank):  # the argument of this rank (from 0) in ascending order: the smallest v with below[v] > rank
        return tf.reduce_sum(tf.cast(below <= rank[:, None], tf.int32), axis=1)

    middle = arguments // 2
    upper, lower = at(middle), at(tf.maximum(middle - 1, 0))
    median = tf.where(arguments % 2 == 1, upper, (lower + upper) // 2)  # the mean of the middle two, rounded down
    by_operator = tf.stack([smallest, largest, median, total], axis=1)  # in the order of _OPERATOR_CODES
    return tf.gather(by_operator, tf.clip_by_value(operator, 0, 3), batch_dims=1)


def _parse(strings, tokens, kinds, positions, source_tokens, ids, leaf_labels, operator_codes, label_values,
           label_codes, initial_errors, initial_positions, max_nodes, max_children, *, labelled, listops_mode,
           binarize, spans, name):
    """The parser shared by both syntaxes: one tf.while_loop over token positions, every row at once.

    Args:
        strings: tf.string [B], for error messages.
        tokens: tf.string [B, T], the tokens ("(", ")" and words), "" past each row's end.
        kinds: int32 [B, T]: _OPEN, _CLOSE, _WORD or _PAD.
        positions: int32 [B, T]: each token's position (from 1) in `source_tokens`, for error messages (and the
            spans of ListOps nodes).
        source_tokens: tf.string [B, T0]: the tokens as the string writes them, for error messages.
        ids: int32 [B, T]: the id of each token read as a word.
        leaf_labels: int32 [B, T]: the label of a leaf made of the token in an unlabelled tree (-1, or a digit's
            value in ListOps).
        operator_codes: int32 [B, T]: a ListOps operator's code (_OPERATOR_CODES), -1 for other tokens.
        label_values, label_codes: int32 [B, T]: each token read as a label, and 0 or its error code.
        initial_errors, initial_positions: int32 [B]: errors found before the parse (0: none), and their positions.
        max_nodes, max_children: N and K.
        labelled: whether every node starts with its label.
        listops_mode: whether a list node's label is its ListOps value and a lone word may be the whole tree.
        binarize: None, or (ListOps) the binarisation of `trees.binarize(tree, how=...)` done while parsing, which
            needs K >= 2. "left": an open node's two children are folded into a new unlabelled node, numbered next,
            whenever another child follows. "right": a node numbered while its parent has a child already and
            another child follows is held by a new open unlabelled node pushed on the stack (whose second child
            will be the rest of the list), and the list's "]" closes those nodes, one loop step each, before the
            list (that row's token position waits meanwhile: each row has its own).
        spans: whether to return the nodes' "starts" and "ends": in ListOps the nodes' first and last token
            positions (from 0) in `source_tokens`, otherwise their first and last leaves (from 0).
        name: the public function's name, for error messages.

    Returns:
        the batch format dict (module docstring).
    """
    n, k = int(max_nodes), int(max_children)
    fold_left, push_right = binarize == "left", binarize == "right"
    batch, width = tf.shape(tokens)[0], tf.shape(tokens)[1]
    square = tf.stack([batch, n])
    # Whether the token after each one closes a node (a fold waits when it does: that child is the node's last).
    next_closes = tf.concat([kinds[:, 1:], tf.fill([batch, 1], _PAD)], axis=1) == _CLOSE
    state = dict(
        sp=tf.zeros([batch], tf.int32),  # the number of open nodes (the stack's depth)
        count=tf.zeros([batch], tf.int32),  # the number of nodes numbered (closed)
        done=tf.zeros([batch], tf.bool),  # whether the root has closed
        leaves=tf.zeros([batch], tf.int32),  # the number of leaves numbered (a leaf's span, in bracketed trees)
        error=initial_errors, position=initial_positions,
        # The stack of open nodes, slot i the node opened at depth i + 1.
        open_label=tf.fill(square, -1), open_word=tf.fill(square, -1), open_count=tf.zeros(square, tf.int32),
        open_height=tf.fill(square, -1), open_children=tf.fill(tf.stack([batch, n, k]), -1),
        open_start=tf.fill(square, -1),
        # ListOps: an open list's operator code and how many of its arguments have each value 0..9.
        open_operator=tf.fill(square, -1), open_values=tf.zeros(tf.stack([batch, n, 10]), tf.int32),
        # The numbered nodes: the outputs.
        words=tf.zeros(square, tf.int32), heights=tf.fill(square, -1), labels=tf.fill(square, -1),
        children=tf.fill(tf.stack([batch, n, k]), -1), starts=tf.fill(square, -1), ends=tf.fill(square, -1),
        # Right-branching: whether an open node is one of a list's new nodes, and the slot of the list it is in.
        open_inner=tf.zeros(square, tf.bool), open_list=tf.zeros(square, tf.int32),
    )
    if not listops_mode:
        del state["open_operator"], state["open_values"]
    if not push_right:
        del state["open_inner"], state["open_list"]

    def body(t, s):
        # t [B]: each row's token position (rows part ways where a right-branching list closes its new nodes).

        def at_t(array):
            return tf.gather(array, tf.minimum(t, width - 1), batch_dims=1)

        kind, word_id = tf.where(t < width, at_t(kinds), _PAD), at_t(ids)
        sp, count = s["sp"], s["count"]
        has_top = sp > 0
        top = tf.maximum(sp - 1, 0)
        top_label = tf.gather(s["open_label"], top, batch_dims=1)
        top_word = tf.gather(s["open_word"], top, batch_dims=1)
        top_count = tf.gather(s["open_count"], top, batch_dims=1)
        top_height = tf.gather(s["open_height"], top, batch_dims=1)
        top_children = tf.gather(s["open_children"], top, batch_dims=1)
        top_start = tf.gather(s["open_start"], top, batch_dims=1)
        is_open, is_close, is_word = kind == _OPEN, kind == _CLOSE, kind == _WORD
        missing = has_top & (top_label == _MISSING)
        reads_label = is_word & missing
        reads_word = is_word & has_top & ~missing if labelled else tf.zeros_like(is_word)
        makes_leaf = is_word & (has_top | listops_mode) if not labelled else tf.zeros_like(is_word)
        # The node a numbered node joins: the one under the closing node, or the open node of a bare word.
        parent = tf.where(is_close, sp - 2, sp - 1)
        safe_parent = tf.maximum(parent, 0)
        parent_count = tf.gather(s["open_count"], safe_parent, batch_dims=1)
        emits = (is_close & has_top) | makes_leaf
        # Left-branching: the numbered node is its parent's second child and another child follows, so the two
        # become the children of a new node, numbered next, which is then the parent's first child.
        folds = emits & (parent >= 0) & (parent_count == 1) & ~at_t(next_closes) if fold_left else tf.zeros_like(
            emits)
        if push_right:
            # The "]" of a list whose new nodes are open closes the top one first (without reading on).
            closes_inner = is_close & has_top & tf.gather(s["open_inner"], top, batch_dims=1)
            pushes = emits & ~closes_inner & (parent >= 0) & (parent_count >= 1) & ~at_t(next_closes)
        else:
            closes_inner = pushes = tf.zeros_like(emits)
        checks = [
            (s["done"], _TRAILING),
            (is_close & ~has_top, _CLOSES_NOTHING),
            (is_word & ~has_top & (not listops_mode), _OUTSIDE),
            (is_open & missing, _MISSING_LABEL),
            (is_open & has_top & (top_word >= 0), _CHILD_AFTER_WORD),
            (is_open & (count + sp + 1 > n), _TOO_MANY_NODES),  # every open node will be numbered
            (is_close & missing, _EMPTY_NODE),
            (is_close & (top_word < 0) & (top_count == 0), _NO_CONTENT if labelled else _EMPTY_NODE),
            (is_close & (top_count < 2) & listops_mode, _NO_ARGUMENTS),
            (reads_label & (at_t(label_codes) != 0), at_t(label_codes)),
            (reads_word & (top_count > 0), _WORD_AMONG_CHILDREN),
            (reads_word & (top_word >= 0), _SECOND_WORD),
            ((reads_word | makes_leaf) & (word_id < 0), _NEGATIVE_ID),
            (makes_leaf & (count + sp + 1 > n), _TOO_MANY_NODES),
            (emits & (parent >= 0) & (parent_count >= k), _TOO_MANY_CHILDREN),
            # The fold's new node, after the numbered one (a closing node was counted among the open ones).
            ((folds | pushes) & (count + sp + 2 - tf.cast(is_close, tf.int32) > n), _TOO_MANY_NODES),
        ]
        code = tf.where((s["error"] == 0) & (kind != _PAD), _first(checks), 0)
        ok = (s["error"] == 0) & (kind != _PAD) & (code == 0)
        do_open, do_close, do_label = ok & is_open, ok & is_close, ok & reads_label
        do_word, do_leaf, do_fold, do_push = ok & reads_word, ok & makes_leaf, ok & folds, ok & pushes
        do_emit = do_close | do_leaf
        out = dict(s)
        out["error"] = tf.where(code != 0, code, s["error"])
        out["position"] = tf.where(code != 0, at_t(positions), s["position"])

        # Number a node: a closing node (a leaf if it holds a word), or a bare word's leaf.
        closes_leaf = top_word >= 0
        if listops_mode:
            top_operator = tf.gather(s["open_operator"], top, batch_dims=1)
            list_value = _listops_values(tf.gather(s["open_values"], top, batch_dims=1), top_operator)
        else:
            list_value = top_label
        list_value = tf.where(closes_inner, -1, list_value)
        label = tf.where(do_close, tf.where(closes_leaf, top_label, list_value), at_t(leaf_labels))
        height = tf.where(do_close & ~closes_leaf, top_height + 1, 0)
        # Its span: ListOps, token positions (a list runs from its operator to its "]"); bracketed trees, leaves.
        if listops_mode:
            here = at_t(positions) - 1
            start, end, opened_at = tf.where(do_close, top_start, here), here, here
            end = tf.where(closes_inner, here - 1, end)  # a new node of a list ends before the list's "]"
        else:
            leaf = s["leaves"]
            start = tf.where(do_close, top_start, leaf)
            end = tf.where(do_close & ~closes_leaf, leaf - 1, leaf)
            opened_at = leaf
            out["leaves"] = leaf + tf.cast(do_leaf | (do_close & closes_leaf), tf.int32)
        at_count = tf.one_hot(count, n, True, False) & do_emit[:, None]
        out["words"] = _set(s["words"], at_count, tf.where(do_close, tf.maximum(top_word, 0), word_id))
        out["heights"] = _set(s["heights"], at_count, height)
        out["labels"] = _set(s["labels"], at_count, label)
        out["children"] = _set(s["children"], at_count, tf.where(do_close[:, None], top_children, -1))
        out["starts"] = _set(s["starts"], at_count, start)
        out["ends"] = _set(s["ends"], at_count, end)
        # ... and make it its parent's next child.
        joins = do_emit & (parent >= 0)
        at_parent = tf.one_hot(safe_parent, n, True, False) & (joins & ~do_push)[:, None]
        next_slot = tf.one_hot(parent_count, k, True, False)
        out["open_children"] = tf.where(at_parent[:, :, None] & next_slot[:, None, :], count[:, None, None],
                                        s["open_children"])
        out["open_count"] = s["open_count"] + tf.cast(at_parent, tf.int32)
        out["open_height"] = tf.where(at_parent, tf.maximum(s["open_height"], height[:, None]), s["open_height"])
        if listops_mode:
            # A list's operator is its first child; a digit's or a closed list's value is one more argument value.
            out["open_operator"] = _set(s["open_operator"], at_parent & (at_t(operator_codes) >= 0)[:, None] &
                                        do_leaf[:, None], at_t(operator_codes))
            counted = tf.one_hot(label, 10, dtype=tf.int32) * tf.cast(joins & (label >= 0), tf.int32)[:, None]
            # The list the value counts for: the parent, or (right-branching) the list the parent is a new node of.
            in_list = tf.gather(s["open_list"], safe_parent, batch_dims=1) if push_right else safe_parent
            at_list = tf.one_hot(in_list, n, dtype=tf.int32)
            out["open_values"] = s["open_values"] + at_list[:, :, None] * counted[:, None, :]
        if fold_left:
            # The folded node: children the parent's first child and the node just numbered, no label; it spans
            # from the parent's start to the numbered node's end. The parent keeps it as its one child.
            parent_children = tf.gather(s["open_children"], safe_parent, batch_dims=1)
            parent_height = tf.gather(s["open_height"], safe_parent, batch_dims=1)
            parent_start = tf.gather(s["open_start"], safe_parent, batch_dims=1)
            folded_height = tf.maximum(parent_height, height) + 1
            folded_children = tf.concat([parent_children[:, :1], count[:, None], tf.fill([batch, k - 2], -1)], 1)
            at_folded = tf.one_hot(count + 1, n, True, False) & do_fold[:, None]
            out["words"] = _set(out["words"], at_folded, tf.zeros([batch], tf.int32))
            out["heights"] = _set(out["heights"], at_folded, folded_height)
            out["labels"] = _set(out["labels"], at_folded, tf.fill([batch], -1))
            out["children"] = _set(out["children"], at_folded, folded_children)
            out["starts"] = _set(out["starts"], at_folded, parent_start)
            out["ends"] = _set(out["ends"], at_folded, end)
            at_parent_folds = at_parent & do_fold[:, None]
            out["open_children"] = _set(out["open_children"], at_parent_folds,
                                        tf.concat([count[:, None] + 1, tf.fill([batch, k - 1], -1)], 1))
            out["open_count"] = tf.where(at_parent_folds, 1, out["open_count"])
            out["open_height"] = _set(out["open_height"], at_parent_folds, folded_height)
        # A label or word read into the top node.
        at_top = tf.one_hot(top, n, True, False)
        out["open_label"] = _set(s["open_label"], at_top & do_label[:, None], at_t(label_values))
        out["open_word"] = _set(s["open_word"], at_top & do_word[:, None], word_id)
        # Open a node in the next slot (sp < n: the _TOO_MANY_NODES check keeps count + sp + 1 <= n).
        at_new = tf.one_hot(sp, n, True, False) & do_open[:, None]
        out["open_label"] = _set(out["open_label"], at_new, tf.fill([batch], _MISSING if labelled else -1))
        out["open_word"] = _set(out["open_word"], at_new, tf.fill([batch], -1))
        out["open_count"] = _set(out["open_count"], at_new, tf.zeros([batch], tf.int32))
        out["open_height"] = _set(out["open_height"], at_new, tf.fill([batch], -1))
        out["open_children"] = _set(out["open_children"], at_new, tf.fill([batch, k], -1))
        out["open_start"] = _set(s["open_start"], at_new, opened_at)
        if push_right:
            out["open_inner"] = _set(s["open_inner"], at_new, tf.zeros([batch], tf.bool))
            out["open_list"] = _set(s["open_list"], at_new, sp)
            # The pushed node: in the slot above the parent, its one child the node just numbered.
            at_pushed = tf.one_hot(parent + 1, n, True, False) & do_push[:, None]
            out["open_label"] = _set(out["open_label"], at_pushed, tf.fill([batch], -1))
            out["open_word"] = _set(out["open_word"], at_pushed, tf.fill([batch], -1))
            out["open_count"] = _set(out["open_count"], at_pushed, tf.ones([batch], tf.int32))
            out["open_height"] = _set(out["open_height"], at_pushed, height)
            out["open_children"] = _set(out["open_children"], at_pushed,
                                        tf.concat([count[:, None], tf.fill([batch, k - 1], -1)], 1))
            out["open_start"] = _set(out["open_start"], at_pushed, start)
            out["open_inner"] = _set(out["open_inner"], at_pushed, tf.ones([batch], tf.bool))
            out["open_list"] = _set(out["open_list"], at_pushed, tf.gather(s["open_list"], safe_parent,
                                                                           batch_dims=1))
            if listops_mode:
                out["open_operator"] = _set(out["open_operator"], at_pushed, tf.fill([batch], -1))
                out["open_values"] = tf.where(at_pushed[:, :, None], 0, out["open_values"])
        if listops_mode:
            out["open_operator"] = _set(out["open_operator"], at_new, tf.fill([batch], -1))
            out["open_values"] = tf.where(at_new[:, :, None], 0, out["open_values"])
        out["count"] = count + tf.cast(do_emit, tf.int32) + tf.cast(do_fold, tf.int32)
        out["sp"] = sp + tf.cast(do_open, tf.int32) - tf.cast(do_close, tf.int32) + tf.cast(do_push, tf.int32)
        out["done"] = s["done"] | (do_close & (sp == 1)) | (do_leaf & (sp == 0))
        return t + tf.cast(~(do_close & closes_inner), tf.int32), out

    # The batch axis of the state may be static (a constant input) while the body's results are not: let it vary.
    invariants = (tf.TensorShape([None]), {key: tf.TensorShape([None]).concatenate(value.shape[1:])
                                       for key, value in state.items()})
    _, s = tf.while_loop(lambda t, s: tf.reduce_any(t < width), body, (tf.zeros([batch], tf.int32), state),
                         shape_invariants=invariants)
    # A string that ended before its tree did: "(" never closed, or no tokens at all.
    unfinished = (s["error"] == 0) & ~s["done"]
    error = tf.where(unfinished, tf.where(s["sp"] > 0, _UNCLOSED, _EMPTY), s["error"])
    position = tf.where(unfinished, 0, s["position"])
    bad = error != 0
    open_nodes = s["sp"]  # for the message of a list never closed: the new nodes of right-branching lists aside
    if push_right:
        open_nodes -= tf.reduce_sum(tf.cast(s["open_inner"] & (tf.range(n)[None, :] < s["sp"][:, None]), tf.int32),
                                    axis=1)
    assertion = tf.debugging.Assert(
        ~tf.reduce_any(bad),
        [tf.cond(tf.reduce_any(bad), lambda: _message(strings, source_tokens, error, position, open_nodes, n, k, name,
                                                                _LISTOPS_MESSAGES if listops_mode else _MESSAGES),
                 lambda: tf.constant(""))])
    with tf.control_dependencies([assertion]):
        return {
            "words": tf.identity(s["words"]), "children": tf.identity(s["children"]),
            "heights": tf.identity(s["heights"]), "labels": tf.identity(s["labels"]),
            "roots": tf.identity(s["count"] - 1),
        } | ({"starts": tf.identity(s["starts"]), "ends": tf.identity(s["ends"])} if spans else {})


def _message(strings, source_tokens, error, position, open_count, n, k, name, table):
    """The error message of the first bad row: "NAME: row R, token P `TOKEN`: PROBLEM. The string: `STRING`"."""
    row = tf.argmax(tf.cast(error != 0, tf.int32), output_type=tf.int32)
    code, at = error[row], position[row]
    messages = [""] + [table[c].format(n=n, k=k) for c in range(1, len(table) + 1)]
    problem = tf.gather(tf.constant(messages), code)
    problem = tf.where(code == _UNCLOSED,
                       tf.strings.join([problem, " (", tf.strings.as_string(open_count[row]), " open)"]), problem)
    token = tf.gather(tf.concat([source_tokens[row], [""]], 0), tf.maximum(at - 1, 0))  # a row may have no tokens
    where = tf.where(at > 0, tf.strings.join(["token ", tf.strings.as_string(at), " `", token, "`"]),
                     "at the end of the string")
    text = tf.strings.substr(strings[row], 0, 200)
    return tf.strings.join([name, ": row ", tf.strings.as_string(row), ", ", where, ": ", problem, ". The string: `",
                            text, "`"])
