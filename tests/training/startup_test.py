import signal
import subprocess
import sys

import pytest

SCRIPT = """
from training.startup import import_tensorflow
tf = import_tensorflow()
import keras
keras.layers.LSTM(2)(tf.zeros((1, 3, 2)))
import sys
print("a real message", file=sys.stderr)
"""


def test_banner_is_hidden_and_real_messages_pass():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    banners = ("absl::InitializeLog", "oneDNN custom operations", "cuda drivers", "cuInit", "cpu_feature_guard")
    for banner in banners:
        assert banner not in result.stderr, result.stderr
    assert "a real message" in result.stderr


def test_tensorflow_warnings_are_not_hidden():
    script = SCRIPT.replace('print("a real message", file=sys.stderr)', 'tf.get_logger().warning("watch out")')
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "watch out" in result.stderr


def test_the_runtime_is_not_started():
    # Callers split devices or create a MultiWorkerMirroredStrategy after the import: no op may have run yet.
    script = """
from training.startup import import_tensorflow
tf = import_tensorflow()
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
print(len(tf.config.list_logical_devices("CPU")))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and result.stdout.strip() == "2", result.stderr


# An entry point in miniature: absl flags, a main handed to run(), and what TensorFlow's C++ runtime would write to
# file descriptor 2 after start-up (no TensorFlow import: these tests start in well under a second).
PROGRAM = '''
"""A program that does what --what says."""
import os
import subprocess
import sys

from absl import app
from absl import flags

from training.startup import run

flags.DEFINE_enum("what", "ok", ["ok", "fail", "raise", "abort", "child"], "What to do.")
flags.DEFINE_integer("count", 1, "A number.")
flags.DEFINE_string("needed", None, "A flag that must be given.", required=True)
DT_BOOL = (b"E0000 00:00:1764000000.123456    4242 mkl_util.h:123] oneDNN supports DT_BOOL only on platforms with "
           b"AVX-512. Falling back to the default Eigen-based implementation if present.\\n")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    print("started", flush=True)
    os.write(2, b"E0000 00:00:1764000000.000001    4242 kernel.cc:1] a real error\\n")
    os.write(2, DT_BOOL)
    print("a Python message", file=sys.stderr, flush=True)
    os.write(2, DT_BOOL.replace(b"DT_BOOL", b"DT_HALF"))  # mixed precision's, on CPUs without AVX-512 FP16
    what = flags.FLAGS.what
    if what == "child":  # a child process writes to the same descriptor 2
        child = f"import os; os.write(2, {DT_BOOL!r}); os.write(2, b'child says hi\\\\n')"
        subprocess.run([sys.executable, "-c", child])
    if what == "abort":  # a C++ check that fails: its message, then abort()
        os.write(2, b"F0000 00:00:1764000000.000002    4242 check.cc:7] Check failed: last words\\n")
        os.abort()
    if what == "raise":
        raise RuntimeError("the run broke")
    print("done", flush=True)
    return 1 if what == "fail" else 0


if __name__ == "__main__":
    run(main)
'''


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    path = tmp_path_factory.mktemp("program") / "program.py"
    path.write_text(PROGRAM)

    def run_program(*args):
        return subprocess.run([sys.executable, str(path), *args], capture_output=True, text=True, timeout=60)

    return run_program


@pytest.mark.parametrize(
    "args, status, where, message",
    [
        (["--needed=x"], 0, "stdout", "done"),
        (["--help"], 0, "stdout", "--needed: A flag that must be given."),
        (["--helpshort"], 0, "stdout", "--needed: A flag that must be given."),
        (["--helpfull"], 0, "stdout", "--needed: A flag that must be given."),
        (["--needed=x", "--what=fail"], 1, "stdout", "done"),
        (["--needed=x", "--what=raise"], 1, "stderr", "RuntimeError: the run broke"),
        (["--needed=x", "--nope"], 2, "stderr", "error: Unknown command line flag 'nope'"),
        (["--needed=x", "--count=many"], 2, "stderr", "error: flag --count=many: invalid literal for int()"),
        (["--needed=x", "--what=everything"], 2, "stderr", "error: flag --what=everything: value should be one of"),
        ([], 2, "stderr", "error: flag --needed=None: Flag --needed must have a value other than None."),
        (["--needed=x", "extra"], 2, "stderr", "unexpected arguments: ['extra']"),  # app.UsageError in main
    ],
)
def test_exit_status(program, args, status, where, message):
    result = program(*args)
    assert result.returncode == status, result.stdout + result.stderr
    assert message in getattr(result, where), result.stdout + result.stderr
    if status == 2:
        assert "Traceback" not in result.stderr


def test_onednn_bool_line_is_filtered_for_the_life_of_the_process(program):
    result = program("--needed=x", "--what=child")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "started\ndone\n"
    # Everything else that reaches descriptor 2, from C++ code, Python or a child process, passes as it was, in order.
    assert result.stderr == (
        "E0000 00:00:1764000000.000001    4242 kernel.cc:1] a real error\na Python message\nchild says hi\n"
    )


def test_a_crash_still_shows_its_last_lines(program):
    result = program("--needed=x", "--what=abort")
    assert result.returncode == -signal.SIGABRT
    assert "Check failed: last words" in result.stderr
    assert "DT_BOOL" not in result.stderr


def test_an_entry_point_hides_onednn_fallback_lines(tmp_path):
    # float16 (mixed precision) on a CPU without AVX-512 FP16 makes TensorFlow print "oneDNN supports DT_HALF only on
    # platforms with AVX-512" at the first step; on one without AVX-512, masks print the DT_BOOL line.
    result = subprocess.run(
        [sys.executable, "-m", "training.train", "--task=latching", "--preset=short", "--mixed_precision", "--steps=2",
         f"--model_dir={tmp_path}", "--progress=lines"],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "done: step 2" in result.stdout
    assert "oneDNN supports" not in result.stderr, result.stderr
