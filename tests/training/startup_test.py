import subprocess
import sys

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
