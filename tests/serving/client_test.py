"""serving.client: the same answers over REST and gRPC, NumPy in and out, errors with the server's code, the CLI."""

import base64
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from serving import client as serving_client
from serving.client import Client
from serving.client import ServingClientError
from tests.serving.server.conftest import free_port
from tests.serving.server.conftest import make_server
from tests.serving.server.conftest import model_base  # noqa: F401 (the fixture)


@pytest.fixture(scope="module")
def ports(model_base):
    server = make_server(model_name="half", model_base_path=model_base, rest_api_port=free_port()).start()
    yield {"grpc": f"127.0.0.1:{server.grpc_port}", "rest": f"127.0.0.1:{server.rest_port}"}
    server.stop()


def example(x):
    return tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))})).SerializeToString()


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_every_method_over_both_protocols(ports, protocol):
    client = Client.connect(ports[protocol], protocol)
    # half_plus_two, version 2 (the latest): y = 0.5 x + 3.
    np.testing.assert_allclose(client.predict("half", np.array([1.0, 4.0], np.float32))["y"], [3.5, 5.0])
    np.testing.assert_allclose(client.predict("half", np.array([1.0], np.float32), version=2)["y"], [3.5])
    outputs = client.predict("half", {"x": np.array([[1.0, 2.0]], np.float32), "flag": np.array([True])},
                             signature="predict_matrix")
    np.testing.assert_allclose(outputs["y"], [[3.5, 4.0]])
    assert [v.decode() if isinstance(v, bytes) else v for v in np.asarray(outputs["label"]).ravel()] == ["yes"]
    # String inputs: serialized tf.Examples through the classification signature, called by Predict.
    scores = client.predict("half", {"inputs": np.array([example(2.0)], dtype=object)}, signature="classify_x_to_y")
    np.testing.assert_allclose(np.asarray(scores["scores"]), [[4.0]])
    assert client.regress("half", [{"x": 2.0}], signature="regress_x_to_y") == pytest.approx([4.0])
    classes = client.classify("half", [{"x": 4.0}], signature="classify_x_to_y")
    assert [(label.decode() if isinstance(label, bytes) else label, score) for label, score in classes[0]] == \
        [("y", pytest.approx(5.0))]
    status = client.status("half")
    assert sorted(s["version"] if isinstance(s, dict) else s.version for s in status)[-1] in ("2", 2)
    assert "serving_default" in json.dumps(client.metadata("half"), default=str)


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_errors_carry_the_servers_code(ports, protocol):
    client = Client.connect(ports[protocol], protocol)
    with pytest.raises(ServingClientError) as raised:
        client.predict("nope", np.array([1.0], np.float32))
    assert raised.value.code == "NOT_FOUND" and "nope" in raised.value.message
    with pytest.raises(ServingClientError) as raised:
        client.predict("half", np.array([1.0], np.float32), signature="missing")
    # REST carries only the HTTP status, and TF Serving answers FAILED_PRECONDITION with 400 like INVALID_ARGUMENT.
    assert raised.value.code == ("INVALID_ARGUMENT" if protocol == "rest" else "FAILED_PRECONDITION")
    assert '"missing" not found' in raised.value.message  # TF Serving's REST and gRPC messages differ in wording
    with pytest.raises(ServingClientError, match="predict_matrix takes the inputs|INVALID_ARGUMENT"):
        client.predict("half", np.array([1.0], np.float32), signature="predict_matrix")


def test_command_line_prints_the_answer(ports, capsys):
    # What python -m serving.client does with its flags once they are read (the flags themselves: below).
    assert serving_client.call_and_print(ports["rest"], "rest", "half", value=[2.0]) == 0
    assert "4.0" in capsys.readouterr().out  # 0.5 * 2 + 3 (version 2)
    # String tensors on the command line: sent as strings, not converted to numbers.
    strings = serving_client._cli_tensor(["a", "bc"])
    assert strings.dtype == object and list(strings) == [b"a", b"bc"]
    assert serving_client._cli_tensor([[1, 2]]).dtype == np.float32
    assert serving_client.call_and_print(ports["grpc"], "grpc", "nope", value=[1.0]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def client_command(*args):
    return subprocess.run([sys.executable, "-m", "serving.client", *args], capture_output=True, text=True,
                          timeout=120)


def test_command_line_help_describes_every_flag_with_its_default():
    result = client_command("--help")
    assert result.returncode == 0, result.stderr
    help_text = result.stdout
    assert help_text.startswith("One client for TensorFlow Serving's REST and gRPC APIs")
    flags_help = help_text[help_text.index("\nflags:\n"):]
    entries = re.split(r"\n  --", flags_help)[1:]
    names = sorted(re.match(r"(?:\[no\])?(\w+)", entry).group(1) for entry in entries)
    assert names == ["input", "label", "method", "model", "protocol", "server", "signature", "timeout", "version",
                     "wav"]
    for entry in entries:
        description = entry.split(":", 1)[1]
        assert len(description.split()) >= 3, entry  # a description, not a bare name
        # Either absl's "(default: ...)" line, or the description says what happens without the flag.
        assert "(default: " in entry or re.search(r"default|required|no default", description), entry


def test_command_line_exit_status(ports):
    assert client_command(f"--server={ports['rest']}", "--protocol=rest", "--model=half", "--input=[2.0]",
                          ).returncode == 0
    failed = client_command(f"--server={ports['rest']}", "--protocol=rest", "--model=nope", "--input=[2.0]")
    assert failed.returncode == 1 and "error: NOT_FOUND" in failed.stderr  # the server answered an error
    for args, message in [
        (["--input=[2.0]"], "Flag --model must have a value other than None"),
        (["--model=half"], "error: --input (or --wav) is required with --method=predict"),
        (["--model=half", "--wav=/nonexistent/one.wav"], "error: cannot read --wav file /nonexistent/one.wav"),
        (["--model=half", f"--wav={__file__}"], "is not a WAV file (no RIFF/WAVE header)"),
        (["--model=half", f"--wav={__file__}", "--input=[2.0]"], "error: --wav sends WAV files to predict"),
        (["--model=half", "--input=[2.0"], "error: --input is not JSON"),
        (["--model=half", "--protocol=http"], "value should be one of <grpc|rest>"),
    ]:
        result = client_command(*args)
        assert result.returncode == 2 and message in result.stderr, (args, result.returncode, result.stderr)


def test_binary_strings_keep_their_trailing_nul_bytes_over_rest():
    # A WAV file may end with zero samples; NumPy's bytes dtype would strip them.
    data = b"RIFF\x00\x01WAVEdata\x00\x00"
    encoded = serving_client._jsonable(np.array([data, b"x\x00"], dtype=object))
    assert [base64.b64decode(item["b64"]) for item in encoded] == [data, b"x\x00"]
