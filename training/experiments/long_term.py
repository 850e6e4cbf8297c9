"""The lecture's central claim, measured: plain recurrences fail to learn long-term dependencies, gated ones do not,
and the reason is the decay of the gradient through time.

    python -m training.experiments.long_term [--lengths=10,20,50,100,200] [--seeds=3] [--steps_per_run=1500]

It trains the Elman, Jordan, leaky, LSTM and GRU cells on `latching` and `adding` for every length T and seed
(through the trainer, each run in its own directory under --work_dir, so an interrupted experiment resumes), then

1. tabulates the test accuracy (latching) and test MSE (adding) against T for each cell;
2. measures ||dL_T/ds_tau|| against T - tau for each cell on the adding problem, untrained and trained: the
   vanishing-gradient curve;
3. runs the linear recurrence the lecture analyses, s_t = W s_{t-1} + U x_t, for several spectral radii rho(W), and
   sets the measured decay rate of the gradient against rho,

and writes docs/results/long_term.md and its PNG figures. It takes about an hour on 2 CPU cores; it is not part of
the test suite (tests/training/experiments/long_term_test.py runs a reduced version).
"""

import datetime
import io
import json
import os
import platform
import statistics
import sys

import numpy as np
from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402

import zoo  # noqa: E402
from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

CELLS = ("elman", "jordan", "leaky", "lstm", "gru")
TASKS = {"latching": "accuracy", "adding": "mse"}
# When a run counts as having learnt the dependency: latching, 95% of the test sequences classified; adding, the
# CI anchor of results.md §1.3 (MSE < 0.05, against 0.167 for a model that only predicts the mean).
SOLVED = {"latching": lambda accuracy: accuracy >= 0.95, "adding": lambda mse: mse <= 0.05}
# The same budget for every cell: what differs is only the recurrence.
SETTINGS = {"units": 32, "learning_rate": 0.01, "clip_global_norm": 1.0, "train_size": 10000,
            "validation_size": 500, "test_size": 1000, "batch_size": 64, "checkpoint_every_steps": 500}
# Fixed leak rates: a leaky unit with alpha = 0.1 has a time constant of about 10 steps.
CELL_OPTIONS = {"leaky": {"alpha": 0.1, "trainable_alpha": False}}
GRADIENT_LENGTH = 100

FLAGS = flags.FLAGS
flags.DEFINE_list("lengths", ["10", "20", "50", "100", "200"], "Sequence lengths T.")
flags.DEFINE_integer("seeds", 3, "Seeds per (cell, task, T).", lower_bound=1)
flags.DEFINE_integer("steps_per_run", 1500, "Training steps per run.", lower_bound=1)
flags.DEFINE_list("cells", list(CELLS), "Cells to compare.")
flags.DEFINE_string("work_dir", "runs/long_term", "Where the runs live (reused when the experiment is rerun).")
flags.DEFINE_string("output_dir", "docs/results", "Where long_term.md and the figures are written.")


def run_config_for(task_name, cell, length, seed, steps):
    task = tasks.get(task_name)
    overrides = {**SETTINGS, "cell": cell, "model": cell, "length": length, "cell_options": CELL_OPTIONS.get(cell, {})}
    config = run_config.resolve(DEFAULTS, task.presets, "default", overrides)
    return task, {"task": task_name, "preset": "default", **config, "steps": steps, "seed": seed}


def train_one(task_name, cell, length, seed, steps, model_dir):
    """Trains one run (or resumes it) and returns (trainer, test metrics) with the best checkpoint restored."""
    task, config = run_config_for(task_name, cell, length, seed, steps)
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    trainer.fit()
    trainer.restore("best")
    return trainer, trainer.evaluate("test")


