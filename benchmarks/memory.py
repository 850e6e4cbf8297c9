"""The Neural Turing Machine's cost: training steps per second against an LSTM of its size, and memory against N x M.

    python -m benchmarks.memory               # what `make bench` runs; rewrites its section of docs/performance.md
    python -m benchmarks.memory --rounds=3 --sizes=32,128 --grid=32x20,128x20 --output=   # a quick look

Speed. The `ntm` task's copy preset (`ntm_copy`: memory 128 x 20, LSTM controller of 100 units, one read and one
write head; 62,536 parameters) is timed against the task's LSTM baseline (`lstm` with 120 units, 63,368 parameters)
on the same copy batch (batch 32, every sequence of length `--length`: T = 2 length + 1 steps), with the same train
step: a `tf.function` that takes the task's loss, clips the gradient's global norm and applies Adam, at the task's
values (1e-3, clip 50). Both run with and without XLA (`jit_compile`); the NTM also at other memory sizes N (width
20) without XLA, to show which part of its step grows with N. All runs are interleaved in one process (each round
times every model once, in a new random order); a figure is the median over rounds, a ratio the median of per-round
ratios (NTM time / LSTM time at the same XLA setting), of wall time and of the process's CPU time.

Memory. For each configuration N x M of `--grid`, a fresh subprocess (`--child=NxM`) builds the NTM, takes a few
training steps (without XLA) and reports (a) the TensorFlow CPU allocator's peak (`tf.config.experimental.
get_memory_info("CPU:0")["peak"]`, bytes in use at the worst moment, from just before the model is built; it counts
only allocations of 256 KiB and more), (b) the growth of the process's resident peak over the same span (Linux's
VmHWM, reset through /proc/self/clear_refs: `ru_maxrss` cannot be reset, and a child inherits its parent's), (c) what
the loop pushes per time step for its gradient, in the traced graph, and its seconds per step. Beside them: the
analytic size of what backpropagation through time must keep of the memory alone, one [batch, N, M] float32 matrix
per time step (`bptt_memory_bytes`).
"""

import datetime
import json
import statistics
import subprocess
import sys
import time

import numpy as np
from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402

from benchmarks import report  # noqa: E402
from benchmarks import steps  # noqa: E402
from training import tasks  # noqa: E402

FLAGS = flags.FLAGS


def define_flags():
    """The command's flags, defined when it runs as a program (not on import), so that a test process imports
    its functions beside other benchmarks whose flags share names."""
    flags.DEFINE_integer("rounds", 5, "Interleaved rounds of the speed comparison; figures are medians over rounds.",
                         lower_bound=1)
    flags.DEFINE_integer("steps", 3, "Training steps per timed run (speed) and per subprocess (memory).", lower_bound=1)
    flags.DEFINE_integer("length", 20, "Copy length L of every sequence of the batch (T = 2 L + 1 steps).",
                         lower_bound=1)
    flags.DEFINE_integer("batch", 32, "Sequences per batch (the task's 32).", lower_bound=1)
    flags.DEFINE_list("sizes", ["32", "128", "512"], "Memory sizes N (width 20) the NTM is timed at without XLA.")
    flags.DEFINE_list("grid", ["32x20", "128x20", "512x20", "2048x20", "32x64", "128x64", "512x64", "2048x64"],
                      "Memory configurations NxM whose training-step memory is measured, each in its own subprocess.")
    flags.DEFINE_bool("xla", True, "Also time the NTM and the LSTM with XLA (jit_compile).")
    flags.DEFINE_bool("shared_machine", False, "Say in the section that other jobs shared the machine during the run.")
    flags.DEFINE_string("output", "docs/performance.md", "Markdown file whose section is rewritten; empty: none.")
    flags.DEFINE_string("child", "", "Internal: measure one NxM configuration's memory and print it as JSON.")

PRESET_N, PRESET_M = 128, 20
LSTM_UNITS = 120  # the task's baseline: 63,368 parameters with the copy head, against the NTM's 62,536
RESULT = "RESULT "  # the prefix of the line a child prints


def bptt_memory_bytes(batch, steps, memory_size, memory_width, dtype_bytes=4):
    """The bytes backpropagation through time keeps of the memory alone: one [batch, N, M] matrix per time step.

    Args:
        batch: sequences per batch.   steps: time steps T.
        memory_size: N, locations.    memory_width: M, the size of a location.
        dtype_bytes: bytes per number (4: float32).

    Returns:
        batch x T x N x M x dtype_bytes.
    """
    return batch * steps * memory_size * memory_width * dtype_bytes


