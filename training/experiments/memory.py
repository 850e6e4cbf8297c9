"""Explicit memory, measured: the Neural Turing Machine against an LSTM on copy, and the End-to-End Memory Network on
generated bAbI.

    python -m training.experiments.memory [--parts=ntm,babi] [--ntm_seeds=2] [--babi_seeds=3]
        [--sequences=256000] [--validate_every=8000] [--lengths=10,20,30,40,60,120] [--jit_compile=true]
        [--ntm_override=...] [--babi_override=...]

1. NTM copy (the `ntm` task's default preset `copy`: the NTM of Collier & Beel 2018, an LSTM-100 controller over a
   128 x 20 memory, Adam 1e-3, batch 32, lengths 1..20) for `--sequences` training sequences, validated every
   `--validate_every` sequences (the task's `train_size`, its "epoch"): the learning curve in validation bit errors
   per sequence against sequences seen. The baseline is the one-layer LSTM of 120 units (about the NTM's parameter
   count) trained on exactly as many sequences, same seeds, same data stream. Each run's best checkpoint (by
   validation bit errors) is tested at the lengths `--lengths` (training: 10, 20; beyond: 30, 40 = twice the longest
   training length, and the paper's 60, 120), as `training.evaluate --override=eval_min_length=L,eval_max_length=L`
   does.
2. MemN2N on generated QA1, QA2 and QA6 (the `babi` task's default preset `memn2n`, the paper's recipe, one model
   over the three tasks): test error per task, the mean and the failed tasks (error > 5%), the target verdict on QA1
   (<= 1% error), the paper's numbers beside them; the learning curve per epoch, with the epoch where linear start
   ended.
3. The figures of the seed-0 runs (`training.experiments.memory_figures`): the NTM's weightings and memory on one
   copy sequence, MemN2N's attention over one story at each hop.

Every run trains through the trainer in its own directory under --work_dir (`ntm_copy/<model>/seed<k>`,
`babi/memn2n/seed<k>`), one epoch at a time, its learning curve kept beside it (`memory_curve.json`), so an
interrupted experiment resumes where it stopped and a rerun only evaluates. It writes docs/results/memory.md and its
PNGs (`memory_*.png`). About 70 minutes on 2 busy CPU cores with the defaults (measured at 64k sequences: the NTM
about 6 minutes and the LSTM about 1.3 per 64k sequences with XLA, so 2 seeds x 256k sequences each about 60 minutes;
MemN2N about 1.4 s per epoch, 3 seeds x 100 epochs about 7 minutes; the test lengths about a minute per run).
"""

import datetime
import io
import json
import os
import platform
import statistics
import sys
import time

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402

from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.evaluate import evaluate  # noqa: E402
from training.experiments import memory_figures  # noqa: E402
from training.experiments.attention import mean_and_spread  # noqa: E402
from training.experiments.attention import write_report  # noqa: E402
from training.tasks.babi import FAILED_ERROR  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

# {name: (model, model_options)} of the copy comparison: the NTM preset and the LSTM of about its size.
NTM_MODELS = {"ntm": ("ntm_copy", {}), "lstm": ("lstm", {"units": 120})}
NTM_NAMES = {"ntm": "NTM (LSTM-100 controller, 128 x 20 memory)", "lstm": "LSTM, 120 units"}
LENGTHS = (10, 20, 30, 40, 60, 120)
CONVERGED = 0.1  # bit errors per sequence: "converged" (the criterion)
JUMP = 10.0  # a rise of the validation bit errors per sequence the report calls a jump
QA1_TARGET = 0.01  # the target error on generated QA1
# Sukhbaatar et al. 2015, Table 1, the 1k column of "PE LS RN joint" (the joint model of the default preset), per
# task in % (shared/reference/results.md §1.11): over all 20 tasks its mean is 12.4% with 11 failed.
PAPER_ERRORS = {1: 0.0, 2: 11.4, 6: 2.8}
PAPER_MEAN, PAPER_FAILED = 12.4, 11
CURVE_FILE = "memory_curve.json"  # in a run's model_dir: its learning curve and training time
PARTS = ("ntm", "babi")