def gradient_norms(model, inputs, targets, loss_fn):
    """Mean over examples of ||d loss / d s_t|| for every step t, stepping the model's cell by hand.

    s_t is the cell's whole state after step t (h and c for the LSTM); the loss is read out after the last step.
    Returns an array [T]: entry t is at distance T - 1 - t from the end.
    """
    cell = model.recurrent_layers[0].cell
    x = tf.constant(inputs)
    with tf.GradientTape(persistent=True) as tape:
        states = cell.get_initial_state(batch_size=x.shape[0])
        history = []
        for t in range(x.shape[1]):
            output, states = cell(x[:, t], states)
            for s in states:
                tape.watch(s)
            history.append(states)
        total = tf.reduce_sum(loss_fn(targets, model.readout(output)))  # d total / d s_t[b]: example b's own
    norms = []
    for states in history:
        squared = sum(tf.reduce_sum(tf.square(g), axis=-1) for g in tape.gradient(total, states) if g is not None)
        norms.append(float(tf.reduce_mean(tf.sqrt(squared))))
    del tape
    return np.array(norms)


def linear_recurrence_decay(rhos, length=100, units=32, seed=0):
    """For s_t = W s_{t-1} + U x_t with rho(W) = rho, the measured ||dL/ds_tau|| curve and its fitted decay rate.

    W is a Gaussian matrix rescaled to spectral radius rho; L = <p, s_T> for a fixed random p, so dL/ds_tau is
    (W^T)^(T - tau) p and its norm decays (or grows) like rho^(T - tau) once the transient has passed. The recurrence
    runs as a zoo ElmanCell with a linear activation and no bias, and the gradient comes from autodiff.
    """
    rng = np.random.default_rng(seed)
    results = {}
    for rho in rhos:
        cell = zoo.cells.ElmanCell(units, activation="linear", use_bias=False)
        cell.build((None, 2))
        w = rng.normal(size=(units, units))
        w *= rho / np.max(np.abs(np.linalg.eigvals(w)))
        cell.recurrent_kernel.assign(w.T.astype("float32"))  # row-vector convention: s_t = s_{t-1} @ W^T
        cell.kernel.assign(rng.normal(size=(2, units)).astype("float32"))
        x = tf.constant(rng.normal(size=(1, length, 2)).astype("float32"))
        p = tf.constant(rng.normal(size=(1, units)).astype("float32"))
        with tf.GradientTape() as tape:
            states, history = [tf.zeros((1, units))], []
            for t in range(length):
                _, states = cell(x[:, t], states)
                tape.watch(states[0])
                history.append(states[0])
            loss = tf.reduce_sum(p * states[0])
        norms = np.array([float(tf.norm(g)) for g in tape.gradient(loss, history)])
        distance = length - 1 - np.arange(length)  # history[t] is s_t
        fit = (distance >= 10) & (distance <= 90)
        slope = np.polyfit(distance[fit], np.log(norms[fit]), 1)[0]
        results[rho] = {"distance": distance, "norms": norms, "rate": float(np.exp(slope))}
    return results


def summarize(values):
    return (statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0)


