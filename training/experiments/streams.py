"""Character-level language models on one stream of text, trained with truncated BPTT and a carried state: the LSTM
against the issue's target, five models on the same parameter and wall-clock budget, and the LSTM trained sentence by
sentence against streamed.

    python -m training.experiments.streams [--target_minutes=60] [--models=char_lstm,char_gru,char_elman,char_gcnn,
        char_ffnn] [--minutes=20] [--compare] [--seed=0] [--data_dir=FILE_OR_DIR (default: the bundled tiny
        Shakespeare)] [--jit_compile=target,models (default: no part compiles with XLA)]

Every model is a preset of the language_model task (`char_*`: streams of characters, the state carried from window
to window, `training.data.streams`). A run trains epoch after epoch until one more epoch, as long as the last, would
take its training time (validation passes left out) past its budget; the runs live under --work_dir, so an
interrupted experiment resumes where it was (the training time so far is kept in the run's streams_timing.json),
losing at most the epoch it was in. The best checkpoint by validation perplexity is evaluated on the test split,
streamed with the state carried through it: nats per character = ln(perplexity), a character being every character
of the text and every line end (`<eos>`), as char-rnn and nanoGPT count them.

Three parts, each skipped when its flag is empty or off:
1. The target (`--target_minutes`, 0 skips): `char_lstm` trained for that long (the issue: <= 1.35 nats per character
   on the test split within an hour on 2 cores).
2. The comparison (`--models`, each for `--minutes`): the models on the same budget, one after the other in one
   invocation, so on one machine (a wall-clock budget means nothing across machines of different speeds; every
   result records its machine and its measured matrix-product speed, and the report says when they differ).
3. Sentence by sentence against streamed (`--compare`, with the target): `char_lstm` trained sentence by sentence
   (`bptt_steps` None: every line a sequence of its own from `<bos>`, the state reset) for as many steps as the target
   run took, both measured on the test split by `stream_nats` (the whole split, one stream, the state carried
   through it; the sentence-trained model has never seen a state carried over a line end, which is the point) and
   by their own modes.

Each finished run's result (metrics, validation curve, sample, machine) is also recorded in docs/results/streams/
NAME_seedS.json and reused by a later invocation with the same preset, seed, budget and overrides
(`training.experiments.records`), so the parts can be run in separate invocations and the report written from the
records; remove a record to train its run again.

Writes docs/results/streams.md and streams_curves.png (validation nats per character against training minutes).
"""

import datetime
import io
import json
import math
import os
import platform
import sys

import numpy as np
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

tf = import_tensorflow()

import keras  # noqa: E402

from training import config as run_config  # noqa: E402
from training import machine  # noqa: E402
from training import tasks  # noqa: E402
from training.data import text_corpus  # noqa: E402
from training.experiments import language_models  # noqa: E402
from training.experiments import memory_figures  # noqa: E402
from training.experiments import records  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

MODELS = ("char_lstm", "char_gru", "char_elman", "char_gcnn", "char_ffnn")
TARGET_PRESET = "char_lstm"
NAMES = {"char_lstm": "LSTM", "char_gru": "GRU", "char_elman": "Elman RNN", "char_gcnn": "gated CNN",
         "char_ffnn": "feed-forward n-gram"}
# The target: the streamed LSTM's test nats per character, within an hour of training on 2 cores.
TARGET_NATS = 1.35
TARGET_MINUTES = 60.0
TIMING_FILE = "streams_timing.json"

FLAGS = flags.FLAGS

# The parts `--jit_compile` names. No part compiles with XLA by default: on 2 CPU cores (TF 2.21) XLA slowed the
# training step of every char_* preset, 30 steps of `python -m training.train --task=language_model --preset=P
# --steps=30 [--jit_compile]`, steps/s with and without XLA: char_lstm 0.79 / 1.05, char_gru 0.91 / 0.94, char_elman
# 0.57 / 1.18, char_gcnn 1.20 / 1.25, char_ffnn 0.19 / 1.60 (an epoch of the feed-forward model took 894 s with XLA,
# 112 s without).
JIT_COMPILE_PARTS = ("target", "models")


