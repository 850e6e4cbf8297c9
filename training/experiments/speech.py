"""Speech recognition on synthesized speech from voices never heard in training: CTC, the lecture's frame labellers
(with and without the output fed back) and an attention encoder–decoder.

    python -m training.experiments.speech [--presets=ctc,feedback,plain,attention] [--seed=0] [--epochs=N]
        [--snrs=0,5,10,20,30] [--snr_size=200] [--work_dir=runs/speech] [--output_dir=docs/results]

Each preset of the speech task (`training.tasks.speech`) trains through the trainer on the same synthetic corpus
(one run per preset under --work_dir: an interrupted experiment resumes, a rerun reuses finished runs), its best
checkpoint by validation WER is then measured (jiwer) on

1. the test split: utterances of the held-out voices, with the corpus's drawn noise; greedy decoding, and beam
   search for CTC and attention;
2. the test voices' clean digit strings (`test_clean_digits`): the target, CTC at <= 5% WER;
3. the test voices at fixed signal-to-noise ratios (`--snrs`, `--snr_size` utterances each, white or pink noise;
   synthesized once with seed + 2 and kept beside the task's cache): WER against SNR, a figure;

and one clean test utterance is drawn as its log-mel spectrogram with, under it, the CTC model's most probable label
at each output frame and eSpeak's word alignment. Writes docs/results/speech.md, speech_snr.png and
speech_spectrogram.png. Each finished preset's result is also recorded in docs/results/speech/PRESET_seedS.json and
reused by a later run with the same settings, so the presets can be trained a few at a time (`--presets=...`) and the
report written from the records (`training.experiments.records`); the spectrogram is drawn when the CTC model is
trained.
"""

import datetime
import hashlib
import io
import json
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
from training import tasks  # noqa: E402
from training.data import speech as speech_data  # noqa: E402
from training.experiments import memory_figures  # noqa: E402
from training.experiments import records  # noqa: E402
from training.tasks import speech  # noqa: E402
from training.trainer import DEFAULTS  # noqa: E402
from training.trainer import Trainer  # noqa: E402

PRESETS = ("ctc", "feedback", "plain", "attention")
NAMES = {"ctc": "CTC, bidirectional LSTM", "feedback": "frame labeller, output fed back",
         "plain": "frame labeller, no feedback", "attention": "attention encoder-decoder (LAS)"}
# The target: the CTC model's WER on clean digit strings from unheard voices.
TARGET_WER = 0.05

FLAGS = flags.FLAGS


def define_flags():
    flags.DEFINE_list("presets", list(PRESETS), "Presets of the speech task to train and compare.")
    flags.DEFINE_integer("seed", 0, "The seed of every run (and of the synthesized corpus).", lower_bound=0)
    flags.DEFINE_integer("epochs", None, "Epochs per run (default: the presets').", lower_bound=1)
    flags.DEFINE_list("snrs", ["0", "5", "10", "20", "30"], "Signal-to-noise ratios (dB) of the WER-against-SNR sets.")
    flags.DEFINE_integer("snr_size", 200, "Utterances per SNR.", lower_bound=1)
    flags.DEFINE_string("cache_dir", None, "Where the synthesized speech is kept (default: the task's).")
    flags.DEFINE_string("work_dir", "runs/speech", "Where the runs live (reused when the experiment is rerun).")
    flags.DEFINE_string("output_dir", "docs/results", "Where speech.md and its figures are written.")


def run_config_for(preset, seed, overrides):
    task = tasks.get("speech")
    config = run_config.resolve(DEFAULTS, task.presets, preset, overrides)
    return task, {"task": task.name, "preset": preset, **config, "seed": seed}