def write_report(output_dir, results, gradients, linear, lengths, settings_line):
    os.makedirs(output_dir, exist_ok=True)
    figures = _figures(output_dir, results, gradients, linear, lengths)
    lines = [
        "# Long-term dependencies: which recurrences learn them, and why",
        "",
        f"Written by `python -m training.experiments.long_term {settings_line}` on "
        f"{datetime.date.today().isoformat()} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"TensorFlow {tf.__version__}, Keras {keras.__version__}). Every run: {SETTINGS['units']} units, Adam at "
        f"{SETTINGS['learning_rate']}, global-norm clipping at {SETTINGS['clip_global_norm']}, batch "
        f"{SETTINGS['batch_size']}, {SETTINGS['train_size']} training sequences, the same number of steps for every "
        "cell; the best checkpoint by validation metric is evaluated on the test split. The leaky cell uses fixed "
        "alpha = 0.1.",
        "",
    ]
    for task_name, metric in TASKS.items():
        chance = tasks.get(task_name).chance_levels({})[metric] if task_name != "copy_memory" else None
        better = "higher" if metric == "accuracy" else "lower"
        lines += [
            f"## {task_name}: test {metric} against T (mean ± std over seeds; {better} is better, chance {chance:.3g})",
            "",
            "| cell | " + " | ".join(f"T = {t}" for t in lengths) + " |",
            "|---|" + "---|" * len(lengths),
        ]
        for cell in results[task_name]:
            row = [f"{m:.3f} ± {s:.3f}" for m, s in (summarize(results[task_name][cell][t]) for t in lengths)]
            lines.append(f"| {cell} | " + " | ".join(row) + " |")
        lines.append("")
    lines += [
        "## Solved runs: seeds that learnt the dependency (latching: accuracy >= 0.95; adding: MSE <= 0.05)",
        "",
        "| task | cell | " + " | ".join(f"T = {t}" for t in lengths) + " |",
        "|---|---|" + "---|" * len(lengths),
    ]
    for task_name in TASKS:
        for cell in results[task_name]:
            counts = [
                f"{sum(SOLVED[task_name](v) for v in results[task_name][cell][t])}/{len(results[task_name][cell][t])}"
                for t in lengths
            ]
            lines.append(f"| {task_name} | {cell} | " + " | ".join(counts) + " |")
    lines += [
        "",
        f"![test metric against T]({figures['metrics']})",
        "",
        f"## The vanishing gradient: ||dL_T / ds_tau|| against T - tau (adding, T = {GRADIENT_LENGTH})",
        "",
        "Mean over 256 test sequences of the norm of the gradient of the final loss with respect to the state at "
        "step tau, for a freshly initialised network (seed 0) and for the same network after training. How fast a "
        "curve falls is how fast the cell forgets: at initialisation the gated cells' default gates (a forget gate "
        "of about sigmoid(1) ~ 0.73 per step for the LSTM, an update gate of about sigmoid(0) = 0.5 for the GRU) "
        "make the state decay geometrically, while the Elman cell's orthogonal W preserves it as far as tanh' "
        "allows; training is what opens the gates.",
        "",
        "| cell | untrained, T-tau = 10 | 50 | 90 | trained, T-tau = 10 | 50 | 90 |",
        "|---|---|---|---|---|---|---|",
    ]
    for cell, curves in gradients.items():
        cells = []
        for kind in ("untrained", "trained"):
            norms = curves[kind]
            cells += [f"{norms[GRADIENT_LENGTH - 1 - d]:.2e}" for d in (10, 50, 90)]
        lines.append(f"| {cell} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"![gradient norm against distance]({figures['gradients']})",
        "",
        "## The linear recurrence s_t = W s_{t-1} + U x_t",
        "",
        "dL/ds_tau = (W^T)^(T - tau) dL/ds_T, so its norm changes by a factor of about rho(W) per step once the "
        "transient of the non-normal W has passed. Measured: the per-step factor fitted to log ||dL/ds_tau|| over "
        "T - tau in [10, 90] (autodiff through a linear zoo ElmanCell, Gaussian W rescaled to each spectral radius).",
        "",
        "| spectral radius rho(W) | measured factor per step | relative difference |",
        "|---|---|---|",
    ]
    for rho, result in linear.items():
        lines.append(f"| {rho:.2f} | {result['rate']:.4f} | {abs(result['rate'] - rho) / rho:.2%} |")
    lines += ["", f"![linear recurrence]({figures['linear']})", ""]
    with open(os.path.join(output_dir, "long_term.md"), "w") as f:
        f.write("\n".join(lines))