def parse_configuration(text):
    """"NxM" -> (N, M), positive ints; a clear error otherwise."""
    parts = text.lower().split("x")
    try:
        n, m = (int(part) for part in parts)
    except ValueError:
        raise app.UsageError(f"a memory configuration must be NxM with positive ints (e.g. 128x20), got {text!r}")
    if n < 1 or m < 1:
        raise app.UsageError(f"a memory configuration must be NxM with positive ints (e.g. 128x20), got {text!r}")
    return n, m


def task_config(model="ntm_copy", model_options=None):
    """The `ntm` task's copy preset, with `model` and its options."""
    task = tasks.get("ntm")
    return task, {**task.presets["copy"], "seed": 0, "model": model, "model_options": dict(model_options or {})}


def copy_batch(batch, length, seed=0):
    """One copy batch (inputs [batch, 2 length + 1, 9], targets with the mask channel), every sequence of `length`,
    the first batch of the task's training stream at `seed`."""
    task, config = task_config()
    config = {**config, "min_length": length, "max_length": length, "batch_size": batch, "seed": seed}
    inputs, targets, _ = next(iter(task.dataset(config, "train", batch).take(1)))
    return inputs, targets


def build(model, model_options, inputs):
    """The model the `ntm` task would build, its weights created on `inputs`."""
    task, config = task_config(model, model_options)
    keras.utils.set_random_seed(0)
    built = task.build_model(config)
    built(inputs[:, :1])
    return task, config, built


def loop_pushes(step, inputs, targets):
    """[(shape, bytes)]: what the train step's recurrent loop pushes, every time step, for its gradient (the
    `TensorListPushBack` ops of its forward body): the tensors backpropagation through time keeps, per step. Raises
    ValueError unless the graph holds exactly one forward loop."""
    graph = step.get_concrete_function(inputs, targets).graph
    loops = [op for op in graph.get_operations()
             if op.type in ("While", "StatelessWhile") and "_grad_" not in op.get_attr("body").name]
    if len(loops) != 1:
        raise ValueError(f"expected one recurrent loop in the train step, got {[op.name for op in loops]}")
    body = graph._get_function(loops[0].get_attr("body").name).graph  # noqa: SLF001 (no public way to the body)
    pushes = []
    for op in body.get_operations():
        if op.type == "TensorListPushBack":
            pushed = op.inputs[1]
            pushes.append((tuple(pushed.shape.as_list()), pushed.shape.num_elements() * pushed.dtype.size))
    return pushes


def speed_runs():
    """[(name, model, options, jit_compile)]: the runs of the speed comparison, the LSTM baseline first."""
    runs = [(f"LSTM {LSTM_UNITS}", "lstm", {"units": LSTM_UNITS}, False)]
    for n in sorted({PRESET_N, *(int(size) for size in FLAGS.sizes)}):
        runs.append((f"NTM {n}x{PRESET_M}", "ntm_copy", {"memory_size": n, "memory_width": PRESET_M}, False))
    if FLAGS.xla:
        runs += [(f"LSTM {LSTM_UNITS}", "lstm", {"units": LSTM_UNITS}, True),
                 (f"NTM {PRESET_N}x{PRESET_M}", "ntm_copy", {}, True)]
    return runs


def measure_speed(inputs, targets):
    """{(name, xla): {"wall": [seconds per round], "cpu": [...], "parameters": int, "ops": (forward, backward)}}."""
    runs, results = {}, {}
    for name, model_name, options, jit_compile in speed_runs():
        task, config, model = build(model_name, options, inputs)
        step = steps.train_step(task, config, model, jit_compile=jit_compile)

        def timed(step=step):
            for _ in range(FLAGS.steps):
                loss = step(inputs, targets)
            float(loss)

        print(f"  tracing {name}{' (XLA)' if jit_compile else ''}...", flush=True)
        timed()  # trace (and compile) and warm up
        entry = results[name, jit_compile] = {"wall": [], "cpu": [], "parameters": model.count_params(),
                                              "ops": None if jit_compile else steps.loop_ops(step, inputs, targets)}

        def timed_with_cpu(timed=timed, cpu=entry["cpu"]):
            start = time.process_time()
            timed()
            cpu.append(time.process_time() - start)

        runs[name, jit_compile] = timed_with_cpu
    for key, seconds in report.interleaved(runs, FLAGS.rounds).items():
        results[key]["wall"] = seconds
    return results