def snr_set(config, snr_db, count):
    """[Example]: `count` utterances of the test voices with noise at `snr_db`, synthesized once (seed + 2) and kept
    as a TFRecord file beside the task's cache."""
    key = hashlib.sha256(json.dumps({"snr": snr_db, "count": count, "seed": config["seed"],
                                     "version": speech.CACHE_VERSION}).encode()).hexdigest()[:16]
    path = os.path.join(speech.cache_dir(config), "snr", f"{key}.tfrecord")
    if not os.path.exists(path):
        examples = speech_data.speech_splits({"test": count}, config["seed"] + 2, snr_db=snr_db,
                                             speakers_seed=config["seed"])["test"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        speech.write_records(path, examples)
    return speech.read_records(path)


def wer(task, config, model, examples, method="greedy"):
    import jiwer

    corpus = task.corpus(config)
    references = [corpus.normalize(e.text) for e in examples]
    return jiwer.wer(references, task.transcribe(config, model, [e.audio for e in examples], method))


def snr_key(snr_db):
    """The key of an SNR's WER in a result ("10" for 10 dB; "clean"): a string, as the result's JSON record keeps it."""
    return "clean" if snr_db is None else f"{snr_db:g}"


def run_preset(preset, seed, work_dir, overrides, snrs, snr_size, record_dir=None):
    """Trains one preset (or resumes it) and measures its best checkpoint. Returns (result, (task, config, model)).

    With `record_dir`, the result is also recorded there (`training.experiments.records`), and a later call with the
    same preset, seed, overrides and SNR sets returns (that record, None) without training."""
    # Where the synthesized speech is cached does not change the result (nor belongs in a record).
    budget = {"preset": preset, "seed": seed, "snrs": list(snrs), "snr_size": snr_size,
              "overrides": {key: value for key, value in overrides.items() if key != "cache_dir"}}
    recorded = records.load(record_dir, preset, seed, budget) if record_dir else None
    if recorded is not None:
        return recorded, None
    task, config = run_config_for(preset, seed, overrides)
    model_dir = os.path.join(work_dir, preset, f"seed{seed}")
    trainer = Trainer(task, config, model_dir, progress="lines", out=io.StringIO())
    trainer.fit()
    history = list(trainer.history)
    trainer.restore("best")
    decoded = task.decode_metrics(config, trainer.model, "test")
    result = {
        "preset": preset,
        "parameters": int(sum(np.prod(v.shape) for v in trainer.model.trainable_variables)),
        "epochs": int(trainer.epoch),
        "steps": int(trainer.step),
        # The training time of the epochs this process trained: all of them, unless the run was resumed.
        "minutes": sum(entry["seconds"] for entry in history) / 60 if history else None,
        "timed_epochs": len(history),
        "validation_wer": float(trainer.best),
        "decoded": decoded,
        "snr": {snr_key(snr): wer(task, config, trainer.model, snr_set(config, snr, snr_size))
                for snr in [*snrs, None]},
    }
    print(f"{preset} seed {seed}: " + json.dumps(result), flush=True)
    if record_dir:
        records.save(record_dir, preset, seed, budget, result)
    return result, (task, config, trainer.model)


def draw_snr(results, snrs, path):
    plt = memory_figures._pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4))
    positions = list(range(len(snrs) + 1))
    for r in results:
        values = [100 * r["snr"][snr_key(snr)] for snr in [*snrs, None]]
        axes.plot(positions, values, marker="o", label=NAMES.get(r["preset"], r["preset"]))
    axes.set_xticks(positions, [f"{snr:g} dB" for snr in snrs] + ["clean"])
    axes.set_xlabel("signal-to-noise ratio")
    axes.set_ylabel("WER on unheard voices (%)")
    axes.set_ylim(bottom=0)
    axes.legend()
    return memory_figures._save(figure, path, plt)


def draw_spectrogram(task, config, model, example, path):
    """The log-mel features of `example`, the CTC model's most probable label per output frame (the blank left
    blank), and the words' spans from eSpeak."""
    plt = memory_figures._pyplot()
    audio = speech._as_float(example.audio)[None]
    lengths = np.array([audio.shape[1]], np.int32)
    features = keras.ops.convert_to_numpy(model.front_end(audio, lengths=lengths))[0]
    logits = keras.ops.convert_to_numpy(model((audio, lengths)))[0]
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    vocabulary = task.corpus(config).vocabulary
    step = model.front_end.frame_step / speech_data.SAMPLE_RATE
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(9, 5.5), sharex=True,
                                                 gridspec_kw={"height_ratios": [3, 1.2, 0.6]})
    top.imshow(features.T, origin="lower", aspect="auto", cmap="magma",
               extent=[0, features.shape[0] * step, 0, features.shape[1]])
    top.set_ylabel("mel channel")
    top.set_title(f"“{example.text}” ({example.speaker}, clean)")
    output_step = step * model.stack
    times = (np.arange(len(logits)) + 0.5) * output_step
    middle.plot(times, 1 - probabilities[:, 0], color="tab:blue", linewidth=1)
    for t, row in zip(times, probabilities):
        best = int(np.argmax(row))
        if best != 0:
            middle.text(t, 1.05, vocabulary[best - 1].replace(" ", "␣"), ha="center", va="bottom", fontsize=7)
    middle.set_ylim(0, 1.4)
    middle.set_ylabel("P(not blank)")
    for text, start, end in example.words:
        bottom.barh(0, (end - start) / speech_data.SAMPLE_RATE, left=start / speech_data.SAMPLE_RATE, height=0.8,
                    color="tab:green", alpha=0.5)
        bottom.text((start + end) / 2 / speech_data.SAMPLE_RATE, 0, text, ha="center", va="center", fontsize=8)
    bottom.set_yticks([])
    bottom.set_xlabel("seconds")
    bottom.set_ylabel("words")
    return memory_figures._save(figure, path, plt)


def minutes_cell(result):
    """A result's training minutes for the report: the whole run's, or those of the epochs timed after a resume (a run
    resumed after its last epoch has none)."""
    timed = result["timed_epochs"]
    if not timed:
        return "–"
    if timed == result["epochs"]:
        return f"{result['minutes']:.1f}"
    return f"{result['minutes']:.1f} (the last {timed} epochs; resumed)"


