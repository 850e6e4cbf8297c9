"""The Neural Turing Machine's algorithmic tasks (Graves, Wayne & Danihelka 2014, §4), as seeded generators.

Each generator draws one example with a `numpy.random.Generator` and returns `(inputs, targets, mask)`:

    inputs   float32 [T_in + T_out, width]   what the network reads, step by step (all zero while it answers)
    targets  float32 [T_in + T_out, bits']   what it must write (zero while it reads)
    mask     float32 [T_in + T_out]          1 at the answer's steps (the only steps scored), 0 elsewhere

`length` is the task's size: the sequence length (copy, repeat copy), the number of items (associative recall) or
of vectors to sort (priority sort); it is drawn uniformly from [min_length, max_length], so evaluation can ask for
lengths beyond those trained. `batch(name, rng, count, ...)` pads examples with zero steps (mask 0) to one array.

Channel layouts (b = `bits`; columns 0..b-1 always hold the data vectors):

- copy: inputs b + 1: the L vectors, then one step with the delimiter flag (column b), then L zero steps; targets b:
  the L vectors again on the last L steps. T = 2L + 1.
- repeat copy: inputs b + 2: the L vectors, one delimiter step (column b), one step holding the repeat count R
  divided by `repeat_scale` (column b + 1), then L * R + 1 zero steps; targets b + 1: the L vectors R times, then the
  end marker (column b) on the last step. T = L (R + 1) + 3. The count is scaled by a fixed constant (not by the
  largest count drawn), so a network trained on 1..10 repeats reads an unseen 15 as 1.5.
- associative recall: inputs b + 2: for each of the n items, an item-delimiter step (column b) then its
  `item_length` vectors; then a query-delimiter step (column b + 1), the query item (a copy of one of the first n - 1
  items), a query-delimiter step, and `item_length` zero steps; targets b: the item that follows the queried one, on
  the last `item_length` steps. Items are distinct. T = n (item_length + 1) + 2 item_length + 2.
- priority sort: inputs b + 2: n vectors, each with its priority in [-1, 1] (column b), then a delimiter step (column
  b + 1) and k = min(`num_outputs`, n) zero steps; targets b: the k vectors of highest priority, highest first, on
  the last k steps. T = n + 1 + k.
"""

import numpy as np

_MASKED = "float32"


def _vectors(rng, count, bits):
    return rng.integers(0, 2, size=(count, bits)).astype("float32")


def _check_lengths(min_length, max_length, least=1):
    if not (isinstance(min_length, (int, np.integer)) and isinstance(max_length, (int, np.integer))):
        raise ValueError(f"min_length and max_length must be ints, got {min_length!r} and {max_length!r}")
    if min_length < least or max_length < min_length:
        raise ValueError(
            f"lengths must satisfy {least} <= min_length <= max_length, got min_length={min_length}, "
            f"max_length={max_length}"
        )


def copy(rng, bits=8, min_length=1, max_length=20):
    """A copy example: L ~ U[min_length, max_length] random `bits`-bit vectors to reproduce after a delimiter."""
    _check_lengths(min_length, max_length)
    length = int(rng.integers(min_length, max_length + 1))
    sequence = _vectors(rng, length, bits)
    steps = 2 * length + 1
    inputs = np.zeros((steps, bits + 1), "float32")
    inputs[:length, :bits] = sequence
    inputs[length, bits] = 1.0
    targets = np.zeros((steps, bits), "float32")
    targets[length + 1:] = sequence
    mask = np.zeros(steps, _MASKED)
    mask[length + 1:] = 1.0
    return inputs, targets, mask


def repeat_copy(rng, bits=8, min_length=1, max_length=10, min_repeats=1, max_repeats=10, repeat_scale=10.0):
    """A repeat-copy example: L vectors and a count R ~ U[min_repeats, max_repeats] (fed as R / repeat_scale); the
    target is the L vectors R times, then an end marker."""
    _check_lengths(min_length, max_length)
    if not (1 <= min_repeats <= max_repeats):
        raise ValueError(f"repeats must satisfy 1 <= min_repeats <= max_repeats, got {min_repeats} and {max_repeats}")
    if not repeat_scale > 0:
        raise ValueError(f"repeat_scale must be positive, got {repeat_scale!r}")
    length = int(rng.integers(min_length, max_length + 1))
    repeats = int(rng.integers(min_repeats, max_repeats + 1))
    sequence = _vectors(rng, length, bits)
    start = length + 2  # the first answer step
    steps = start + length * repeats + 1
    inputs = np.zeros((steps, bits + 2), "float32")
    inputs[:length, :bits] = sequence
    inputs[length, bits] = 1.0
    inputs[length + 1, bits + 1] = repeats / repeat_scale
    targets = np.zeros((steps, bits + 1), "float32")
    targets[start:steps - 1, :bits] = np.tile(sequence, (repeats, 1))
    targets[steps - 1, bits] = 1.0
    mask = np.zeros(steps, _MASKED)
    mask[start:] = 1.0
    return inputs, targets, mask


