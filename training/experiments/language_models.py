"""The lecture's neural language models side by side: feed-forward n-gram (Bengio et al. 2003), gated CNN (Dauphin et
al. 2017) and recurrent (Elman, LSTM, GRU), trained on the same corpus with the same budget.

    python -m training.experiments.language_models [--models=ffnn,gcnn,elman,lstm,gru] [--seeds=2]
        [--data_dir=DIR (a Penn Treebank layout corpus instead of the grammar)]

Each model is a preset of the language_model task, trained through the trainer (runs under --work_dir, so an
interrupted experiment resumes); the best checkpoint by validation perplexity is evaluated on the test split. On the
grammar corpus (`training.data.grammar.agreement_grammar`) the table also gives the perplexity bound (the true
distribution's perplexity on the same test sentences), and an agreement test: for subjects whose relative clauses
put d tokens between the subject's noun and its verb, how often the model gives the verb of the right number a
higher probability than its twin of the other number (chance: 50%). A model that sees only the last few tokens
cannot know the number once the noun is out of its context.

Writes docs/results/language_models.md (about 6 minutes on 2 CPU cores).
"""

import datetime
import io
import json
import math
import os
import platform
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

from training import config as run_config  # noqa: E402
from training import tasks  # noqa: E402
from training.data import grammar as grammar_corpus  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

MODELS = ("ffnn", "gcnn", "elman", "lstm", "gru")
NAMES = {"ffnn": "feed-forward 5-gram (Bengio 2003)", "gcnn": "gated CNN (Dauphin 2017)", "elman": "Elman RNN",
         "lstm": "LSTM", "gru": "GRU"}
# Verb pairs of the agreement test: (singular, plural).
VERB_PAIRS = [("sleeps", "sleep"), ("runs", "run"), ("sings", "sing"), ("chases", "chase"), ("sees", "see"),
              ("likes", "like")]
DISTANCE_BUCKETS = [(1, 1), (2, 4), (5, 8), (9, 1000)]

FLAGS = flags.FLAGS


def define_flags():
    """The command line's flags, defined when the module runs as a program (the other experiments define some of
    the same names, and tests import several of them in one process)."""
    flags.DEFINE_list("models", list(MODELS), "Presets of the language_model task to compare.")
    flags.DEFINE_integer("seeds", 2, "Seeds per model.", lower_bound=1)
    flags.DEFINE_integer("epochs", None, "Epochs per run (default: the presets').", lower_bound=1)
    flags.DEFINE_string("data_dir", None, "A corpus in the Penn Treebank layout instead of the grammar.")
    flags.DEFINE_string("work_dir", "runs/language_models", "Where the runs live (reused when the experiment is "
                        "rerun).")
    flags.DEFINE_string("output_dir", "docs/results", "Where language_models.md is written.")


def check_models(models):
    """A usage error naming the models that are not presets of the language_model task."""
    presets = tasks.get("language_model").presets
    unknown = sorted(set(models) - set(presets))
    if unknown:
        raise app.UsageError(f"unknown models {unknown}; valid: {sorted(presets)}")


def run_config_for(preset, seed):
    task = tasks.get("language_model")
    overrides = {"corpus": "files", "data_dir": os.path.abspath(FLAGS.data_dir)} if FLAGS.data_dir else {}
    config = run_config.resolve(DEFAULTS, task.presets, preset, overrides)
    if FLAGS.epochs:
        config["epochs"] = FLAGS.epochs
    return task, {"task": task.name, "preset": preset, **config, "seed": seed}