def write_report(results, settings, output_dir, figures):
    os.makedirs(output_dir, exist_ok=True)
    snrs = settings["snrs"]
    lines = [
        "# Speech recognition on unheard voices: CTC, frame labellers and attention",
        "",
        f"Written by `{settings['command']}` on {datetime.date.today().isoformat()} "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} cores, TensorFlow {tf.__version__}, "
        f"Keras {keras.__version__}); seed {settings['seed']}.",
        "",
        "Every model is a preset of the speech task trained on the same synthesized corpus (eSpeak NG: digit "
        "strings and commands, drawn rates, pitches, gains and noise); the validation and test voices (eSpeak voice "
        "variants) are never heard in training, in any accent. The best checkpoint by validation WER is measured "
        "with jiwer against the transcripts.",
        "",
        "| model | parameters | epochs | training minutes | test WER, greedy | test WER, beam | test CER | "
        "clean digits WER |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        d = r["decoded"]
        beam = f"{100 * d['wer_beam']:.1f}%" if "wer_beam" in d else "–"
        minutes = minutes_cell(r)
        lines.append(f"| {NAMES.get(r['preset'], r['preset'])} (`{r['preset']}`) | {r['parameters']:,} | {r['epochs']} "
                     f"| {minutes} | {100 * d['wer_greedy']:.1f}% | {beam} | {100 * d['cer_greedy']:.1f}% | "
                     f"{100 * d['wer_clean_digits_greedy']:.1f}% |")
    ctc = next((r for r in results if r["preset"] == "ctc"), None)
    if ctc is not None:
        measured = ctc["decoded"]["wer_clean_digits_greedy"]
        lines += ["", f"Target: the CTC model at <= {100 * TARGET_WER:.0f}% WER on clean digit strings from unheard "
                  f"voices. Measured: {100 * measured:.1f}% (greedy): **{'met' if measured <= TARGET_WER else 'missed'}"
                  "**."]
    lines += ["", "## WER against SNR", "",
              f"{settings['snr_size']} utterances of the test voices per setting (white or pink noise).", "",
              "| model | " + " | ".join(f"{snr:g} dB" for snr in snrs) + " | clean |",
              "|---|" + "---|" * (len(snrs) + 1)]
    for r in results:
        values = [r["snr"][snr_key(snr)] for snr in [*snrs, None]]
        lines.append(f"| {NAMES.get(r['preset'], r['preset'])} | " + " | ".join(f"{100 * v:.1f}%" for v in values)
                     + " |")
    lines += ["", f"![WER against SNR]({os.path.basename(figures['snr'])})", ""]
    if figures.get("spectrogram"):
        lines += ["## What the CTC model hears", "",
                  "A clean test utterance: its log-mel features, the CTC model's probability that an output frame is "
                  "not the blank with the label it is most likely to be, and eSpeak's word spans.", "",
                  f"![spectrogram, CTC output and word alignment]({os.path.basename(figures['spectrogram'])})", ""]
    path = os.path.join(output_dir, "speech.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def main(argv):
    absl_warnings_only()
    del argv
    unknown = sorted(set(FLAGS.presets) - set(tasks.get("speech").presets))
    if unknown:
        raise ValueError(f"unknown presets {unknown}; the speech task's presets: {sorted(tasks.get('speech').presets)}")
    snrs = [float(s) for s in FLAGS.snrs]
    overrides = {}
    if FLAGS.epochs:
        overrides["epochs"] = FLAGS.epochs
    if FLAGS.cache_dir:
        overrides["cache_dir"] = os.path.abspath(FLAGS.cache_dir)
    record_dir = os.path.join(FLAGS.output_dir, "speech")
    spectrogram = os.path.join(FLAGS.output_dir, "speech_spectrogram.png")
    results, figures = [], {}
    for preset in FLAGS.presets:
        result, trained = run_preset(preset, FLAGS.seed, FLAGS.work_dir, overrides, snrs, FLAGS.snr_size, record_dir)
        results.append(result)
        if preset == "ctc" and trained is not None:  # drawn when the model is trained (a record has no weights)
            task, config, model = trained
            example = task.corpus(config).examples[speech.CLEAN_DIGITS][0]
            figures["spectrogram"] = draw_spectrogram(task, config, model, example, spectrogram)
        elif preset == "ctc" and os.path.exists(spectrogram):
            figures["spectrogram"] = spectrogram
    figures["snr"] = draw_snr(results, snrs, os.path.join(FLAGS.output_dir, "speech_snr.png"))
    command = "python -m training.experiments.speech" + "".join(
        f" --{name}={value}" for name, value in (("presets", ",".join(FLAGS.presets)), ("seed", FLAGS.seed),
                                                 ("epochs", FLAGS.epochs), ("snrs", ",".join(FLAGS.snrs)),
                                                 ("snr_size", FLAGS.snr_size)) if value is not None)
    settings = {"command": command, "seed": FLAGS.seed, "snrs": snrs, "snr_size": FLAGS.snr_size}
    path = write_report(results, settings, FLAGS.output_dir, figures)
    print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    define_flags()
    run(main)