def associative_recall(rng, bits=6, min_length=2, max_length=6, item_length=3):
    """An associative-recall example: n ~ U[min_length, max_length] distinct items of `item_length` vectors, then a
    query item; the target is the item after the queried one."""
    _check_lengths(min_length, max_length, least=2)
    count = int(rng.integers(min_length, max_length + 1))
    if count > 2 ** (bits * item_length):
        raise ValueError(f"{count} distinct items do not exist with {bits} bits and item_length {item_length}")
    items = _vectors(rng, count, bits * item_length)
    while len(np.unique(items, axis=0)) < count:  # a repeated item would make the answer ambiguous (rare)
        items = _vectors(rng, count, bits * item_length)
    items = items.reshape(count, item_length, bits)
    query = int(rng.integers(0, count - 1))
    block = item_length + 1
    answer = count * block + item_length + 2  # the first answer step
    steps = answer + item_length
    inputs = np.zeros((steps, bits + 2), "float32")
    for index in range(count):
        inputs[index * block, bits] = 1.0
        inputs[index * block + 1:(index + 1) * block, :bits] = items[index]
    inputs[count * block, bits + 1] = 1.0
    inputs[count * block + 1:answer - 1, :bits] = items[query]
    inputs[answer - 1, bits + 1] = 1.0
    targets = np.zeros((steps, bits), "float32")
    targets[answer:] = items[query + 1]
    mask = np.zeros(steps, _MASKED)
    mask[answer:] = 1.0
    return inputs, targets, mask


def priority_sort(rng, bits=8, min_length=20, max_length=20, num_outputs=16):
    """A priority-sort example: n ~ U[min_length, max_length] vectors with priorities ~ U[-1, 1]; the target is the
    min(num_outputs, n) vectors of highest priority, highest first."""
    _check_lengths(min_length, max_length)
    if num_outputs < 1:
        raise ValueError(f"num_outputs must be a positive int, got {num_outputs!r}")
    count = int(rng.integers(min_length, max_length + 1))
    vectors = _vectors(rng, count, bits)
    priorities = rng.uniform(-1.0, 1.0, size=count).astype("float32")
    outputs = min(num_outputs, count)
    steps = count + 1 + outputs
    inputs = np.zeros((steps, bits + 2), "float32")
    inputs[:count, :bits] = vectors
    inputs[:count, bits] = priorities
    inputs[count, bits + 1] = 1.0
    order = np.argsort(-priorities, kind="stable")[:outputs]
    targets = np.zeros((steps, bits), "float32")
    targets[count + 1:] = vectors[order]
    mask = np.zeros(steps, _MASKED)
    mask[count + 1:] = 1.0
    return inputs, targets, mask


GENERATORS = {
    "copy": copy,
    "repeat_copy": repeat_copy,
    "associative_recall": associative_recall,
    "priority_sort": priority_sort,
}


def widths(name, bits):
    """(input width, target width) of task `name` with `bits`-bit vectors."""
    _generator(name)
    return {
        "copy": (bits + 1, bits),
        "repeat_copy": (bits + 2, bits + 1),
        "associative_recall": (bits + 2, bits),
        "priority_sort": (bits + 2, bits),
    }[name]


def examples(name, rng, count, **arguments):
    """`count` examples of task `name` drawn with `rng`: three lists (inputs, targets, masks) of variable length."""
    generator = _generator(name)
    drawn = [generator(rng, **arguments) for _ in range(count)]
    return [d[0] for d in drawn], [d[1] for d in drawn], [d[2] for d in drawn]


def pad(inputs, targets, masks):
    """Lists of variable-length examples as zero-padded arrays [count, T_max, ...] (padding has mask 0)."""
    steps = max(len(x) for x in inputs)
    padded = []
    for column in (inputs, targets, masks):
        array = np.zeros((len(column), steps, *column[0].shape[1:]), "float32")
        for index, value in enumerate(column):
            array[index, : len(value)] = value
        padded.append(array)
    return tuple(padded)


def batch(name, rng, count, **arguments):
    """`count` examples of task `name`, zero-padded to the longest: (inputs, targets, mask) arrays."""
    return pad(*examples(name, rng, count, **arguments))


def _generator(name):
    if name not in GENERATORS:
        raise ValueError(f"unknown algorithmic task {name!r}; valid tasks: {sorted(GENERATORS)}")
    return GENERATORS[name]
