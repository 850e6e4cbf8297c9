"""The lecture's third case, measured: an encoder–decoder without attention hands the decoder one fixed vector (the
problem of capacity); with attention each decoder step reads the source states it needs.

    python -m training.experiments.attention [--variants=dates,dates_long] [--attention=none,bahdanau,luong]
        [--seeds=2] [--eval_every_steps=52]

For each input variant (`dates`: a date alone, about 14 characters; `dates_long`: the same dates inside 5 to 8
filler words on either side, about 95 characters, `training.data.dates`), each attention (the translation task's
presets `dates_plain`, `dates`, `dates_luong` and their `dates_long*` twins, which differ only in the attention) and
each seed, it trains a run through the trainer (each in its own directory under --work_dir, so an interrupted
experiment resumes), and

1. every `eval_every_steps` steps, decodes the validation dates greedily and records their exact match: the
   learning curve, and the steps the run needed to reach 95%;
2. restores the best checkpoint (by validation perplexity) and translates the 1,000 test dates, never seen in
   training in any form, greedily and with beam search (the task's `translate`); exact match and chrF are
   `training.text.scores`', as in `training.evaluate`;
3. splits the long variant's test exact match by how far the date is from the nearer end of its source;
4. draws the attention of the dates and the long-dates Bahdanau runs (seed 0) on one source each
   (`training.experiments.attention_map`),
5. with --peer_seeds > 0, compares the translation presets with the encoder–decoder a Keras user writes and trains
   with `fit`, at equal size and epochs, on dates and on a synthetic language pair (`training.experiments.keras_peer`,
   its runs under --work_dir/keras_peer; about 30 more minutes with 3 seeds),

and writes docs/results/attention.md with its figures. The report is a header and a list of sections
(`report_sections`), each a Markdown string. About 65 minutes on 2 CPU cores with the defaults.
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
from training.data import dates as dates_data  # noqa: E402
from training.experiments import attention_map  # noqa: E402
from training.experiments import keras_peer  # noqa: E402
from training.text import scores  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

# {variant: {attention: the translation task's preset}}: within a variant the presets differ only in the attention.
PRESETS = {
    "dates": {"none": "dates_plain", "bahdanau": "dates", "luong": "dates_luong"},
    "dates_long": {"none": "dates_long_plain", "bahdanau": "dates_long", "luong": "dates_long_luong"},
}
ATTENTIONS = ("none", "bahdanau", "luong")
NAMES = {"none": "none (fixed vector)", "bahdanau": "Bahdanau (additive)", "luong": "Luong (general)"}
VARIANT_NAMES = {"dates": "dates (a date alone)", "dates_long": "long dates (a date inside filler words)"}
TARGET = 95.0  # the validation exact match (%) whose first crossing is "steps to 95%"
# The long variant's test exact match by the characters between the date and the nearer end of its source.
DISTANCE_BUCKETS = ((0, 34), (35, 44), (45, 1000))
# The sources the figures draw: {variant: source}.
MAP_SOURCES = {
    "dates": "Wednesday, 25 November 2026",
    "dates_long": "please send the budget review before 25 nov. 2026 and check our hotel ticket",
}
CURVE_FILE = "attention_curve.json"  # in a run's model_dir: its learning curve and training time


def run_config_for(variant, attention, seed, overrides=None):
    """(task, config) of one run: the preset of `variant` and `attention`, with `overrides` (sizes, steps ...)."""
    task = tasks.get("translation")
    preset = PRESETS[variant][attention]
    config = run_config.resolve(DEFAULTS, task.presets, preset, dict(overrides or {}))
    return task, {"task": task.name, "preset": preset, **config, "seed": seed}


def train_one(variant, attention, seed, work_dir, overrides=None, eval_every_steps=52):
    """Trains one run (or resumes it), measuring its validation exact match every `eval_every_steps` steps, then
    evaluates its best checkpoint on the test split. Returns a dict of what the report shows."""
    task, config = run_config_for(variant, attention, seed, overrides)
    model_dir = os.path.join(work_dir, variant, attention, f"seed{seed}")
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    total = config["steps"] or config["epochs"] * trainer.steps_per_epoch
    curve_path = os.path.join(model_dir, CURVE_FILE)
    saved = {"curve": [], "train_seconds": 0.0}
    if os.path.exists(curve_path):
        with open(curve_path) as f:
            saved = json.load(f)
    step = int(trainer.step) if trainer.restore("latest") else 0
    curve = [point for point in saved["curve"] if point[0] <= step]  # a run killed mid-chunk redoes that chunk
    seconds = saved["train_seconds"]
    sources, references = task.corpus(config).lines["validation"]
    while step < total:
        # `fit` trains to config["steps"] from the latest checkpoint: growing it a chunk at a time lets the
        # experiment decode between chunks without a hook in the trainer's loop.
        trainer.config["steps"] = min((step // eval_every_steps + 1) * eval_every_steps, total)
        started = time.perf_counter()
        trainer.fit()
        seconds += time.perf_counter() - started
        step = int(trainer.step)
        hypotheses = task.translate(trainer.config, trainer.model, sources, "greedy", batch_size=len(sources))
        curve.append([step, scores.exact_match(hypotheses, references)])
        with open(curve_path, "w") as f:
            json.dump({"curve": curve, "train_seconds": seconds}, f)
    trainer.restore("best")
    test_sources, test_references = task.corpus(config).lines["test"]
    result = {"variant": variant, "attention": attention, "seed": seed, "model_dir": model_dir,
              "steps": step, "train_seconds": seconds, "curve": curve,
              "steps_to_target": next((s for s, value in curve if value >= TARGET), None)}
    for method in ("greedy", "beam"):
        hypotheses = task.translate(config, trainer.model, test_sources, method)
        result[f"exact_match_{method}"] = scores.exact_match(hypotheses, test_references)
        result[f"chrf_{method}"] = scores.corpus_chrf(hypotheses, test_references)[0]
        if method == "greedy":
            result["correct_greedy"] = [h == r for h, r in zip(hypotheses, test_references)]
    print(f"{variant} {attention} seed {seed}: " + json.dumps(
        {k: v for k, v in result.items() if k not in ("curve", "correct_greedy")}), flush=True)
    return result


def run_experiment(variants, attentions, seeds, work_dir, overrides=None, eval_every_steps=52):
    """{variant: {attention: [result per seed]}} (`train_one`), seeds 0 .. seeds - 1."""
    return {variant: {attention: [train_one(variant, attention, seed, work_dir, overrides, eval_every_steps)
                                  for seed in range(seeds)]
                      for attention in attentions}
            for variant in variants}


def nearer_end_distances(config):
    """For each test example of the config's corpus: the characters between its date and the nearer end of the
    source (0 without filler)."""
    sizes = {"train": config["train_size"], "validation": config["validation_size"], "test": config["test_size"]}
    plain = dates_data.date_splits(sizes, seed=config["seed"])["test"]
    filled = dates_data.date_splits(sizes, seed=config["seed"], filler_words=config.get("filler_words"))["test"]
    distances = []
    for date_only, example in zip(plain, filled):
        before = example.source.index(date_only.source)
        distances.append(min(before, len(example.source) - before - len(date_only.source)))
    return distances


def mean_and_spread(values, digits=1):
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def steps_cell(runs):
    """Each seed's steps to the target, "—" for a seed that never reached it."""
    return ", ".join(str(r["steps_to_target"]) if r["steps_to_target"] is not None else "—" for r in runs)


