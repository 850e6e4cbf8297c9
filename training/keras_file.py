"""Write a run's model as a Keras file: seqzoo-keras-file (or python -m training.keras_file) --model_dir=DIR
[--checkpoint=best|latest] [--output=FILE].

The trainer writes DIR/best/model.keras itself, each time it writes the best checkpoint; this writes the file of the
best or the latest checkpoint on request (by default DIR/best/model.keras, or DIR/latest.keras). Load it in your own
code with `import zoo` first (it registers the zoo's layers and models with Keras), then
`keras.saving.load_model(FILE)`.
"""

import sys

from absl import app
from absl import flags

from training.startup import absl_warnings_only
from training.startup import import_tensorflow
from training.startup import run

import_tensorflow()

from training import model_file  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "Directory of a run written by python -m training.train.")
flags.DEFINE_enum("checkpoint", "best", ["best", "latest"], "Which checkpoint's model to write.")
flags.DEFINE_string("output", None, "The file to write, ending in .keras (default: DIR/best/model.keras for the best "
                                    "checkpoint, DIR/latest.keras for the latest).")
flags.mark_flag_as_required("model_dir")


def main(argv):
    absl_warnings_only()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    try:
        result = model_file.write(FLAGS.model_dir, FLAGS.checkpoint, FLAGS.output)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {result['path']} (the {FLAGS.checkpoint} checkpoint, step {result['step']}); load it with "
          f"`import zoo`, then keras.saving.load_model({result['path']!r})")
    return 0


if __name__ == "__main__":
    run(main)