def run_config_for(task_name, preset, seed, overrides=None):
    """(task, config) of one run: `preset` of `task_name` with `overrides`, seeded."""
    task = tasks.get(task_name)
    config = run_config.resolve(DEFAULTS, task.presets, preset, dict(overrides or {}))
    return task, {"task": task.name, "preset": preset, **config, "seed": seed}


def train_run(task_name, preset, seed, model_dir, overrides=None, jit_compile=False):
    """Trains one run (or resumes it) an epoch at a time, recording each epoch's validation metrics.

    Returns:
        {"model_dir", "seed", "steps", "sequences" (training examples seen), "parameters", "train_seconds",
        "curve": [{"epoch", "step", "sequences", "validation": {metric: value}, "linear_start": 1.0 / 0.0 or None}]}.
    """
    task, config = run_config_for(task_name, preset, seed, overrides)
    trainer = Trainer(task, config, model_dir, jit_compile=jit_compile, progress="lines", out=io.StringIO())
    per_epoch = trainer.steps_per_epoch
    total = config["steps"] or config["epochs"] * per_epoch
    curve_path = os.path.join(model_dir, CURVE_FILE)
    saved = {"curve": [], "train_seconds": 0.0}
    if os.path.exists(curve_path):
        with open(curve_path) as f:
            saved = json.load(f)
    step = int(trainer.step) if trainer.restore("latest") else 0
    curve = [point for point in saved["curve"] if point["step"] <= step]  # a run killed mid-epoch redoes it
    seconds = saved["train_seconds"]
    while step < total:
        # `fit` trains to config["steps"] from the latest checkpoint and validates at the end of each epoch: one
        # epoch per call gives the curve without a hook in the trainer's loop.
        trainer.config["steps"] = min((step // per_epoch + 1) * per_epoch, total)
        started = time.perf_counter()
        metrics = trainer.fit()
        seconds += time.perf_counter() - started
        step = int(trainer.step)
        switch = getattr(trainer.model, "linear_start_switch", None)
        curve.append({"epoch": int(trainer.epoch), "step": step, "sequences": step * trainer.global_batch,
                      "validation": metrics["validation"],
                      "linear_start": None if switch is None else float(switch.numpy())})
        with open(curve_path, "w") as f:
            json.dump({"curve": curve, "train_seconds": seconds}, f)
    return {"model_dir": model_dir, "seed": seed, "steps": step, "sequences": step * trainer.global_batch,
            "parameters": int(trainer.model.count_params()), "train_seconds": seconds, "curve": curve}


def ntm_overrides(name, sequences, validate_every, overrides=None):
    """The copy runs' config overrides: model `name` of NTM_MODELS, `validate_every` sequences per epoch, as many
    epochs as `sequences` needs, then `overrides`."""
    if sequences % validate_every:
        raise ValueError(f"sequences ({sequences}) must be a multiple of validate_every ({validate_every})")
    model, options = NTM_MODELS[name]
    return {"model": model, "model_options": options, "train_size": validate_every,
            "epochs": sequences // validate_every, **dict(overrides or {})}


def run_ntm(seeds, work_dir, sequences=256000, validate_every=8000, lengths=LENGTHS, overrides=None,
            jit_compile=True, log=sys.stderr):
    """{name: [result per seed]} of the copy comparison: `train_run`'s result with "test" ({length: bit errors per
    sequence of the best checkpoint}), "best_validation" and "sequences_to_converge" (the first validation below
    CONVERGED, None if never) added."""
    results = {}
    for name in NTM_MODELS:
        results[name] = []
        for seed in seeds:
            model_dir = os.path.join(work_dir, "ntm_copy", name, f"seed{seed}")
            result = train_run("ntm", "copy", seed, model_dir,
                               ntm_overrides(name, sequences, validate_every, overrides), jit_compile)
            result["test"] = {
                length: evaluate(model_dir, "test", "best", {"eval_min_length": length, "eval_max_length": length})[
                    "metrics"]["bit_errors"]
                for length in lengths
            }
            errors = [point["validation"]["bit_errors"] for point in result["curve"]]
            result["best_validation"] = min(errors) if errors else None
            result["sequences_to_converge"] = next(
                (point["sequences"] for point in result["curve"] if point["validation"]["bit_errors"] < CONVERGED),
                None)
            print(f"copy {name} seed {seed}: " + json.dumps({k: v for k, v in result.items() if k != "curve"}),
                  file=log, flush=True)
            results[name].append(result)
    return results


def run_babi(seeds, work_dir, overrides=None, jit_compile=True, log=sys.stderr):
    """[result per seed] of MemN2N on the `babi` task's default preset: `train_run`'s result with "test" (the test
    metrics of the best checkpoint by validation loss: error_N, mean_error, failed_tasks, accuracy) and
    "linear_start_ended" (the epoch after whose validation linear start ended, None if it never did)."""
    task = tasks.get("babi")
    results = []
    for seed in seeds:
        model_dir = os.path.join(work_dir, "babi", task.default_preset, f"seed{seed}")
        result = train_run("babi", task.default_preset, seed, model_dir, overrides, jit_compile)
        result["test"] = evaluate(model_dir, "test", "best")["metrics"]
        result["linear_start_ended"] = next(
            (point["epoch"] for point in result["curve"] if point["linear_start"] == 0.0), None)
        print(f"babi seed {seed}: " + json.dumps({k: v for k, v in result.items() if k != "curve"}), file=log,
              flush=True)
        results.append(result)
    return results


# The report.


def ntm_section(results, settings):
    """The copy comparison's table and what it shows."""
    lengths = settings["lengths"]
    longest = settings["config"]["max_length"]
    lines = [
        "## NTM against LSTM on copy",
        "",
        f"The `ntm` task's `copy` preset: random {settings['config']['bits']}-bit vectors, length uniform in "
        f"{settings['config']['min_length']}..{longest} for training, then a delimiter; the answer is the sequence "
        "again, with no input. Fresh sequences every batch (batch "
        f"{settings['config']['batch_size']}, Adam {settings['config']['learning_rate']:g}, global-norm clip "
        f"{settings['config']['clip_global_norm']:g}), {settings['sequences']:,} training sequences per run, "
        f"validated every {settings['validate_every']:,} on {settings['config']['validation_size']} fixed sequences "
        "of the training lengths. Test: the best checkpoint (by validation bit errors) on "
        f"{settings['config']['test_size']} fresh sequences of exactly each length; bit errors per sequence (the "
        "rounded sigmoid outputs against the targets, summed over the answer), mean ± std over the seeds. "
        f"Converged: the sequences seen at the first validation below {CONVERGED:g} bit errors, one number per seed "
        "(— : never within the run).",
        "",
        "| model | parameters | best validation | converged after (per seed) | "
        + " | ".join(f"length {n}" + (" (trained)" if n <= longest else "") for n in lengths)
        + " | training time per run |",
        "|---|---|---|---|" + "---|" * len(lengths) + "---|",
    ]
    for name, runs in results.items():
        converged = ", ".join(f"{r['sequences_to_converge']:,}" if r["sequences_to_converge"] is not None else "—"
                              for r in runs)
        lines.append(
            f"| {NTM_NAMES.get(name, name)} | {runs[0]['parameters']:,} | "
            f"{mean_and_spread([r['best_validation'] for r in runs], 3)} | {converged} | "
            + " | ".join(mean_and_spread([r["test"][n] for r in runs], 2) for n in lengths)
            + f" | {statistics.mean(r['train_seconds'] for r in runs) / 60:.1f} min |"
        )
    lines += ["", *ntm_findings(results, lengths, longest)]
    return "\n".join(lines)


def ntm_findings(results, lengths, longest):
    """Bullets in numbers taken from the results: convergence, copying at twice the longest training length."""
    lines = []
    trained = [n for n in lengths if n <= longest]
    if "ntm" in results and trained:
        worst = max(r["test"][n] for r in results["ntm"] for n in trained)
        verdict = "converged" if worst < CONVERGED else "did not converge"
        lines.append(f"- NTM at the training lengths ({', '.join(map(str, trained))}): at most {worst:.3f} bit "
                     f"errors per sequence over the seeds: {verdict} by the criterion (< {CONVERGED:g}).")
    twice = 2 * longest
    if twice in lengths:
        cells = ", ".join(f"{NTM_NAMES.get(name, name)} {statistics.mean(r['test'][twice] for r in runs):.2f}"
                          for name, runs in results.items())
        lines.append(f"- At length {twice}, twice the longest training sequence (mean bit errors per sequence of "
                     f"{twice * 8} bits): {cells}.")
    beyond = [n for n in lengths if n > twice]
    if beyond and "ntm" in results:
        cells = ", ".join(f"{n}: {statistics.mean(r['test'][n] for r in results['ntm']):.2f}" for n in beyond)
        lines.append(f"- Further out, the NTM's bit errors per sequence: {cells}. Graves et al. tested to 120, "
                     "where their NTM kept copying; the memory's 128 locations are the limit, beyond which the "
                     "shifts wrap around (results.md §1.12).")
    jumps = [f"{NTM_NAMES.get(name, name)} seed {r['seed']} ({jump})" for name, runs in results.items() for r in runs
             for jump in [_jump(r["curve"])] if jump]
    if jumps:
        lines.append(
            f"- Runs whose validation bit errors jumped back up by more than {JUMP:g} after being below 1 (a loss "
            "spike; the test columns score each run's best checkpoint): " + "; ".join(jumps) + "."
        )
    lines.append(
        "- The paper (Graves, Wayne & Danihelka 2014, Fig. 3): NTMs reach about 0 bits per sequence within about "
        "200k sequences, the LSTM (3 x 256, 1.35M parameters, far larger than here) stays well above "
        "(4.8 / 2.1 / 1.2 / 0.8 bits at 100k-400k in a digitised curve), and the LSTM degrades quickly beyond "
        "length 20 (results.md §1.12)."
    )
    return lines


def _jump(curve):
    """The first jump of a copy curve's validation bit errors by more than JUMP after a value below 1, in words, or
    None."""
    best = None
    for point in curve:
        errors = point["validation"]["bit_errors"]
        if best is not None and best[1] < 1.0 and errors > best[1] + JUMP:
            return (f"{best[1]:.2f} at {best[0]:,} sequences, {errors:.2f} at {point['sequences']:,}")
        if best is None or errors < best[1]:
            best = (point["sequences"], errors)
    return None


def ntm_curves_section(results, output_dir):
    path = _ntm_curves_figure(results, output_dir)
    return "\n".join([
        "## Copy learning curves",
        "",
        "Validation bit errors per sequence (training lengths) against training sequences seen, every seed a line; "
        f"dotted: {CONVERGED:g}.",
        "",
        f"![validation bit errors against sequences]({os.path.basename(path)})",
    ])


def _ntm_curves_figure(results, output_dir):
    plt = memory_figures._pyplot()
    figure, axis = plt.subplots(figsize=(6.5, 3.8))
    for index, (name, runs) in enumerate(results.items()):
        for number, r in enumerate(runs):
            axis.plot([p["sequences"] for p in r["curve"]], [p["validation"]["bit_errors"] for p in r["curve"]],
                      color=f"C{index}", alpha=0.8, marker=".", label=NTM_NAMES.get(name, name) if not number else None)
    axis.axhline(CONVERGED, color="grey", linestyle=":", linewidth=1)
    axis.set_yscale("symlog", linthresh=0.01)
    axis.set_ylim(bottom=0.0)
    axis.set(xlabel="training sequences seen", ylabel="validation bit errors per sequence", title="copy, lengths "
             "1-20")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path = os.path.join(output_dir, "memory_ntm_curves.png")
    return memory_figures._save(figure, path, plt)


def babi_section(results, settings):
    """MemN2N's test error per task against the paper's, and the QA1 verdict."""
    config = settings["babi_config"]
    qa = sorted(int(key[len("error_"):]) for key in results[0]["test"] if key.startswith("error_"))
    lines = [
        "## MemN2N on generated bAbI",
        "",
        f"The `babi` task's `{config['preset']}` preset: one model (`memn2n_babi_joint`: 3 hops, d = 50, position and "
        "temporal encoding, adjacent tying, linear start, 10% random noise) over the generated tasks "
        f"{', '.join(f'QA{n}' for n in qa)} ({config['train_questions']:,} training questions per task, "
        f"{config['validation_fraction']:.0%} of its stories held out for validation, {config['test_questions']:,} "
        f"test questions), {config['optimizer'].upper()} at {config['learning_rate']:g} (the paper's 0.01 on a "
        f"summed loss), halved every {config['learning_rate_decay_epochs']} epochs, {config['epochs']} epochs, "
        f"batch {config['batch_size']}. Test error of the best checkpoint (by validation loss), per seed and mean "
        "± std. Each seed generates its own stories. The paper's column: Sukhbaatar et al. 2015, Table 1, 1k "
        "training questions, \"PE LS RN joint\" (results.md §1.11), on Facebook's released tasks, not these "
        "generated ones: a reference, not the same test set.",
        "",
        "| task | test error per seed | mean | paper (PE LS RN joint, 1k) |",
        "|---|---|---|---|",
    ]
    for n in qa:
        errors = [100.0 * r["test"][f"error_{n}"] for r in results]
        paper = f"{PAPER_ERRORS[n]:.1f}%" if n in PAPER_ERRORS else "—"
        lines.append(f"| QA{n} | {', '.join(f'{e:.1f}%' for e in errors)} | {mean_and_spread(errors)}% | {paper} |")
    means = [100.0 * r["test"]["mean_error"] for r in results]
    failed = [r["test"]["failed_tasks"] for r in results]
    paper_mean = statistics.mean(PAPER_ERRORS[n] for n in qa) if all(n in PAPER_ERRORS for n in qa) else None
    lines += [
        f"| mean over these tasks | {', '.join(f'{e:.1f}%' for e in means)} | {mean_and_spread(means)}% | "
        + (f"{paper_mean:.1f}% (over all 20: {PAPER_MEAN}%) |" if paper_mean is not None else "— |"),
        f"| failed tasks (error > 5%) | {', '.join(f'{f:.0f}' for f in failed)} | {mean_and_spread(failed)} | "
        + (f"{sum(PAPER_ERRORS[n] > 100 * FAILED_ERROR for n in qa)} of these ({PAPER_FAILED} of all 20) |"
           if paper_mean is not None else "— |"),
        "",
    ]
    if 1 in qa:
        qa1 = [r["test"]["error_1"] for r in results]
        met = sum(error <= QA1_TARGET for error in qa1)
        lines.append(f"- Target on generated QA1, error <= {QA1_TARGET:.0%}: met by {met} of {len(qa1)} seeds "
                     f"(mean {100.0 * statistics.mean(qa1):.1f}%; the paper: {PAPER_ERRORS[1]:.1f}%).")
    ended = [r["linear_start_ended"] for r in results]
    lines.append("- Linear start ended after epoch " + ", ".join("—" if e is None else str(e) for e in ended)
                 + " (per seed; — : still on at the end), the first epoch whose validation loss was not below the "
                 "best before it.")
    return "\n".join(lines)


def babi_curves_section(results, output_dir):
    path = _babi_curves_figure(results, output_dir)
    return "\n".join([
        "## MemN2N learning curves",
        "",
        "Validation loss and accuracy (all tasks together) per epoch, every seed a line; dotted: the epoch after "
        "which that seed's linear start ended.",
        "",
        f"![MemN2N validation loss and accuracy per epoch]({os.path.basename(path)})",
    ])


def _babi_curves_figure(results, output_dir):
    plt = memory_figures._pyplot()
    figure, axes = plt.subplots(1, 2, figsize=(10.0, 3.6))
    for r in results:
        color = f"C{r['seed'] % 10}"
        epochs = [p["epoch"] for p in r["curve"]]
        axes[0].plot(epochs, [p["validation"]["loss"] for p in r["curve"]], color=color, label=f"seed {r['seed']}")
        axes[1].plot(epochs, [100.0 * p["validation"]["accuracy"] for p in r["curve"]], color=color)
        if r["linear_start_ended"] is not None:
            for axis in axes:
                axis.axvline(r["linear_start_ended"], color=color, linestyle=":", linewidth=1)
    axes[0].set(xlabel="epoch", ylabel="validation loss", ylim=(0, None))
    axes[1].set(xlabel="epoch", ylabel="validation accuracy (%)", ylim=(0, 101))
    for axis in axes:
        axis.xaxis.get_major_locator().set_params(integer=True)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    path = os.path.join(output_dir, "memory_babi_curves.png")
    return memory_figures._save(figure, path, plt)


def figures_section(ntm_results, babi_results, output_dir, length=20):
    """Draws seed 0's NTM copy run and MemN2N run (`memory_figures`)."""
    lines = ["## What the memories do", ""]
    if ntm_results and ntm_results.get("ntm"):
        run_dir = ntm_results["ntm"][0]["model_dir"]
        path = os.path.join(output_dir, "memory_ntm_copy.png")
        found = memory_figures.draw(run_dir, path, length=length)
        lines += [
            f"The NTM (seed {ntm_results['ntm'][0]['seed']}) on one copy sequence of {length} vectors "
            f"({found['bit_errors']:.0f} bit errors): the inputs and outputs over time, the write and the read "
            "weighting (the locations the heads touched, time along x; Graves et al. 2014, Fig. 6), and the memory "
            "after the input phase. Drawn by `python -m training.experiments.memory_figures "
            f"--model_dir={run_dir} --length={length} --output={path}`.",
            "",
            f"![NTM weightings and memory on one copy sequence]({os.path.basename(path)})",
            "",
        ]
    if babi_results:
        run_dir = babi_results[0]["model_dir"]
        path = os.path.join(output_dir, "memory_babi_attention.png")
        tasks_run = sorted(int(key[len("error_"):]) for key in babi_results[0]["test"] if key.startswith("error_"))
        qa = 2 if 2 in tasks_run else tasks_run[0]
        found = memory_figures.draw(run_dir, path, qa=qa)
        lines += [
            f"MemN2N (seed {babi_results[0]['seed']}) on the first QA{qa} test question, \"{found['question']}\" "
            f"(answer {found['answer']}, the model's {found['predicted']}): the attention over the story's sentences "
            "(rows, * the supporting facts) at each hop (columns; Sukhbaatar et al. 2015, Table 2). Drawn by "
            f"`python -m training.experiments.memory_figures --model_dir={run_dir} --qa={qa} --output={path}`.",
            "",
            f"![MemN2N attention at each hop]({os.path.basename(path)})",
            "",
        ]
    return "\n".join(lines).rstrip()


def report_sections(ntm_results, babi_results, settings, output_dir):
    """The report's sections, in order (Markdown strings); a part not run is left out."""
    sections = []
    if ntm_results:
        sections += [ntm_section(ntm_results, settings), ntm_curves_section(ntm_results, output_dir)]
    if babi_results:
        sections += [babi_section(babi_results, settings), babi_curves_section(babi_results, output_dir)]
    sections.append(figures_section(ntm_results, babi_results, output_dir))
    return sections


def header(command, settings, minutes):
    """The report's title and set-up; `minutes`: the runs' training time, all together."""
    seeds = []
    if settings.get("ntm_seeds"):
        seeds.append(f"copy seeds {', '.join(map(str, settings['ntm_seeds']))}")
    if settings.get("babi_seeds"):
        seeds.append(f"bAbI seeds {', '.join(map(str, settings['babi_seeds']))}")
    return "\n".join([
        "# Explicit memory: the Neural Turing Machine on copy, the End-to-End Memory Network on bAbI",
        "",
        f"Written by `{command}` on {datetime.date.today().isoformat()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}), {'; '.join(seeds)}: the "
        f"runs trained for {minutes:.0f} minutes in all (a rerun finds them finished in --work_dir and only evaluates "
        "them again)" + (", the training steps compiled with XLA." if settings.get("jit_compile") else "."),
    ])


def training_minutes(ntm_results, babi_results):
    runs = [r for by_model in (ntm_results or {}).values() for r in by_model] + list(babi_results or [])
    return sum(r["train_seconds"] for r in runs) / 60


def experiment_settings(ntm_seeds=(), babi_seeds=(), sequences=256000, validate_every=8000, lengths=LENGTHS,
                        ntm_override=None, babi_override=None, jit_compile=True):
    """What the report states about the runs: each part's config (the NTM run's), seeds, budget and lengths."""
    _, config = run_config_for("ntm", "copy", 0, ntm_overrides("ntm", sequences, validate_every, ntm_override))
    _, babi_config = run_config_for("babi", tasks.get("babi").default_preset, 0, babi_override)
    return {"config": config, "babi_config": babi_config, "ntm_seeds": list(ntm_seeds),
            "babi_seeds": list(babi_seeds), "sequences": sequences, "validate_every": validate_every,
            "lengths": list(lengths), "jit_compile": jit_compile}


def define_flags():
    """The command line's flags, defined when the module runs as a program (the other experiments define some of
    the same names, and tests import several of them in one process)."""
    flags.DEFINE_list("parts", list(PARTS), "Which parts to run: ntm (copy, NTM against LSTM), babi (MemN2N).")
    flags.DEFINE_integer("ntm_seeds", 2, "Seeds of each copy model (0, 1, ...).", lower_bound=1)
    flags.DEFINE_integer("babi_seeds", 3, "Seeds of MemN2N (0, 1, ...).", lower_bound=1)
    flags.DEFINE_integer("sequences", 256000, "Training sequences per copy run.", lower_bound=1)
    flags.DEFINE_integer("validate_every", 8000, "Training sequences between two validations of a copy run.",
                         lower_bound=1)
    flags.DEFINE_list("lengths", [str(n) for n in LENGTHS], "Copy test lengths.")
    flags.DEFINE_bool("jit_compile", True, "Compile the training steps with XLA.")
    flags.DEFINE_string("ntm_override", "", "Config overrides of every copy run, key=value,...")
    flags.DEFINE_string("babi_override", "", "Config overrides of every MemN2N run, key=value,... (e.g. epochs=20).")
    flags.DEFINE_string("work_dir", "runs/memory", "Where the runs live (reused when the experiment is rerun).")
    flags.DEFINE_string("output_dir", "docs/results", "Where memory.md and its figures are written.")


def main(argv):
    absl_warnings_only()
    del argv
    FLAGS = flags.FLAGS
    unknown = sorted(set(FLAGS.parts) - set(PARTS))
    if unknown or not FLAGS.parts:
        raise app.UsageError(f"unknown parts {unknown}; valid: {list(PARTS)}" if unknown else "name a part to run")
    try:
        lengths = [int(n) for n in FLAGS.lengths]
    except ValueError:
        raise app.UsageError(f"--lengths must be positive ints, got {FLAGS.lengths}") from None
    if any(n < 1 for n in lengths):
        raise app.UsageError(f"--lengths must be positive ints, got {FLAGS.lengths}")
    if FLAGS.sequences % FLAGS.validate_every:
        raise app.UsageError(f"--sequences ({FLAGS.sequences}) must be a multiple of --validate_every "
                             f"({FLAGS.validate_every})")
    ntm_override = run_config.parse_overrides(FLAGS.ntm_override)
    babi_override = run_config.parse_overrides(FLAGS.babi_override)
    ntm_seeds = list(range(FLAGS.ntm_seeds)) if "ntm" in FLAGS.parts else []
    babi_seeds = list(range(FLAGS.babi_seeds)) if "babi" in FLAGS.parts else []
    ntm_results = babi_results = None
    if ntm_seeds:
        ntm_results = run_ntm(ntm_seeds, FLAGS.work_dir, FLAGS.sequences, FLAGS.validate_every, lengths, ntm_override,
                              FLAGS.jit_compile)
    if babi_seeds:
        babi_results = run_babi(babi_seeds, FLAGS.work_dir, babi_override, FLAGS.jit_compile)
    command = "python -m training.experiments.memory" + "".join(
        f" --{name}={value}" for name, value, default in (
            ("parts", ",".join(FLAGS.parts), ",".join(PARTS)), ("ntm_seeds", FLAGS.ntm_seeds, 2),
            ("babi_seeds", FLAGS.babi_seeds, 3), ("sequences", FLAGS.sequences, 256000),
            ("validate_every", FLAGS.validate_every, 8000),
            ("lengths", ",".join(FLAGS.lengths), ",".join(map(str, LENGTHS))),
            ("jit_compile", str(FLAGS.jit_compile).lower(), "true"),
            ("ntm_override", FLAGS.ntm_override, ""), ("babi_override", FLAGS.babi_override, ""))
        if value != default)
    settings = experiment_settings(ntm_seeds, babi_seeds, FLAGS.sequences, FLAGS.validate_every, lengths,
                                   ntm_override, babi_override, FLAGS.jit_compile)
    sections = report_sections(ntm_results, babi_results, settings, FLAGS.output_dir)
    path = write_report(os.path.join(FLAGS.output_dir, "memory.md"),
                        header(command, settings, training_minutes(ntm_results, babi_results)), sections)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    run(main)