def define_flags():
    """The command line's flags (defined when the module runs as a program: other experiments define some of the
    same names, and tests import several of them in one process)."""
    flags.DEFINE_float("target_minutes", TARGET_MINUTES, f"Training time of the target run ({TARGET_PRESET}); 0 "
                       "skips it.", lower_bound=0.0)
    flags.DEFINE_list("models", list(MODELS), "Presets of the language_model task to compare on the same budget "
                      "(empty: no comparison).")
    flags.DEFINE_float("minutes", 20.0, "Training time of each compared model (validation passes left out).",
                       lower_bound=0.01)
    flags.DEFINE_integer("seed", 0, "The seed of every run.", lower_bound=0)
    flags.DEFINE_string("data_dir", None, "A text file or a Penn Treebank layout directory (default: the presets' "
                        "bundled tiny Shakespeare).")
    flags.DEFINE_boolean("compare", True, f"Also train {TARGET_PRESET} sentence by sentence for as many steps as the "
                         "target run.")
    flags.DEFINE_list("jit_compile", [], "The parts whose runs compile their training step with XLA: target (the "
                      "target run and its sentence-by-sentence twin), models (the comparison). Default: none (see "
                      "JIT_COMPILE_PARTS).")
    flags.register_validator("jit_compile", lambda parts: set(parts) <= set(JIT_COMPILE_PARTS),
                             f"--jit_compile names parts of the experiment: any of {list(JIT_COMPILE_PARTS)}")
    flags.DEFINE_string("work_dir", "runs/streams", "Where the runs live (reused when the experiment is rerun).")
    flags.DEFINE_string("output_dir", "docs/results", "Where streams.md and its figure are written.")


# Checkpoints at epoch ends only: the training time is recorded an epoch at a time, so a run killed mid-epoch loses
# that epoch's steps with its time instead of keeping steps whose time was never counted.
EPOCH_ENDS_ONLY = 10**9


def run_config_for(preset, seed, overrides):
    task = tasks.get("language_model")
    config = run_config.resolve(DEFAULTS, task.presets, preset, {"checkpoint_every_steps": EPOCH_ENDS_ONLY,
                                                                  **overrides})
    return task, {"task": task.name, "preset": preset, **config, "seed": seed}


def another_epoch_fits(timing, minutes):
    """Whether a run with this timing record starts another epoch within a budget of `minutes` of training: the first
    epoch always runs; after it, one more runs when an epoch as long as the last one ends within the budget, so the
    run's training time stays under it (an epoch of tiny Shakespeare takes minutes here, and the last one's
    checkpoint may be the best)."""
    if not timing["curve"]:
        return timing["seconds"] < minutes * 60
    return timing["seconds"] + _last_epoch_seconds(timing["curve"]) <= minutes * 60


def _last_epoch_seconds(curve):
    return (curve[-1][0] - (curve[-2][0] if len(curve) > 1 else 0.0)) * 60


def train_for(task, config, model_dir, minutes, jit_compile=False, max_steps=None):
    """Trains the run in `model_dir` an epoch at a time while another epoch fits in `minutes` of training time
    (validation passes left out; see `another_epoch_fits`), or, with `max_steps`, for that many steps. Returns the
    run's timing record: {"seconds", "steps", "curve": [[minutes, step, validation nats], ...]}, also kept in the
    run's streams_timing.json, so that a rerun goes on where an interrupted one stopped."""
    path = os.path.join(model_dir, TIMING_FILE)
    timing = {"seconds": 0.0, "steps": 0, "curve": []}
    if os.path.exists(path):
        with open(path) as f:
            timing = json.load(f)
    trainer = Trainer(task, {**config, "epochs": 1, "steps": max_steps}, model_dir, jit_compile=jit_compile,
                      progress="lines", out=io.StringIO())

    def record(entries):
        for entry in entries:
            timing["seconds"] += entry["seconds"]
            timing["steps"] = entry["step"]
            timing["curve"].append([timing["seconds"] / 60, entry["step"], math.log(entry["validation"]["perplexity"])])
        with open(path, "w") as f:
            json.dump(timing, f)

    if max_steps is not None:
        if timing["steps"] < max_steps:
            trainer.config["epochs"] = math.ceil(max_steps / trainer.steps_per_epoch)
            trainer.fit()
            record(trainer.history)
            timing["steps"] = int(trainer.step)  # the last epoch may be cut short: it has no history entry
            with open(path, "w") as f:
                json.dump(timing, f)
        return timing
    trainer.restore("latest")
    if int(trainer.step) > timing["steps"]:
        # Killed after an epoch's checkpoint and before its record: the epoch's time is taken as the last recorded
        # epoch's, its validation figure measured again.
        if not timing["curve"]:
            raise RuntimeError(f"{model_dir} holds a trained epoch whose time was never recorded: remove the directory "
                               "to train the run again")
        timing["seconds"] += _last_epoch_seconds(timing["curve"])
        timing["steps"] = int(trainer.step)
        nats = math.log(trainer.evaluate("validation")["perplexity"])
        timing["curve"].append([timing["seconds"] / 60, timing["steps"], nats])
        with open(path, "w") as f:
            json.dump(timing, f)
    while another_epoch_fits(timing, minutes):  # the trainer is at the latest checkpoint: restored above, or fit
        trainer.config["epochs"] = int(trainer.epoch) + 1
        trainer.history.clear()
        trainer.fit()
        record(trainer.history)
    return timing


