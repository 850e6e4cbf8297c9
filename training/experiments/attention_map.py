"""The attention of a trained translation run on one source, drawn as a heatmap: source tokens along x, the output
tokens along y, each row the alignment of the decoder step that wrote that token.

    python -m training.experiments.attention_map --model_dir=runs/dates --source="25 November 2026" \
        --out=docs/results/attention_dates.png [--beam_size=4]

It loads the run's best model (`best/model.keras`) and its vocabularies (rebuilt from the run's config, as the
trainer does), decodes the source with `zoo.decoding.beam_search` (beam 1, the default, is greedy decoding), which
keeps the alignment of every step of every hypothesis (`alignment_fn=model.alignment`), and draws the best
hypothesis' alignments, its end of sentence included. A run trained without attention has no alignments: an error
says so.
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

from training import model_file  # noqa: E402
from training import tasks  # noqa: E402
from zoo.decoding import beam_search  # noqa: E402

SPACE = "\u2423"  # how a space token is labelled on the axes ("␣")


def load_run(model_dir):
    """(task, config, model) of the run in `model_dir`: its best model and its config."""
    path = os.path.join(model_dir, "config.json")
    if not os.path.exists(path):
        raise ValueError(f"no run in {model_dir!r} (no config.json); train one with python -m training.train")
    with open(path) as f:
        config = json.load(f)
    if config.get("task") != "translation":
        raise ValueError(f"the run in {model_dir!r} is of task {config.get('task')!r}; expected 'translation'")
    model_path = os.path.join(model_dir, "best", model_file.BEST_FILE)
    if not os.path.exists(model_path):
        raise ValueError(f"the run in {model_dir!r} has no best model ({model_path}) yet; train it first")
    model = model_file.load(model_path)
    if getattr(model, "attention", "none") == "none":
        raise ValueError(
            f"the run in {model_dir!r} trained model {config.get('model')!r}, which has no attention "
            "(attention='none'): there is no alignment to draw; give a run with attention"
        )
    return tasks.get("translation"), config, model


def alignment_matrix(task, config, model, source, beam_size=1):
    """Decodes `source` (str) and returns {"source", "translation", "source_tokens", "output_tokens", "matrix"}:
    matrix is float [output tokens, source tokens], row j the alignment of the step that wrote output token j (the
    end of sentence included, labelled "<eos>")."""
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"source must be a non-empty string, got {source!r}")
    if not isinstance(beam_size, int) or beam_size < 1:
        raise ValueError(f"beam_size must be a positive int, got {beam_size!r}")
    corpus = task.corpus(config)
    ids = corpus.source.encode_lines([source])[0][: config["max_length"]]
    source_tokens = [corpus.source.vocabulary.tokens[int(i)] for i in ids]
    vocabulary = corpus.target.vocabulary
    inputs = tf.constant(np.asarray(ids, "int32")[None])
    result = beam_search(model.step, model.initial_state(inputs), tf.constant([vocabulary.bos_id]),
                         int(config["decode_length"]), vocabulary.eos_id, beam_size,
                         length_penalty=float(config["length_penalty"]),
                         banned_ids=(vocabulary.pad_id, vocabulary.bos_id), alignment_fn=model.alignment,
                         pad_id=vocabulary.pad_id)
    length = int(result["lengths"][0, 0])
    tokens = np.asarray(result["tokens"][0, 0, :length])
    matrix = np.asarray(result["alignments"][0, 0, :length, : len(ids)])
    translation = corpus.detokenize(tokens[None], np.array([length]))[0]
    output_tokens = [vocabulary.tokens[int(t)] for t in tokens]
    return {"source": source, "translation": translation, "source_tokens": source_tokens,
            "output_tokens": output_tokens, "matrix": matrix}


def draw_matrix(found, path, title=None):
    """Writes the heatmap of `alignment_matrix`'s result to the PNG `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = found["matrix"]
    rows, columns = matrix.shape
    figure, axis = plt.subplots(figsize=(max(4.0, 0.14 * columns + 1.6), max(2.4, 0.24 * rows + 1.4)))
    image = axis.imshow(matrix, cmap="Greys", vmin=0.0, vmax=1.0, aspect="auto", interpolation="nearest")
    axis.set_xticks(range(columns), [SPACE if t == " " else t for t in found["source_tokens"]], fontsize=7)
    axis.set_yticks(range(rows), [SPACE if t == " " else t for t in found["output_tokens"]], fontsize=7)
    axis.tick_params(length=0)
    axis.set_xlabel("source")
    axis.set_ylabel("output")
    axis.set_title(title or f"\"{found['source']}\" -> \"{found['translation']}\"", fontsize=9)
    figure.colorbar(image, ax=axis, fraction=0.03, pad=0.02, label="alignment")
    figure.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def draw(model_dir, source, out, beam_size=1):
    """Decodes `source` with the run in `model_dir` and draws its alignments to `out` (PNG); returns
    `alignment_matrix`'s result with "path" added."""
    task, config, model = load_run(model_dir)
    found = alignment_matrix(task, config, model, source, beam_size)
    found["path"] = draw_matrix(found, out)
    return found


def define_flags():
    flags.DEFINE_string("model_dir", None, "Directory of a translation run with attention.")
    flags.DEFINE_string("source", "Wednesday, 25 November 2026", "The source to translate.")
    flags.DEFINE_string("out", "attention.png", "The PNG to write.")
    flags.DEFINE_integer("beam_size", 1, "Beam width (1: greedy decoding).", lower_bound=1)
    flags.mark_flag_as_required("model_dir")


def main(argv):
    absl_warnings_only()
    FLAGS = flags.FLAGS
    if len(argv) > 1:
        print(f"error: unexpected arguments {argv[1:]}", file=sys.stderr)
        return 2
    try:
        found = draw(FLAGS.model_dir, FLAGS.source, FLAGS.out, FLAGS.beam_size)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{found['source']!r} -> {found['translation']!r}; wrote {found['path']}")
    return 0


if __name__ == "__main__":
    define_flags()
    run(main)