def agreement_set(count=600, seed=0):
    """Subject phrases with the number of their noun and the distance (tokens) from that noun to the verb that
    follows the phrase: [(words, number, distance)]."""
    grammar = grammar_corpus.agreement_grammar(relative_clause=0.6)
    rng = np.random.default_rng(seed)
    phrases = []
    for number in ("sg", "pl"):
        nouns = set(w for _, (w,) in grammar.rules[f"N_{number}"])
        for _ in range(count // 2):
            words, _ = grammar.sample(rng, symbol=f"NP_{number}")
            noun = max(i for i, w in enumerate(words) if w in nouns and i <= _first_that(words))
            phrases.append((words, number, len(words) - noun))
    return phrases


def _first_that(words):
    return words.index("that") if "that" in words else len(words)


def agreement_accuracy(model, vocabulary, phrases):
    """{(low, high) distance bucket: (accuracy, count)}: how often P(verb of the right number) > P(its twin)."""
    index = {t: i for i, t in enumerate(vocabulary.tokens)}
    correct = {bucket: [] for bucket in DISTANCE_BUCKETS}
    for words, number, distance in phrases:
        ids = np.array([[vocabulary.bos_id] + [index.get(w, vocabulary.unk_id) for w in words]], "int32")
        logits = keras.ops.convert_to_numpy(model(ids, training=False))[0, -1]
        for singular, plural in VERB_PAIRS:
            right, wrong = (singular, plural) if number == "sg" else (plural, singular)
            for bucket in DISTANCE_BUCKETS:
                if bucket[0] <= distance <= bucket[1]:
                    correct[bucket].append(logits[index[right]] > logits[index[wrong]])
    return {bucket: (float(np.mean(v)) if v else math.nan, len(v) // len(VERB_PAIRS)) for bucket, v in correct.items()}


def train_one(preset, seed):
    task, config = run_config_for(preset, seed)
    model_dir = os.path.join(FLAGS.work_dir, "files" if FLAGS.data_dir else "grammar", preset, f"seed{seed}")
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    timing_path = os.path.join(model_dir, "timing.json")
    corpus = task.corpus(config)
    started_step = int(trainer.step) if trainer.restore("latest") else 0
    started = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - started
    steps = int(trainer.step) - started_step
    if steps:  # a resumed finished run keeps the timing of the run that trained it
        tokens = steps * config["batch_size"] * corpus.mean_tokens
        with open(timing_path, "w") as f:
            json.dump({"tokens_per_second": tokens / seconds, "steps": steps}, f)
    with open(timing_path) as f:
        timing = json.load(f)
    trainer.restore("best")
    test = trainer.evaluate("test")
    result = {
        "parameters": int(sum(np.prod(v.shape) for v in trainer.model.trainable_variables)),
        "validation_perplexity": float(trainer.best.numpy()),
        "test_perplexity": test["perplexity"],
        "token_accuracy": test["token_accuracy"],
        "tokens_per_second": timing["tokens_per_second"],
        "bound": task.perplexity_bound(config, "test"),
        "unigram": task.chance_levels(config)["perplexity"],
    }
    if not FLAGS.data_dir:
        result["agreement"] = {f"{lo}-{hi}": v for (lo, hi), v in
                               agreement_accuracy(trainer.model, corpus.vocabulary, agreement_set()).items()}
    print(f"{preset} seed {seed}: {json.dumps(result)}", flush=True)
    return result


def mean_and_spread(values, digits=3):
    values = [v for v in values if v is not None and not math.isnan(v)]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:,.{digits}f}"
    return f"{np.mean(values):,.{digits}f} ± {np.std(values, ddof=1):,.{digits}f}"


def write_report(results, command):
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    first = next(iter(results.values()))[0]  # what every run shares: whether the corpus has a known bound
    corpus = "a corpus in the Penn Treebank layout (--data_dir)" if FLAGS.data_dir else (
        "20,000 training sentences drawn from `training.data.grammar.agreement_grammar()` (subject-verb agreement "
        "across relative clauses; 32 tokens), 2,000 validation and 2,000 test sentences")
    lines = [
        "# Neural language models: feed-forward, convolutional and recurrent, on the same corpus",
        "",
        f"Written by `{command}` on {datetime.date.today().isoformat()} ({platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, TensorFlow {tf.__version__}, Keras {keras.__version__}).",
        "",
        f"Corpus: {corpus}. Every model: the language_model task's preset of the same name (Adam, batch 64, "
        "global-norm clipping at 5, the same number of epochs); the best checkpoint by validation perplexity is "
        "evaluated on the test split. Perplexity = exp(summed token NLL / tokens), a token being a word or the end "
        "of a sentence. Throughput: training tokens per second over the whole run, validation passes included.",
        "",
        "| model | parameters | validation perplexity | test perplexity | test token accuracy | training tokens/s |",
        "|---|---|---|---|---|---|",
    ]
    for preset, runs in results.items():
        lines.append(
            f"| {NAMES.get(preset, preset)} | {runs[0]['parameters']:,} | "
            f"{mean_and_spread([r['validation_perplexity'] for r in runs])} | "
            f"{mean_and_spread([r['test_perplexity'] for r in runs])} | "
            f"{mean_and_spread([r['token_accuracy'] for r in runs])} | "
            f"{mean_and_spread([r['tokens_per_second'] for r in runs], digits=0)} |"
        )
    lines.append("")
    if first["bound"] is not None:
        runs = next(iter(results.values()))  # every model of a seed trains on the same corpus
        lines += [
            f"On the test sentences (each seed draws its own corpus), the grammar itself has perplexity "
            f"{mean_and_spread([r['bound'] for r in runs])}: no model can expect to go below it. A unigram model "
            f"(word frequencies only) has {mean_and_spread([r['unigram'] for r in runs], digits=2)}.",
            "",
            "## Subject-verb agreement against distance",
            "",
            "How often the model prefers the main verb of the right number to its twin of the other number ('a dog "
            "that chases some cats runs' against '... run'), by the number of tokens between the subject's noun and "
            "the verb; 600 subject phrases drawn from the grammar with relative clauses made likelier (60%), six "
            "verb pairs each. 50% is chance.",
            "",
            "| model | " + " | ".join(f"d = {lo}" if lo == hi else (f"d = {lo}-{hi}" if hi < 1000 else f"d >= {lo}")
                                     for lo, hi in DISTANCE_BUCKETS) + " |",
            "|---|" + "---|" * len(DISTANCE_BUCKETS),
        ]
        for preset, runs in results.items():
            cells = []
            for lo, hi in DISTANCE_BUCKETS:
                values = [r["agreement"][f"{lo}-{hi}"][0] for r in runs]
                count = runs[0]["agreement"][f"{lo}-{hi}"][1]
                cells.append(f"{mean_and_spread(values)} (n={count})")
            lines.append(f"| {NAMES.get(preset, preset)} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "The feed-forward model reads the last 4 tokens and the gated CNN a window of 5, so beyond that the "
            "subject's noun is out of their sight and their choice of number is a guess informed only by the words "
            "in between; the recurrent models carry the number in their state.",
        ]
    path = os.path.join(FLAGS.output_dir, "language_models.md")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def main(argv):
    absl_warnings_only()
    del argv
    check_models(FLAGS.models)
    results = {preset: [train_one(preset, seed) for seed in range(FLAGS.seeds)] for preset in FLAGS.models}
    command = "python -m training.experiments.language_models" + "".join(
        f" --{name}={value}" for name, value in (("models", ",".join(FLAGS.models)), ("seeds", FLAGS.seeds),
                                                 ("epochs", FLAGS.epochs), ("data_dir", FLAGS.data_dir))
        if value)
    path = write_report(results, command)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    run(main)