def _status_kib(field):
    """A field of /proc/self/status in KiB (VmRSS: resident now; VmHWM: the resident peak)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field} line: the resident-memory peak needs Linux")


def reset_resident_peak():
    """Resets this process's resident peak (VmHWM) to its resident size now; returns that size in bytes.

    `ru_maxrss` cannot be reset, and a child process inherits its parent's: after `fork` and `exec` it starts at the
    parent's resident size at the fork (here a process holding TensorFlow and the speed runs' models), which would
    hide the growth measured here. Linux's VmHWM belongs to the process's own address space and is reset by writing
    5 to /proc/self/clear_refs.
    """
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    return _status_kib("VmRSS") * 1024


def measure_memory_here(n, m, batch, length, timed_steps):
    """Measures one configuration in this process (a fresh one). Returns {"tf_peak": bytes, "rss_growth": bytes,
    "seconds_per_step": float, "parameters": int, "time_steps": T, "kept_per_step": bytes, "memory_sized_per_step":
    int}: the allocator's peak and the resident peak, both counted from just before the model is built, after a
    traced step and `timed_steps` timed ones; what the loop keeps for the gradient per time step (`loop_pushes`), and
    how many of those tensors are the memory's size (batch x N x M numbers)."""
    inputs, targets = copy_batch(batch, length)
    tf.config.experimental.reset_memory_stats("CPU:0")
    current_before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    rss_before = reset_resident_peak()
    task, config, model = build("ntm_copy", {"memory_size": n, "memory_width": m}, inputs)
    step = steps.train_step(task, config, model, jit_compile=False)
    float(step(inputs, targets))  # trace and warm up
    seconds = []
    for _ in range(timed_steps):
        start = time.perf_counter()
        float(step(inputs, targets))
        seconds.append(time.perf_counter() - start)
    rss_peak = _status_kib("VmHWM") * 1024
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    pushes = loop_pushes(step, inputs, targets)
    return {"tf_peak": peak - current_before, "rss_growth": rss_peak - rss_before,
            "seconds_per_step": statistics.median(seconds), "parameters": model.count_params(),
            "time_steps": int(inputs.shape[1]), "kept_per_step": sum(size for _, size in pushes),
            "memory_sized_per_step": sum(size == bptt_memory_bytes(batch, 1, n, m) for _, size in pushes)}


def measure_memory(n, m, timeout=900):
    """Measures one configuration in a fresh subprocess (`--child`); returns its dict (see `measure_memory_here`)."""
    command = [sys.executable, "-m", "benchmarks.memory", f"--child={n}x{m}", f"--batch={FLAGS.batch}",
               f"--length={FLAGS.length}", f"--steps={FLAGS.steps}", "--output="]
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith(RESULT)]
    if result.returncode != 0 or len(lines) != 1:
        raise RuntimeError(f"measuring {n}x{m} failed (exit {result.returncode}):\n{result.stderr[-3000:]}")
    return json.loads(lines[0][len(RESULT):])


def linear_fit(x, y):
    """(intercept, slope) of the least-squares line y = intercept + slope x."""
    slope, intercept = np.polyfit(np.asarray(x, float), np.asarray(y, float), 1)
    return float(intercept), float(slope)


def _mb(size):
    """Bytes as MB (2^20 bytes): two decimals under 10 MB, one above."""
    megabytes = size / 2**20
    return f"{megabytes:,.2f}" if megabytes < 10 else f"{megabytes:,.1f}"