def stream_nats(model, ids, window=1000):
    """Nats per token of `model` over the whole token sequence `ids` (1-D), as one stream: each token from the
    ones before it, the state carried from window to window. Every token but the first is scored."""
    ids = np.asarray(ids, "int32")

    # One graph per window length (the last window may be shorter): run eagerly, a recurrent layer's loop steps op by
    # op from Python: more than 10 minutes for char_gru on the 55,757 characters of tiny Shakespeare's test split.
    @tf.function(reduce_retracing=True)
    def window_nll(inputs, targets, state):
        logits, state = model(inputs, initial_state=state, return_state=True)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=tf.cast(logits, tf.float32))
        return tf.reduce_sum(nll), state

    state, total = model.initial_state(1), 0.0
    for start in range(0, len(ids) - 1, window):
        inputs = ids[None, start : min(start + window, len(ids) - 1)]
        targets = ids[None, start + 1 : start + 1 + inputs.shape[1]]
        nll, state = window_nll(tf.constant(inputs), tf.constant(targets), state)
        total += float(nll)
    return total / (len(ids) - 1)


def sample_text(model, vocabulary, length=400, temperature=0.8, seed=0):
    """`length` characters drawn from `model` (a character-level LM) after a line end, at `temperature`; `<eos>`
    is written as a line end, and the ids that are not characters (`<pad>`, `<bos>`, `<unk>`) are never drawn."""
    rng = np.random.default_rng(seed)
    banned = [vocabulary.pad_id, vocabulary.bos_id, vocabulary.unk_id]
    state, token, characters = model.initial_state(1), vocabulary.eos_id, []
    for _ in range(length):
        logits, state = model.step(np.array([token], "int32"), state)
        logits = keras.ops.convert_to_numpy(logits)[0].astype("float64") / temperature
        logits[banned] = -np.inf
        probabilities = np.exp(logits - logits.max())
        token = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
        characters.append("\n" if token == vocabulary.eos_id else vocabulary.tokens[token])
    return "".join(characters)


