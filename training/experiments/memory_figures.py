"""What an explicit-memory run does on one example, drawn: the NTM's weightings and memory on a copy sequence, or
MemN2N's attention over a bAbI story at each hop.

    python -m training.experiments.memory_figures --model_dir=RUN [--output=PNG] [--length=20] [--seed=0]
        [--qa=2] [--example=0]

For a run of the `ntm` task (an NTM model; an LSTM baseline has no memory to draw) it draws one sequence of the
run's algorithm of `--length` vectors (the copy task's classic figure, Graves, Wayne & Danihelka 2014, Fig. 6): the
inputs and the outputs (sigmoid of the logits) over time, the write and the read weightings over time (memory
locations x time steps, the locations the heads touched: `touched_locations`), and the memory contents after the
input phase (the step of the delimiter), each location a column. `zoo.models.NTM.trace` gives the per-step
weightings and memory.

For a run of the `babi` task it draws one test question (`--qa`, the task number, default the run's first; the
`--example`-th question of that task in the test split): the story's sentences as rows, the hops as columns, each
cell the attention p^k_i the model put on sentence i at hop k (`zoo.models.MemN2N.attention`; Sukhbaatar et al.
2015, Table 2), supporting facts marked with "*", with the question, the answer and the model's answer in the title.

It loads the run's best model (`best/model.keras`); the PNG goes to --output (default RUN/memory_figure.png).
"""

import json
import os
import sys

import numpy as np
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

from keras import ops  # noqa: E402

from training import model_file  # noqa: E402
from training import tasks  # noqa: E402
from training.data import algorithmic  # noqa: E402

TASKS = ("ntm", "babi")
# Locations whose largest weighting over the sequence is below this are left out of the NTM figure's weighting
# panels (the heads touch a few dozen of the 128 locations; the rest would be a blank band).
TOUCHED = 0.01