def section(speed, memory, time_steps):
    """The Markdown section of docs/performance.md, from `measure_speed`'s results and {(N, M): `measure_memory`}."""
    _, config = task_config()
    lstm = {xla: speed[key] for key in speed for xla in (False, True) if key == (f"LSTM {LSTM_UNITS}", xla)}
    lines = [
        "## Neural Turing Machine: training speed against an LSTM, memory against N x M (`benchmarks/memory.py`)",
        "",
        f"Command: `python -m benchmarks.memory --rounds={FLAGS.rounds} --steps={FLAGS.steps} --length={FLAGS.length}"
        f" --batch={FLAGS.batch} --sizes={','.join(FLAGS.sizes)} --grid={','.join(FLAGS.grid)}"
        f"{'' if FLAGS.xla else ' --noxla'}{' --shared_machine' if FLAGS.shared_machine else ''}`{_make_bench()}, "
        f"{datetime.date.today().isoformat()}.",
        f"Machine: {report.machine()}." + (
            " Other jobs shared the machine's cores during the run, so the absolute figures wander from run to run; "
            "the ratios, taken within each round, hold better." if FLAGS.shared_machine else ""),
        "",
        f"One training step on one copy batch of the `ntm` task ({FLAGS.batch} sequences of {FLAGS.length} 8-bit "
        f"vectors: T = {time_steps} steps of 9 input channels, 8 outputs), the same `tf.function` train step for "
        f"every model: the task's loss, the gradient's global norm clipped at {config['clip_global_norm']}, Adam at "
        f"{config['learning_rate']}. NTM: the `ntm_copy` preset (LSTM controller of 100 units, one read and one "
        f"write head, shifts -1..1) with memory N x M; LSTM: the task's baseline, `lstm` with {LSTM_UNITS} units. "
        f"Each run takes {FLAGS.steps} step{'s' if FLAGS.steps > 1 else ''}; figures are medians over {FLAGS.rounds} "
        "interleaved rounds; the ratio is NTM time / LSTM time at the same XLA setting, the median of per-round "
        "ratios, of wall time and of the process's CPU time.",
        "",
        "| model | XLA | parameters | ms/step | steps/s | sequences/s | ratio to the LSTM (wall time) "
        "| ratio (CPU time) | loop ops per step (forward + backward) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, xla), entry in speed.items():
        seconds = statistics.median(entry["wall"]) / FLAGS.steps
        baseline = lstm[xla]
        is_lstm = name.startswith("LSTM")
        wall = "—" if is_lstm else f"{report.median_ratio(entry['wall'], baseline['wall']):.2f}"
        cpu = "—" if is_lstm else f"{report.median_ratio(entry['cpu'], baseline['cpu']):.2f}"
        ops = "—" if entry["ops"] is None else f"{entry['ops'][0]} + {entry['ops'][1]}"
        lines.append(f"| {name} | {'yes' if xla else 'no'} | {entry['parameters']:,} | {seconds * 1e3:,.1f} | "
                     f"{1 / seconds:,.2f} | {FLAGS.batch / seconds:,.1f} | {wall} | {cpu} | {ops} |")
    sweep = sorted((int(name.split()[1].split("x")[0]), statistics.median(entry["wall"]) / FLAGS.steps)
                   for (name, xla), entry in speed.items() if name.startswith("NTM") and not xla)
    lstm_ms = statistics.median(lstm[False]["wall"]) / FLAGS.steps * 1e3
    ntm_ops, lstm_ops = speed[f"NTM {PRESET_N}x{PRESET_M}", False]["ops"], lstm[False]["ops"]
    lines += ["", _speed_explanation(speed, sweep, lstm_ms, ntm_ops, lstm_ops, time_steps), ""]
    lines += [
        f"Memory of one training step (batch {FLAGS.batch}, T = {time_steps}, no XLA) against the memory's size, "
        "each configuration in a fresh process. Analytic: the memory matrices backpropagation through time must "
        "keep, one per step, batch x T x N x M x 4 bytes. Graph: what the train step's loop pushes for its gradient "
        "at every step (its `TensorListPushBack` ops as traced, before TensorFlow's graph rewrites), times T. "
        "Allocator peak: TensorFlow's CPU allocator's peak bytes in use (`tf.config.experimental."
        "get_memory_info`), from just before the model is built; it counts only allocations of 256 KiB and more "
        "(smaller ones come from a pool it keeps no statistics for, checked here with single tensors of 255 and "
        "257 KiB), so it reads low where a step's tensors are small, and 0 at N x M = 32 x 20 (80 KiB per "
        "memory). RSS growth: the process's resident peak (VmHWM, reset just before the model is built) minus its "
        "resident size then; it counts everything, the traced graphs and the kernels' scratch included. (Not "
        "`ru_maxrss`: a child process inherits its parent's.) MB = 2^20 bytes.",
        "",
        "| N | M | parameters | analytic BPTT memory (MB) | graph keeps (MB) | allocator peak (MB) "
        "| RSS growth (MB) | allocator peak / analytic | ms/step |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (n, m), entry in memory.items():
        size = bptt_memory_bytes(FLAGS.batch, entry["time_steps"], n, m)
        lines.append(f"| {n} | {m} | {entry['parameters']:,} | {_mb(size)} | "
                     f"{_mb(entry['kept_per_step'] * entry['time_steps'])} | {_mb(entry['tf_peak'])} | "
                     f"{_mb(entry['rss_growth'])} | {entry['tf_peak'] / size:.2f} | "
                     f"{entry['seconds_per_step'] * 1e3:,.0f} |")
    lines += ["", memory_explanation(memory), ""]
    return "\n".join(lines)


def _speed_explanation(speed, sweep, lstm_ms, ntm_ops, lstm_ops, time_steps):
    """The paragraph under the speed table: what the NTM does per step, and the split of its step time into a part
    that does not grow with N and one that does (a least-squares line through the sweep over N)."""
    op_ratio = (ntm_ops[0] + ntm_ops[1]) / (lstm_ops[0] + lstm_ops[1])
    text = (f"Why the NTM is slower: each of its {time_steps} steps runs the LSTM controller (100 units, a little "
            "less than the baseline's 120) and then the heads: content addressing over all N locations (cosine "
            "similarity of the key with every row of the memory, a softmax over N), interpolation, the circular "
            "shift and the sharpening over N, the read w^T M, the erase and add on the whole N x M memory, and the "
            f"gradient of all of it. That is many more, small, ops per step: {ntm_ops[0]} + {ntm_ops[1]} in the "
            f"NTM's loop bodies against {lstm_ops[0]} + {lstm_ops[1]} in the LSTM's ({op_ratio:.1f} times as many).")
    if len(sweep) >= 2:
        intercept, slope = linear_fit([n for n, _ in sweep], [s * 1e3 for _, s in sweep])
        if slope <= 0:
            return text + (" The sweep over N gave no line rising with N: the machine's noise hid the part of the "
                           "step that grows with N; rerun with more rounds.")
        text += (f" The sweep over N (width {PRESET_M}, no XLA) separates the two costs: a least-squares line "
                 f"through its points gives {intercept:,.0f} ms per step that do not depend on N, "
                 f"{intercept / lstm_ms:.1f} times the LSTM's whole step ({lstm_ms:,.0f} ms), of the order of the "
                 f"ratio of their loop ops ({op_ratio:.1f}), as if each op's fixed cost, more than its arithmetic on "
                 f"tensors of batch {FLAGS.batch}, set that part; and {slope * 100:,.0f} ms "
                 f"per 100 locations (the addressing, read, erase and add over N x M, and their gradients). At the "
                 f"preset's N = {PRESET_N} the two parts are {intercept:,.0f} and {slope * PRESET_N:,.0f} ms; from "
                 f"N = {max(1, intercept / slope):,.0f} on the memory's part is the larger.")
    xla = [(name, entry) for (name, jit), entry in speed.items() if jit and name.startswith("NTM")]
    lstm_xla = [entry for (name, jit), entry in speed.items() if jit and name.startswith("LSTM")]
    plain = speed.get((f"NTM {PRESET_N}x{PRESET_M}", False))
    lstm_plain = speed.get((f"LSTM {LSTM_UNITS}", False))
    if xla and lstm_xla and plain and lstm_plain:
        def ms(entry):
            return f"{statistics.median(entry['wall']) / FLAGS.steps * 1e3:,.1f} ms"

        text += (" XLA fuses the step's many small ops into few kernels, which matters where there are many: it "
                 f"takes the preset NTM's step from {ms(plain)} to {ms(xla[0][1])} and the LSTM's from "
                 f"{ms(lstm_plain)} to {ms(lstm_xla[0])}, and the NTM / LSTM ratio from "
                 f"{report.median_ratio(plain['wall'], lstm_plain['wall']):.1f} to "
                 f"{report.median_ratio(xla[0][1]['wall'], lstm_xla[0]['wall']):.1f}.")
    return text


def memory_explanation(memory):
    """The paragraph under the memory table: how many memory-sized tensors the loop keeps per step, how the
    allocator's peak compares with the analytic size and with what the graph keeps, and least-squares lines of the
    allocator's peak and of the resident growth against the analytic size."""
    keys = list(memory)
    analytic = [bptt_memory_bytes(FLAGS.batch, memory[key]["time_steps"], *key) for key in keys]
    kept = [memory[key]["kept_per_step"] * memory[key]["time_steps"] for key in keys]
    sized = sorted({memory[key]["memory_sized_per_step"] for key in keys})
    text = (f"Per step the loop pushes {' or '.join(str(count) for count in sized)} tensors of the memory's size "
            "(batch x N x M numbers; in the NTM cell's step: the memory M_{t-1} the step reads, 1 - w e^T and the "
            "erase product of the write), besides small ones (the controller's gates, the weightings over N, the "
            "kernels it reads): the graph column.")
    counted = [i for i, key in enumerate(keys) if bptt_memory_bytes(FLAGS.batch, 1, *key) >= 256 * 1024]
    if len(counted) >= 2:
        to_analytic = [memory[keys[i]]["tf_peak"] / analytic[i] for i in counted]
        to_kept = [memory[keys[i]]["tf_peak"] / kept[i] for i in counted]
        intercept, slope = linear_fit([analytic[i] for i in counted], [memory[keys[i]]["tf_peak"] for i in counted])
        text += (f" Where the allocator sees the memory (its matrix 256 KiB or more), its peak is "
                 f"{min(to_analytic):.2f} to {max(to_analytic):.2f} times the analytic size and {min(to_kept):.2f} "
                 f"to {max(to_kept):.2f} times what the graph keeps; a least-squares line gives allocator peak = "
                 f"{_mb(intercept)} MB + {slope:.2f} x analytic. So a training step's memory grows linearly in "
                 "N x M, as backpropagation through time predicts, but by more than one memory matrix per step: "
                 "the loop also keeps the write's N x M intermediates of every step. It stays under the graph "
                 "column, which counts the graph as traced (TensorFlow rewrites it before it runs) and the small "
                 "tensors the allocator does not; where the ratio to the analytic size rises at the largest N, the "
                 "weightings over N ([batch, heads, N] floats, 256 KiB from "
                 f"N = {256 * 1024 // (FLAGS.batch * 2 * 4):,} at batch {FLAGS.batch} with two heads) are likely what "
                 "enters the allocator's count.")
    if len(keys) >= 2:
        intercept, slope = linear_fit(analytic, [memory[key]["rss_growth"] for key in keys])
        text += (f" The resident growth, through all the configurations: {_mb(intercept)} MB + {slope:.2f} x "
                 "analytic (least squares), above the allocator's peak: its constant is the traced graphs, the "
                 "kernels and the allocator's pools, and it counts the small allocations the allocator does not.")
    return text


def _make_bench():
    defaults = all(FLAGS[name].value == FLAGS[name].default
                   for name in ("rounds", "steps", "length", "batch", "sizes", "grid", "xla"))
    if not defaults:
        return ""
    return " (`make bench` runs these defaults, without --shared_machine)" if FLAGS.shared_machine else (
        " (`make bench` runs these defaults)")


def main(argv):
    del argv
    absl_warnings_only()
    if FLAGS.child:
        n, m = parse_configuration(FLAGS.child)
        print(RESULT + json.dumps(measure_memory_here(n, m, FLAGS.batch, FLAGS.length, FLAGS.steps)), flush=True)
        return
    try:
        sizes = [int(size) for size in FLAGS.sizes]
    except ValueError:
        raise app.UsageError(f"--sizes must be a comma-separated list of ints, got {','.join(FLAGS.sizes)}")
    if any(size < 1 for size in sizes):
        raise app.UsageError(f"--sizes must be positive ints, got {','.join(FLAGS.sizes)}")
    grid = [parse_configuration(text) for text in FLAGS.grid]
    inputs, targets = copy_batch(FLAGS.batch, FLAGS.length)
    print(f"speed: timing {len(speed_runs())} runs over {FLAGS.rounds} rounds...", flush=True)
    speed = measure_speed(inputs, targets)
    for (name, xla), entry in speed.items():
        print(f"  {name:14s} {'XLA' if xla else '   '} {statistics.median(entry['wall']) / FLAGS.steps * 1e3:9.1f} "
              "ms/step", flush=True)
    memory = {}
    for n, m in grid:
        memory[n, m] = measure_memory(n, m)
        print(f"memory {n}x{m}: allocator peak {_mb(memory[n, m]['tf_peak'])} MB, RSS growth "
              f"{_mb(memory[n, m]['rss_growth'])} MB, analytic "
              f"{_mb(bptt_memory_bytes(FLAGS.batch, memory[n, m]['time_steps'], n, m))} MB", flush=True)
    report.publish(section(speed, memory, int(inputs.shape[1])), FLAGS.output, "benchmarks.memory")


if __name__ == "__main__":
    define_flags()
    run(main)