def run_model(preset, seed, minutes, work_dir, overrides=None, jit_compile=False, max_steps=None, name=None,
              sample_length=400, record_dir=None):
    """Trains one preset for `minutes` (see `train_for`) and measures its best checkpoint on the test split.

    With `record_dir`, the finished result is also recorded there (`training.experiments.records`), and a later call
    with the same preset, seed, budget and overrides returns that record without training: an experiment of several
    hour-long runs can be run a few models at a time (`--models`) and its report written from the records (they are
    small: metrics, the validation curve and the sample). Remove a record to train its model again."""
    budget = {"preset": preset, "seed": seed, "minutes": minutes if math.isfinite(minutes) else None,
              "max_steps": max_steps, "overrides": overrides or {}, "sample_length": sample_length,
              "jit_compile": bool(jit_compile)}
    recorded = records.load(record_dir, name or preset, seed, budget) if record_dir else None
    if recorded is not None:
        return recorded
    task, config = run_config_for(preset, seed, overrides or {})
    model_dir = os.path.join(work_dir, name or preset, f"seed{seed}")
    trained_on = machine_info()
    timing = train_for(task, config, model_dir, minutes, jit_compile=jit_compile, max_steps=max_steps)
    trainer = Trainer(task, {**config, "epochs": max(len(timing["curve"]), 1)}, model_dir, progress="lines",
                      out=io.StringIO())
    if timing["curve"] and trainer.restore("best"):
        # The best checkpoint's validation figure: the lowest on the curve (a trainer restored to "best" holds the
        # model's weights, not the monitored value).
        validation_nats = min(point[2] for point in timing["curve"])
    else:
        # A run shorter than an epoch has no validation pass and no best checkpoint: its last weights are measured.
        trainer.restore("latest")
        validation_nats = math.log(trainer.evaluate("validation")["perplexity"])
    corpus = task.corpus(config)
    test = trainer.evaluate("test")
    result = {
        "preset": preset,
        "streams": task.streams(config),
        "parameters": int(sum(np.prod(v.shape) for v in trainer.model.trainable_variables)),
        "minutes": timing["seconds"] / 60,
        "steps": timing["steps"],
        "curve": timing["curve"],
        "validation_nats": validation_nats,
        "test_nats": math.log(test["perplexity"]),
        "test_nats_streamed": stream_nats(trainer.model, corpus.stream_ids("test")),
        "test_tokens": int(len(corpus.stream_ids("test")) - 1),
        "sample": sample_text(trainer.model, corpus.vocabulary, length=sample_length, seed=seed),
        "machine": trained_on,
        "jit_compile": bool(jit_compile),
    }
    print(f"{name or preset} seed {seed}: " + json.dumps({k: v for k, v in result.items() if k not in ("curve",
                                                                                                         "sample")}),
          flush=True)
    if record_dir:
        records.save(record_dir, name or preset, seed, budget, result)
    return result


def machine_info():
    """{"processor", "cores", "matmul_gflops", "date"} of the machine a run trains on (`training.machine`)."""
    return {**machine.describe(), "date": datetime.date.today().isoformat()}


def speaker_turns(lines):
    """The speaker names of a play's text: every line that follows a blank line (or starts the text), ends with ":"
    and is at most four words ("KING RICHARD III:", "First Citizen:"), without its colon."""
    return [line[:-1] for i, line in enumerate(lines)
            if (i == 0 or not lines[i - 1].strip()) and line.endswith(":") and 1 <= len(line[:-1].split()) <= 4]


def unseen_speakers(splits):
    """For a play's text (`read_text_corpus`): {split: (turns, turns by speakers never named in training, [those
    names])} for validation and test; {} when the training text names no speaker."""
    known = set(speaker_turns(splits["train"]))
    if not known:
        return {}
    result = {}
    for split in ("validation", "test"):
        turns = speaker_turns(splits[split])
        new = [name for name in turns if name not in known]
        result[split] = (len(turns), len(new), sorted(set(new)))
    return result


def _bits(nats):
    return nats / math.log(2)


def _row(r):
    return (f"| {NAMES.get(r['preset'], r['preset'])} (`{r['preset']}`) | {r['parameters']:,} | {r['minutes']:.1f} | "
            f"{r['steps']:,} | {r['validation_nats']:.3f} | {r['test_nats_streamed']:.3f} | "
            f"{_bits(r['test_nats_streamed']):.3f} |")


TABLE = ["| model | parameters | training minutes | steps | validation nats/char | test nats/char | test bits/char |",
         "|---|---|---|---|---|---|---|"]


def _machine(r):
    m = r.get("machine")
    return f"{m['processor']}, {m['cores']} cores, {m['matmul_gflops']:g} GFLOP/s float32 matmul, {m['date']}" if m \
        else "machine not recorded"


# The matrix-product readings of one machine, taken at each run's start, spread by up to about 20% (five runs in one
# invocation on one 2-core machine read 225 to 273 GFLOP/s): runs on one processor whose readings stay within this
# ratio are reported as one machine.
SAME_MACHINE_SPEED_RATIO = 1.3


def _xla(runs):
    """How the runs' training steps were compiled, in words."""
    compiled = [r for r in runs if r.get("jit_compile")]
    if not compiled:
        return "the training step without XLA"
    if len(compiled) == len(runs):
        return "the training step compiled with XLA"
    return ("the training step compiled with XLA for " + ", ".join(f"`{r['preset']}`" for r in compiled)
            + " and without it for the others: the minutes do not compare")