def load_run(model_dir):
    """(task, config, model) of the run in `model_dir`: its config and best model; a clear error for a run of another
    task, a run without a best model yet, or a model without explicit memory."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"no run in {model_dir!r} (no config.json); train one with python -m training.train")
    with open(path) as f:
        config = json.load(f)
    if config.get("task") not in TASKS:
        raise ValueError(f"the run in {model_dir!r} is of task {config.get('task')!r}; expected one of {list(TASKS)}")
    model_path = os.path.join(model_dir, "best", model_file.BEST_FILE)
    if not os.path.exists(model_path):
        raise ValueError(f"the run in {model_dir!r} has no best model ({model_path}) yet; train it first")
    model = model_file.load(model_path)
    needed = "trace" if config["task"] == "ntm" else "attention"
    if not hasattr(model, needed):
        raise ValueError(
            f"the run in {model_dir!r} trained model {config.get('model')!r} ({type(model).__name__}), which has no "
            f"explicit memory to draw (no `{needed}`); give a run of an NTM (ntm task) or a MemN2N (babi task)"
        )
    return tasks.get(config["task"]), config, model


def ntm_trace(config, model, length=20, seed=0):
    """One sequence of the run's algorithm with `length` vectors, run through `model.trace`.

    Returns:
        {"inputs": [T, input width], "targets": [T, output width], "mask": [T] (1 on the answer steps), "outputs":
        [T, output width] (probabilities), "write": [T, N] and "read": [T, N] (the first write and read head's
        weightings, each step's a distribution over the N locations), "memory": [N, M] (after the step of the
        delimiter, the end of the input phase), "delimiter": that step, "bit_errors": of the rounded outputs on the
        answer steps}, NumPy arrays.
    """
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive int (the vectors to copy), got {length!r}")
    arguments = {"bits": config["bits"], **config["generator_options"], "min_length": length, "max_length": length}
    inputs, targets, mask = algorithmic.batch(config["algorithm"], np.random.default_rng(seed), 1, **arguments)
    traced = {key: ops.convert_to_numpy(value)[0] for key, value in model.trace(inputs).items()}
    outputs = 1.0 / (1.0 + np.exp(-traced["outputs"].astype("float64")))  # the task's read-out: sigmoid of logits
    # The delimiter is the last step with input on the last channel (the copy task's delimiter channel).
    delimiter = int(np.nonzero(inputs[0, :, -1])[0][-1]) if inputs[0, :, -1].any() else length
    answer = mask[0] > 0
    return {
        "inputs": inputs[0], "targets": targets[0], "mask": mask[0], "outputs": outputs,
        "write": traced["write_weightings"][:, 0], "read": traced["read_weightings"][:, 0],
        "memory": traced["memory"][delimiter], "delimiter": delimiter,
        "bit_errors": float(np.abs((outputs[answer] > 0.5) - targets[0][answer]).sum()),
    }


def touched_locations(found, threshold=TOUCHED, margin=2):
    """The locations the figure shows, in order: those some head weighted above `threshold` at some step, `margin`
    more on either side, as one run around the circular memory (the shifts wrap: a head that starts at location 0
    and moves left writes to 127, 126, ...), starting after the longest run of untouched locations.

    Returns:
        int array of location indices (all N, from 0, when every location or none was touched).
    """
    weight = np.maximum(found["write"].max(axis=0), found["read"].max(axis=0))
    size = len(weight)
    hot = weight > threshold
    if hot.all() or not hot.any():
        return np.arange(size)
    # The longest circular run of cold locations: the figure starts right after it.
    longest, end, run = 0, 0, 0
    for index in range(2 * size):
        run = 0 if hot[index % size] else run + 1
        if min(run, size) > longest:
            longest, end = min(run, size), index % size
    shown = size - longest + 2 * margin
    if shown >= size:
        return np.arange(size)
    return (end + 1 - margin + np.arange(shown)) % size


def draw_ntm(found, path, title=None):
    """Writes the NTM figure of `ntm_trace`'s result to the PNG `path`."""
    plt = _pyplot()
    locations = touched_locations(found)
    figure = plt.figure(figsize=(10.0, 8.0))
    grid = figure.add_gridspec(3, 2, height_ratios=[1.0, 2.2, 2.2])
    ticks = range(0, len(locations), max(1, len(locations) // 8))
    panels = [
        (grid[0, 0], found["inputs"].T, "inputs", "channel"),
        (grid[0, 1], found["outputs"].T, f"outputs ({found['bit_errors']:.0f} bit errors)", "channel"),
        (grid[1, 0], found["write"][:, locations].T, "write weighting", "location"),
        (grid[1, 1], found["read"][:, locations].T, "read weighting", "location"),
    ]
    for cell, matrix, name, ylabel in panels:
        axis = figure.add_subplot(cell)
        axis.imshow(matrix, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
        axis.axvline(found["delimiter"], color="C3", linewidth=0.8, linestyle=":")
        axis.set(title=name, xlabel="time step", ylabel=ylabel)
        if ylabel == "location":
            axis.set_yticks(list(ticks), [str(locations[i]) for i in ticks])
    axis = figure.add_subplot(grid[2, :])
    memory = found["memory"][locations]
    bound = float(np.abs(memory).max()) or 1.0
    image = axis.imshow(memory.T, cmap="RdBu_r", vmin=-bound, vmax=bound, aspect="auto", interpolation="nearest")
    axis.set_xticks(list(ticks), [str(locations[i]) for i in ticks])
    axis.set(title=f"memory after the input phase (step {found['delimiter']}), {len(locations)} of "
             f"{len(found['write'][0])} locations", xlabel="location", ylabel="element")
    figure.colorbar(image, ax=axis, fraction=0.03, pad=0.01)
    length = int(found["mask"].sum())
    figure.suptitle(title or f"NTM on one sequence of {length} vectors (dotted: the delimiter)", fontsize=11)
    figure.tight_layout()
    return _save(figure, path, plt)


def babi_attention(task, config, model, qa=None, example=0):
    """The attention of `model` at each hop on one test question: the `example`-th of task `qa` (default: the
    run's first task).

    Returns:
        {"sentences": [str] (the story's, oldest first, as the model sees them), "question", "answer", "predicted"
        (str), "supporting": [sentence positions], "task", "matrix": [sentences, hops] (each hop's column the
        attention over the sentences: once linear start is over, a softmax over the memory, whose empty slots
        (`empty_memories`) take the rest of 1), "linear_start": whether the model still runs without the softmax}.
    """
    data = task.data(config)
    qa = data.tasks[0] if qa is None else qa
    if qa not in data.tasks:
        raise ValueError(f"qa must be one of the run's tasks {data.tasks}, got {qa!r}")
    rows = [row for row, found in enumerate(data.examples["test"]) if found.task == qa]
    if isinstance(example, bool) or not isinstance(example, int) or not 0 <= example < len(rows):
        raise ValueError(f"example must be an int in [0, {len(rows)}) (the test questions of task {qa}), "
                         f"got {example!r}")
    row = rows[example]
    chosen = data.examples["test"][row]
    (story, query), (answer, _) = data.splits["test"]
    inputs = (story[row:row + 1], query[row:row + 1])
    attention = ops.convert_to_numpy(model.attention(inputs))[0]  # [hops, slots]
    logits = ops.convert_to_numpy(model(inputs))[0]
    sentences = chosen.story[-data.memory_size:]
    dropped = len(chosen.story) - len(sentences)
    return {
        "sentences": [" ".join(sentence) for sentence in sentences],
        "question": " ".join(chosen.query), "answer": chosen.answer,
        "predicted": data.vocabulary[int(np.argmax(logits))],
        "supporting": [position - dropped for position in chosen.supporting if position >= dropped],
        "task": qa, "matrix": attention[:, : len(sentences)].T,
        "linear_start": bool(float(ops.convert_to_numpy(model.linear_start_switch)) > 0.5),
    }


def draw_babi(found, path, title=None):
    """Writes the heatmap of `babi_attention`'s result to the PNG `path`."""
    plt = _pyplot()
    matrix = found["matrix"]
    rows, hops = matrix.shape
    figure, axis = plt.subplots(figsize=(6.5, max(2.2, 0.3 * rows + 1.4)))
    # Once linear start is over each column is a distribution; before, the raw scores (possibly negative).
    low, bound = (0.0, 1.0) if not found["linear_start"] else (min(0.0, float(matrix.min())), float(matrix.max()))
    bound = max(bound, low + 1e-6)
    image = axis.imshow(matrix, cmap="Greys", vmin=low, vmax=bound, aspect="auto", interpolation="nearest")
    labels = [("* " if i in found["supporting"] else "") + sentence for i, sentence in enumerate(found["sentences"])]
    axis.set_yticks(range(rows), labels, fontsize=8)
    axis.set_xticks(range(hops), [f"hop {k + 1}" for k in range(hops)], fontsize=8)
    for i in range(rows):
        for k in range(hops):
            axis.text(k, i, f"{matrix[i, k]:.2f}", ha="center", va="center", fontsize=7,
                      color="white" if matrix[i, k] > low + 0.5 * (bound - low) else "black")
    axis.tick_params(length=0)
    axis.set_title(title or f"QA{found['task']}: \"{found['question']}\" answer {found['answer']}, model "
                   f"{found['predicted']}" + (" (linear start: no softmax)" if found["linear_start"] else ""),
                   fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.04, pad=0.02, label="attention")
    figure.tight_layout()
    return _save(figure, path, plt)


def draw(model_dir, output=None, length=20, seed=0, qa=None, example=0):
    """Draws the run in `model_dir` (NTM or MemN2N, by its task) to `output` (default model_dir/memory_figure.png);
    returns `ntm_trace`'s or `babi_attention`'s result with "path" and "task_name" added."""
    task, config, model = load_run(model_dir)
    output = output or os.path.join(model_dir, "memory_figure.png")
    if task.name == "ntm":
        found = ntm_trace(config, model, length, seed)
        found["path"] = draw_ntm(found, output)
    else:
        found = babi_attention(task, config, model, qa, example)
        found["path"] = draw_babi(found, output)
    found["task_name"] = task.name
    return found


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path, plt):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def define_flags():
    flags.DEFINE_string("model_dir", None, "Directory of an ntm run (an NTM model) or a babi run.")
    flags.DEFINE_string("output", None, "The PNG to write (default: MODEL_DIR/memory_figure.png).")
    flags.DEFINE_integer("length", 20, "ntm runs: the vectors of the sequence drawn.", lower_bound=1)
    flags.DEFINE_integer("seed", 0, "ntm runs: the seed of the sequence drawn.")
    flags.DEFINE_integer("qa", None, "babi runs: the task number of the question drawn (default: the run's first).")
    flags.DEFINE_integer("example", 0, "babi runs: which test question of that task (from 0).", lower_bound=0)
    flags.mark_flag_as_required("model_dir")


def main(argv):
    absl_warnings_only()
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        found = draw(FLAGS.model_dir, FLAGS.output, FLAGS.length, FLAGS.seed, FLAGS.qa, FLAGS.example)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if found["task_name"] == "ntm":
        print(f"one sequence of {FLAGS.length} vectors, {found['bit_errors']:.0f} bit errors; wrote {found['path']}")
    else:
        print(f"QA{found['task']} {found['question']!r}: answer {found['answer']!r}, model {found['predicted']!r}; "
              f"wrote {found['path']}")
    return 0


if __name__ == "__main__":
    define_flags()
    run(main)