def results_section(results, settings):
    lines = [
        "## Exact match on unseen dates",
        "",
        f"Test split: {settings['test_size']:,} dates never seen in training in any form (each seed draws its own "
        "splits), each in one form; the best checkpoint by validation perplexity. Exact match and chrF (0-100, "
        "sacrebleu) of the greedy and the beam-search translations (beam "
        f"{settings['beam_size']}, no length penalty). Mean ± std over the seeds. Steps to {TARGET:.0f}%: the "
        f"first step, measured every {settings['eval_every_steps']} steps, at which greedy decoding got "
        f"{TARGET:.0f}% of the {settings['validation_size']} validation dates exactly right, one number per seed "
        "(— : never within the run).",
        "",
        "| input | attention | exact match, greedy | exact match, beam | chrF, greedy | steps to "
        f"{TARGET:.0f}% (per seed) | training time per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, by_attention in results.items():
        for attention, runs in by_attention.items():
            lines.append(
                f"| {VARIANT_NAMES.get(variant, variant)} | {NAMES.get(attention, attention)} | "
                f"{mean_and_spread([r['exact_match_greedy'] for r in runs])}% | "
                f"{mean_and_spread([r['exact_match_beam'] for r in runs])}% | "
                f"{mean_and_spread([r['chrf_greedy'] for r in runs])} | {steps_cell(runs)} | "
                f"{statistics.mean(r['train_seconds'] for r in runs):.0f} s |"
            )
    return "\n".join(lines)


def findings_section(results):
    """What the tables show, in numbers taken from the results."""

    def mean(variant, attention, key="exact_match_greedy"):
        return statistics.mean(r[key] for r in results[variant][attention])

    lines = ["## What it shows", ""]
    if "none" in results.get("dates", {}) and "none" in results.get("dates_long", {}):
        lines.append(
            f"- The capacity argument, measured: without attention the same model gets {mean('dates', 'none'):.1f}% "
            f"of the dates alone right and {mean('dates_long', 'none'):.1f}% once each date sits inside filler "
            "words (chrF "
            f"{mean('dates', 'none', 'chrf_greedy'):.1f} -> {mean('dates_long', 'none', 'chrf_greedy'):.1f}): its "
            "one fixed vector, the encoder's final states, does not bring the date through the filler to the decoder."
        )
    for variant, by_attention in results.items():
        attending = [a for a in by_attention if a != "none"]
        if not attending:
            continue
        best = max(attending, key=lambda a: mean(variant, a))
        lines.append(
            f"- {VARIANT_NAMES.get(variant, variant).capitalize()}: the best attention, {NAMES.get(best, best)}, gets "
            f"{mean(variant, best):.1f}% (greedy) of the unseen test dates right"
            + (f", against {mean(variant, 'none'):.1f}% without attention" if "none" in by_attention else "") + "."
        )
    unfinished = [f"{NAMES.get(a, a)} on {VARIANT_NAMES.get(v, v)}, seed {r['seed']} (validation exact match "
                  f"{r['curve'][-1][1]:.1f}% at the last step, {_rising(r['curve'])})"
                  for v, by_attention in results.items() for a, runs in by_attention.items() if a != "none"
                  for r in runs if r["steps_to_target"] is None and r["curve"]]
    if unfinished:
        lines.append(f"- Attending runs that did not reach {TARGET:.0f}% within the budget: " + "; ".join(unfinished)
                     + ". How many steps a run needs before its attention locks on varies with the seed.")
    dropped = [f"{NAMES.get(a, a)} on {VARIANT_NAMES.get(v, v)}, seed {r['seed']} "
               f"({max(x for _, x in r['curve']):.1f}% at best, {r['curve'][-1][1]:.1f}% at step {r['curve'][-1][0]})"
               for v, by_attention in results.items() for a, runs in by_attention.items() for r in runs
               if r["curve"] and max(x for _, x in r["curve"]) - r["curve"][-1][1] > 20]
    if dropped:
        lines.append(
            "- Runs whose validation exact match ended more than 20 points below its best (a late loss spike; Adam at "
            "this learning rate, no decay): " + "; ".join(dropped) + ". The test columns score each run's best "
            "checkpoint by validation perplexity, from before the drop."
        )
    gains = {a: statistics.mean(r["exact_match_beam"] - r["exact_match_greedy"] for by_attention in results.values()
                                for r in by_attention.get(a, []))
             for a in ATTENTIONS if any(a in by_attention for by_attention in results.values())}
    lines.append(
        "- Beam search against greedy decoding, exact match points gained (mean over every run): "
        + ", ".join(f"{NAMES.get(a, a)} {gain:+.1f}" for a, gain in gains.items())
        + ". A date has one right answer; a model that attends mostly has it at the top already."
    )
    return "\n".join(lines)


def _rising(curve):
    """Whether the last third of a learning curve still rises (in words)."""
    tail = [value for _, value in curve[-max(2, len(curve) // 3):]]
    return "still rising" if tail[-1] > tail[0] else "flat"


def distance_section(results, distances):
    """The long variant's test exact match (greedy) by the date's distance from the nearer end of its source,
    pooled over seeds; `distances` = {seed: [distance per test example]}."""
    lines = [
        "## The long variant: exact match against the date's distance from the source's ends",
        "",
        "A bidirectional encoder's final states are its forward state after the last character and its backward "
        "state after the first: without attention, the date must be carried to the decoder through the filler on "
        "at least one side. Test exact match (greedy) by the number of characters between the date and the nearer "
        "end of its source, pooled over the seeds (n: test examples in the bucket, over all seeds).",
        "",
        "| attention | " + " | ".join(_bucket_name(b) for b in DISTANCE_BUCKETS) + " |",
        "|---|" + "---|" * len(DISTANCE_BUCKETS),
    ]
    for attention, runs in results.items():
        cells = []
        for low, high in DISTANCE_BUCKETS:
            hits = [correct for r in runs for correct, d in zip(r["correct_greedy"], distances[r["seed"]])
                    if low <= d <= high]
            cells.append(f"{100.0 * sum(hits) / len(hits):.1f}% (n={len(hits)})" if hits else "—")
        lines.append(f"| {NAMES.get(attention, attention)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _bucket_name(bucket):
    low, high = bucket
    return f"{low}-{high} characters" if high < 1000 else f">= {low} characters"


def curves_section(results, output_dir):
    path = _curves_figure(results, output_dir)
    return "\n".join([
        "## Learning curves",
        "",
        "Greedy exact match on the validation dates during training, every seed a line.",
        "",
        f"![validation exact match against training steps]({os.path.basename(path)})",
    ])


def _curves_figure(results, output_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.8), sharey=True, squeeze=False)
    for axis, (variant, by_attention) in zip(axes[0], results.items()):
        for index, (attention, runs) in enumerate(by_attention.items()):
            for number, r in enumerate(runs):
                steps, values = zip(*r["curve"]) if r["curve"] else ((), ())
                axis.plot(steps, values, color=f"C{index}", alpha=0.8,
                          label=NAMES.get(attention, attention) if number == 0 else None)
        axis.axhline(TARGET, color="grey", linestyle=":", linewidth=1)
        axis.set(xlabel="training step", title=VARIANT_NAMES.get(variant, variant), ylim=(0, 101))
        axis.legend(fontsize=8, loc="lower right")
    axes[0][0].set_ylabel("validation exact match (%)")
    figure.tight_layout()
    path = os.path.join(output_dir, "attention_curves.png")
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


def maps_section(results, output_dir):
    """Draws the attention of seed 0's Bahdanau run of each variant on its `MAP_SOURCES` source."""
    lines = ["## Where the decoder looks", ""]
    for variant, by_attention in results.items():
        if "bahdanau" not in by_attention:
            continue
        run_dir = by_attention["bahdanau"][0]["model_dir"]
        path = os.path.join(output_dir, f"attention_{variant}.png")
        drawn = attention_map.draw(run_dir, MAP_SOURCES.get(variant, MAP_SOURCES["dates"]), path)
        lines += [
            f"{VARIANT_NAMES.get(variant, variant).capitalize()}: \"{drawn['source']}\" -> \"{drawn['translation']}\" "
            "(Bahdanau, seed 0, greedy); each row is one output character's alignment over the source characters. "
            f"Drawn by `python -m training.experiments.attention_map --model_dir={run_dir} "
            f"--source=\"{drawn['source']}\" --out={path}`.",
            "",
            f"![attention of the {variant} model]({os.path.basename(path)})",
            "",
        ]
    return "\n".join(lines).rstrip()


def report_sections(results, settings, output_dir):
    """The report's sections, in order (Markdown strings)."""
    sections = [results_section(results, settings), findings_section(results)]
    if "dates_long" in results:
        config = run_config_for("dates_long", next(iter(results["dates_long"])), 0, settings["overrides"])[1]
        seeds = {r["seed"] for runs in results["dates_long"].values() for r in runs}
        distances = {seed: nearer_end_distances({**config, "seed": seed}) for seed in seeds}
        sections.append(distance_section(results["dates_long"], distances))
    sections.append(curves_section(results, output_dir))
    sections.append(maps_section(results, output_dir))
    return sections


def header(command, settings, minutes):
    """The report's title and set-up; `minutes`: the runs' training time, all together."""
    config = settings["config"]
    data = (
        "Task: the translation task's dates (`training.data.dates`): a date as people write it (15 forms, month and "
        "weekday names in English, German, French and Spanish) to ISO `2026-11-25`, characters in and out; "
        f"{config['train_size']:,} training pairs, {config['validation_size']} validation and "
        f"{config['test_size']:,} test dates, the held-out dates never seen in training."
    )
    if settings["filler_words"]:
        low, high = settings["filler_words"]
        data += (
            f" The long variant (the `dates_long` presets) writes the same dates, in the same forms, inside {low} to "
            f"{high} filler words on either side (\"please confirm budget review 25.11.2026 team notes draft agenda "
            f"window\"): {settings['mean_chars']['dates_long']:.0f} characters per training source on average"
            + (f" instead of {settings['mean_chars']['dates']:.0f}" if "dates" in settings["mean_chars"] else "")
            + ", the date in the middle."
        )
    return "\n".join([
        "# Attention: the encoder–decoder with and without it, on dates and on long dates",
        "",
        f"Written by `{command}` on {datetime.date.today().isoformat()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}), seeds "
        f"{', '.join(str(s) for s in range(settings['seeds']))}: the runs trained for {minutes:.0f} minutes in all "
        "(a rerun finds them finished in --work_dir and only evaluates them again).",
        "",
        data,
        "",
        "Model: the same `zoo.models.Seq2Seq` for every row, a bidirectional LSTM encoder (64 units each way, "
        "character embeddings of 32), a dense bridge of its final states to the LSTM decoder's initial state, and "
        "the attention of the row (`seq2seq_plain`, `seq2seq_bahdanau`, `seq2seq_luong`: 64 attention units, an "
        "attentional vector of 64 fed to the next step). Training: the trainer, Adam at "
        f"{config['learning_rate']:g}, batch {config['batch_size']}, global-norm clipping at "
        f"{config['clip_global_norm']:g}, {settings['steps']} steps for every run; the training time includes "
        "the validation passes the trainer makes, not the exact-match decoding of the learning curves.",
    ])


def training_minutes(results):
    return sum(r["train_seconds"] for by_attention in results.values() for runs in by_attention.values()
               for r in runs) / 60


def write_report(path, head, sections):
    """Writes the report: `head`, then each section, blank lines between."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n\n".join([head, *sections]) + "\n")
    return path


def define_flags():
    """The command line's flags, defined when the module runs as a program (the other experiments define some of
    the same names, and tests import several of them in one process)."""
    flags.DEFINE_list("variants", list(PRESETS), "Input variants to compare.")
    flags.DEFINE_list("attention", list(ATTENTIONS), "Attentions to compare.")
    flags.DEFINE_integer("seeds", 2, "Seeds per (variant, attention).", lower_bound=1)
    flags.DEFINE_integer("eval_every_steps", 52, "Steps between two measurements of the validation exact match.",
                         lower_bound=1)
    flags.DEFINE_string("override", "", "Config overrides for every run, key=value,... (e.g. epochs=5).")
    flags.DEFINE_string("work_dir", "runs/attention", "Where the runs live (reused when the experiment is rerun).")
    flags.DEFINE_string("output_dir", "docs/results", "Where attention.md and its figures are written.")
    flags.DEFINE_integer("peer_seeds", 3, "Seeds of the comparison with the Keras peer (0: leave it out).",
                         lower_bound=0)


def main(argv):
    absl_warnings_only()
    del argv
    FLAGS = flags.FLAGS
    for name, values, allowed in (("variants", FLAGS.variants, PRESETS), ("attention", FLAGS.attention, ATTENTIONS)):
        unknown = sorted(set(values) - set(allowed))
        if unknown:
            raise app.UsageError(f"unknown {name} {unknown}; valid: {sorted(allowed)}")
    overrides = run_config.parse_overrides(FLAGS.override)
    results = run_experiment(FLAGS.variants, FLAGS.attention, FLAGS.seeds, FLAGS.work_dir, overrides,
                             FLAGS.eval_every_steps)
    command = "python -m training.experiments.attention" + "".join(
        f" --{name}={value}" for name, value, default in (
            ("variants", ",".join(FLAGS.variants), ",".join(PRESETS)),
            ("attention", ",".join(FLAGS.attention), ",".join(ATTENTIONS)),
            ("seeds", FLAGS.seeds, 2), ("eval_every_steps", FLAGS.eval_every_steps, 52),
            ("override", FLAGS.override, ""), ("peer_seeds", FLAGS.peer_seeds, 3))
        if value != default)
    settings = experiment_settings(FLAGS.variants, FLAGS.attention, FLAGS.seeds, overrides, FLAGS.eval_every_steps)
    sections = report_sections(results, settings, FLAGS.output_dir)
    if FLAGS.peer_seeds:
        sections.append(keras_peer.compare(os.path.join(FLAGS.work_dir, "keras_peer"),
                                           seeds=tuple(range(FLAGS.peer_seeds)), log=sys.stderr))
    path = write_report(os.path.join(FLAGS.output_dir, "attention.md"),
                        header(command, settings, training_minutes(results)), sections)
    print(f"wrote {path}", file=sys.stderr)


def experiment_settings(variants, attentions, seeds, overrides, eval_every_steps):
    """What the report states about the runs: the first variant's config (the sizes and training settings every
    run shares), the long variant's filler, the seeds, the steps per run, the overrides."""
    task, config = run_config_for(variants[0], attentions[0], 0, overrides)
    steps = config["steps"] or config["epochs"] * task.steps_per_epoch(config, config["batch_size"])
    filler, mean_chars = None, {}
    for variant in variants:
        variant_task, variant_config = run_config_for(variant, attentions[0], 0, overrides)
        sources = variant_task.corpus(variant_config).lines["train"][0]
        mean_chars[variant] = sum(len(source) for source in sources) / len(sources)
        filler = variant_config.get("filler_words") or filler
    return {"config": config, "seeds": seeds, "steps": steps, "overrides": dict(overrides or {}),
            "filler_words": filler, "mean_chars": mean_chars,
            "eval_every_steps": eval_every_steps, "test_size": config["test_size"],
            "validation_size": config["validation_size"], "beam_size": config["beam_size"]}


if __name__ == "__main__":
    define_flags()
    run(main)