def _machines(results):
    """The sentence's words for the machines the compared runs trained on: one machine, or those that differ."""
    recorded = [r.get("machine") for r in results]
    if all(recorded):
        kinds = {(m["processor"], m["cores"]) for m in recorded}
        speeds = [m["matmul_gflops"] for m in recorded]
        if len(kinds) == 1 and max(speeds) <= SAME_MACHINE_SPEED_RATIO * min(speeds):
            ((processor, cores),) = kinds
            dates = sorted({m["date"] for m in recorded})
            return (f"one machine ({processor}, {cores} cores, {min(speeds):g} to {max(speeds):g} GFLOP/s float32 "
                    f"matmul as measured at each run's start, {', '.join(dates)})")
    machines = sorted({_machine(r) for r in results})
    return machines[0] if len(machines) == 1 else (
        "machines that differ (" + "; ".join(machines) + "): the minutes do not compare")


def write_report(target, results, comparison, settings, output_dir):
    """Writes streams.md (and streams_curves.png) from `run_model` results: the target run (or None), the compared
    models (a list, maybe empty) and the sentence-by-sentence comparison ((streamed, sentences) or None); returns
    the report's path."""
    os.makedirs(output_dir, exist_ok=True)
    lines = [
        "# Character-level language models on one stream of text (truncated BPTT)",
        "",
        f"Written by `{settings['command']}` on {datetime.date.today().isoformat()} (TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}); seed {settings['seed']}. Each run's machine is given with it: training "
        "minutes compare only on one machine.",
        "",
        "Every model is the language_model task's preset of its name, trained with truncated BPTT: the text is cut "
        "into parallel streams, each batch is the next window of every stream, and the state at the end of a window "
        "starts the next (its gradient stopped). A run trains epoch after epoch while one more epoch fits in its "
        "budget of training minutes (validation passes left out). The best checkpoint by validation is measured on "
        "the test split (the last 5% of the text) as one stream, the state carried through it from its first "
        "character to its last. nats per character = ln(perplexity), a character being every character of the text "
        "and every line end. The validation figures are those of training's validation passes: the split cut into "
        "the run's evaluation streams (eval_batch_size, by default the batch's 64), each from a fresh state, so "
        "they read a little higher than one stream would.",
    ]
    if target is not None:
        met = target["test_nats_streamed"] <= TARGET_NATS and target["minutes"] <= TARGET_MINUTES + 1e-6
        lines += [
            "",
            f"## The target: the streamed LSTM within {TARGET_MINUTES:g} minutes",
            "",
            f"Trained on {_machine(target)}; {_xla([target])}.",
            "",
            *TABLE,
            _row(target),
            "",
            f"Target: the streamed LSTM at <= {TARGET_NATS} nats per character on the test split within one hour "
            f"of training on this machine. Measured: {target['test_nats_streamed']:.3f} after "
            f"{target['minutes']:.1f} minutes: **{'met' if met else 'missed'}**. Anchors (validation, other splits "
            "of the same text): nanoGPT's character-level transformer (10.7M parameters, a few minutes on one A100) "
            "1.47 nats; its CPU \"baby\" configuration about 1.88.",
        ]
        speakers = settings.get("speakers")
        if speakers:
            (valid_turns, valid_new, _), (test_turns, test_new, test_names) = speakers["validation"], speakers["test"]
            lines += [
                "",
                "The test split is a harder text than the validation split: it is the text's last 5%, and of its "
                f"{test_turns} speaker turns (a name on its own line after a blank one) {test_new} "
                f"({100 * test_new / max(test_turns, 1):.0f}%) are by speakers never named in the training text "
                f"({', '.join(test_names)}), against {valid_new} of {valid_turns} "
                f"({100 * valid_new / max(valid_turns, 1):.0f}%) in validation; a character model spells a name it "
                "has never seen one letter at a time. (Counted by `streams.unseen_speakers`.)",
            ]
    if results:
        lines += [
            "",
            f"## {len(results)} models on the same budget",
            "",
            f"Each trained for {settings['minutes']:g} minutes, one after the other on {_machines(results)}; "
            f"{_xla(results)}. The presets hold the parameter budget (see their comments in "
            "`training/tasks/language_model.py`).",
            "",
            *TABLE,
            *(_row(r) for r in results),
        ]
    shown = ([(f"LSTM, the target run ({target['minutes']:.0f} minutes)", target)] if target is not None else []) + \
        [(f"{NAMES.get(r['preset'], r['preset'])} ({r['minutes']:.0f} minutes)", r) for r in results]
    if shown:
        figure = draw_curves(shown, os.path.join(output_dir, "streams_curves.png"))
        lines += ["", f"![validation nats per character against training minutes]({os.path.basename(figure)})"]
    if comparison:
        streamed, sentences = comparison
        lines += [
            "",
            "## Sentence by sentence against streamed, at equal steps",
            "",
            f"The same preset (`{streamed['preset']}`) trained for {sentences['steps']:,} steps sentence by sentence "
            "(every line a sequence of its own from `<bos>`, a fresh state per line: the task's mode before streams) "
            "and streamed (the target run). Both are scored on the whole test split as one stream, the state carried "
            f"through it ({streamed['test_tokens']:,} characters), and each in its own mode.",
            "",
            "| training | test nats/char, one stream | test nats per token in its own mode |",
            "|---|---|---|",
            f"| streamed, carried state | {streamed['test_nats_streamed']:.3f} | {streamed['test_nats']:.3f} |",
            f"| sentence by sentence | {sentences['test_nats_streamed']:.3f} | {sentences['test_nats']:.3f} (each "
            "line from `<bos>`, blank lines left out) |",
        ]
    if shown:
        lines += ["", "## Samples", "", "400 characters from each run's best checkpoint after a line end, "
                  f"temperature 0.8, seed {settings['seed']}.", ""]
        for title, r in shown:
            lines += [f"### {title}", "", "```", r["sample"].rstrip(), "```", ""]
    path = os.path.join(output_dir, "streams.md")
    with open(path, "w") as f:
        f.write("\n".join(lines).rstrip("\n") + "\n")
    return path