def _figures(output_dir, results, gradients, linear, lengths):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {"metrics": "long_term_metrics.png", "gradients": "long_term_gradients.png",
             "linear": "long_term_linear.png"}
    figure, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, (task_name, metric) in zip(axes, TASKS.items()):
        for cell, by_length in results[task_name].items():
            # The mean, and every seed as a dot: the outcomes are often all-or-nothing, which a std bar hides.
            line = axis.plot(lengths, [summarize(by_length[t])[0] for t in lengths], marker="o", label=cell)[0]
            for t in lengths:
                axis.scatter([t] * len(by_length[t]), by_length[t], s=12, alpha=0.5, color=line.get_color())
        chance = tasks.get(task_name).chance_levels({})[metric]
        axis.axhline(chance, color="grey", linestyle=":", label="chance")
        axis.set(xscale="log", xlabel="sequence length T", ylabel=f"test {metric}", title=task_name)
        axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, names["metrics"]), dpi=110)

    figure, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    distance = GRADIENT_LENGTH - 1 - np.arange(GRADIENT_LENGTH)  # entry t of a curve is s_t
    for axis, kind in zip(axes, ("untrained", "trained")):
        for cell, curves in gradients.items():
            axis.plot(distance, curves[kind], label=cell)
        axis.set(yscale="log", xlabel="T - tau", title=f"{kind} (adding, T = {GRADIENT_LENGTH})")
    axes[0].set_ylabel("||dL_T / ds_tau||")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, names["gradients"]), dpi=110)

    figure, axis = plt.subplots(figsize=(6, 4))
    for rho, result in linear.items():
        line = axis.plot(result["distance"], result["norms"], label=f"rho = {rho:.2f}")[0]
        anchor = result["norms"][np.argmin(np.abs(result["distance"] - 10))]
        axis.plot(result["distance"], anchor * rho ** (result["distance"] - 10.0), ":", color=line.get_color())
    axis.set(yscale="log", xlabel="T - tau", ylabel="||dL / ds_tau||",
             title="linear recurrence (dotted: rho^(T - tau))")
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(os.path.join(output_dir, names["linear"]), dpi=110)
    plt.close("all")
    return names


def main(argv):
    absl_warnings_only()
    del argv
    lengths = [int(t) for t in FLAGS.lengths]
    unknown = sorted(set(FLAGS.cells) - set(CELLS))
    if unknown:
        raise app.UsageError(f"unknown cells {unknown}; valid cells: {list(CELLS)}")
    results = {task_name: {cell: {t: [] for t in lengths} for cell in FLAGS.cells} for task_name in TASKS}
    trained_for_gradients = {}
    for task_name, metric in TASKS.items():
        for cell in FLAGS.cells:
            for length in lengths:
                for seed in range(FLAGS.seeds):
                    model_dir = os.path.join(FLAGS.work_dir, task_name, cell, f"T{length}", f"seed{seed}")
                    trainer, metrics = train_one(task_name, cell, length, seed, FLAGS.steps_per_run, model_dir)
                    results[task_name][cell][length].append(metrics[metric])
                    print(f"{task_name} {cell} T={length} seed={seed}: test {metric} {metrics[metric]:.4f}", flush=True)
                    if task_name == "adding" and length == GRADIENT_LENGTH and seed == 0:
                        trained_for_gradients[cell] = trainer
    gradients = {}
    for cell in FLAGS.cells:
        task, config = run_config_for("adding", cell, GRADIENT_LENGTH, 0, FLAGS.steps_per_run)
        inputs, targets = task.split_data(config)["test"]
        batch = (inputs[:256], targets[:256])
        keras.utils.set_random_seed(0)
        untrained = task.build_model(config)
        untrained(inputs[:1])
        trained = trained_for_gradients.get(cell)
        gradients[cell] = {
            "untrained": gradient_norms(untrained, *batch, lambda y, p: task.loss(config, y, p)),
            "trained": gradient_norms(trained.model, *batch, lambda y, p: task.loss(config, y, p))
            if trained is not None
            else np.full(GRADIENT_LENGTH, np.nan),
        }
        print(f"gradient norms of {cell}: done", flush=True)
    linear = linear_recurrence_decay([0.8, 0.9, 0.95, 1.0, 1.05])
    settings_line = (
        f"--lengths={','.join(FLAGS.lengths)} --seeds={FLAGS.seeds} --steps_per_run={FLAGS.steps_per_run} --cells={','.join(FLAGS.cells)}"
    )
    write_report(FLAGS.output_dir, results, gradients, linear, lengths, settings_line)
    with open(os.path.join(FLAGS.work_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"wrote {os.path.join(FLAGS.output_dir, 'long_term.md')}", file=sys.stderr)


if __name__ == "__main__":
    run(main)