def draw_curves(labelled, path):
    """Validation nats against training minutes of each (label, result) in `labelled`."""
    plt = memory_figures._pyplot()
    figure, axes = plt.subplots(figsize=(7, 4))
    for label, r in labelled:
        if not r["curve"]:
            continue
        minutes, _, nats = zip(*r["curve"])
        axes.plot(minutes, nats, marker="o", markersize=3, label=label)
    axes.axhline(TARGET_NATS, color="grey", linestyle="--", linewidth=1, label=f"target {TARGET_NATS} (test)")
    axes.set_xlabel("training minutes")
    axes.set_ylabel("validation nats per character")
    axes.legend()
    return memory_figures._save(figure, path, plt)


def main(argv):
    absl_warnings_only()
    del argv
    language_models.check_models(FLAGS.models)
    target_xla, models_xla = ("target" in FLAGS.jit_compile), ("models" in FLAGS.jit_compile)
    overrides = {"data_dir": os.path.abspath(FLAGS.data_dir)} if FLAGS.data_dir else {}
    record_dir = os.path.join(FLAGS.output_dir, "streams")
    target = None
    if FLAGS.target_minutes > 0:
        target = run_model(TARGET_PRESET, FLAGS.seed, FLAGS.target_minutes, FLAGS.work_dir, overrides, target_xla,
                           record_dir=record_dir)
    results = [run_model(preset, FLAGS.seed, FLAGS.minutes, FLAGS.work_dir, overrides, models_xla,
                         name=f"{preset}_{FLAGS.minutes:g}min", record_dir=record_dir)
               for preset in FLAGS.models]
    comparison = None
    if FLAGS.compare and target is not None:
        sentences = run_model(TARGET_PRESET, FLAGS.seed, math.inf, FLAGS.work_dir, {**overrides, "bptt_steps": None},
                              target_xla, max_steps=target["steps"], name=f"{TARGET_PRESET}_sentences",
                              record_dir=record_dir)
        comparison = (target, sentences)
    command = "python -m training.experiments.streams" + "".join(
        f" --{name}={value}" for name, value in (("target_minutes", FLAGS.target_minutes),
                                                 ("models", ",".join(FLAGS.models)), ("minutes", FLAGS.minutes),
                                                 ("seed", FLAGS.seed), ("data_dir", FLAGS.data_dir),
                                                 ("jit_compile", ",".join(FLAGS.jit_compile) or None))
        if value is not None) + ("" if FLAGS.compare else " --nocompare")
    settings = {"command": command, "seed": FLAGS.seed, "minutes": FLAGS.minutes,
                "speakers": unseen_speakers(text_corpus.read_text_corpus(overrides.get("data_dir")))}
    path = write_report(target, results, comparison, settings, FLAGS.output_dir)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    run(main)
