"""Conformance of the REST JSON rules with TensorFlow Serving's (reference: util/json_tensor.cc and its tests)."""

import json

import numpy as np
import pytest
from tensorflow.core.framework import types_pb2 as t

from serving import json_tensor as jt
from serving.server.errors import ServingError

FLOAT, INT32, INT64, STRING, BOOL = t.DT_FLOAT, t.DT_INT32, t.DT_INT64, t.DT_STRING, t.DT_BOOL


def fails(code, message, fn, *args):
    with pytest.raises(ServingError) as raised:
        fn(*args)
    assert raised.value.code == code, raised.value
    assert message in raised.value.message, raised.value.message


# Parsing.


def test_parse_accepts_nan_infinity_and_ignores_trailing_bytes():
    assert jt.parse_json(b'{"a": [NaN, Infinity, -Infinity]} trailing') == {"a": [pytest.approx(np.nan, nan_ok=True),
                                                                                  float("inf"), float("-inf")]}


def test_parse_errors():
    fails("INVALID_ARGUMENT", "JSON Parse error: The document is empty", jt.parse_json, b"  ")
    fails("INVALID_ARGUMENT", "JSON Parse error: ", jt.parse_json, b'{"instances": [1,}')
    fails("INVALID_ARGUMENT", "at offset: 17", jt.parse_json, b'{"instances": [1,}')
    deep = b"[" * 100000 + b"]" * 100000
    fails("INVALID_ARGUMENT", "JSON Parse error", jt.parse_json, b'{"inputs": ' + deep + b"}")
    fails("INVALID_ARGUMENT", "JSON Value: [1,2] Is not object", jt.predict_signature_name, [1, 2])
    fails("INVALID_ARGUMENT", "'signature_name' key must be a string value.", jt.predict_signature_name,
          {"signature_name": 3})


# Request tensors.


def inputs(document, dtypes):
    return jt.predict_inputs(document, dtypes)


def test_row_format_single_input():
    tensors, row = inputs({"instances": [1.0, 2.0, 5.0]}, {"x": FLOAT})
    assert row and tensors["x"].dtype == np.float32 and tensors["x"].tolist() == [1.0, 2.0, 5.0]
    tensors, _ = inputs({"instances": [[1, 2], [3, 4]]}, {"x": FLOAT})
    assert tensors["x"].shape == (2, 2)


def test_row_format_named_inputs_and_their_errors():
    dtypes = {"a": FLOAT, "b": STRING}
    tensors, _ = inputs({"instances": [{"a": [1, 2], "b": "x"}, {"a": [3, 4], "b": {"b64": "eQ=="}}]}, dtypes)
    assert tensors["a"].shape == (2, 2) and tensors["b"].tolist() == [b"x", b"y"]
    fails("INVALID_ARGUMENT", "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
          "JSON object: does not have named input: c", inputs, {"instances": [{"a": 1, "b": "x", "c": 2}]}, dtypes)
    fails("INVALID_ARGUMENT", "keys must be equal to: a,b", inputs, {"instances": [{"a": 1}]}, dtypes)
    fails("INVALID_ARGUMENT", "Expecting object but got list at item 1 of input list", inputs,
          {"instances": [{"a": 1, "b": "x"}, [1]]}, dtypes)
    fails("INVALID_ARGUMENT", "instances is a plain list, but expecting list of objects as multiple input tensors",
          inputs, {"instances": [1, 2]}, dtypes)
    fails("INVALID_ARGUMENT", "Failed to process element: 1 key: a of 'instances' list. Error: INVALID_ARGUMENT: "
          "Expecting tensor size: 2 but got: 3", inputs, {"instances": [{"a": [1, 2], "b": "x"},
                                                                         {"a": [1, 2, 3], "b": "y"}]}, dtypes)


def test_row_format_shape_and_size_checks():
    fails("INVALID_ARGUMENT", "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
          "Expecting shape [2,2] but got: [4]", inputs, {"instances": [[[1, 2], [3, 4]], [1, 2, 3, 4]]}, {"x": FLOAT})
    fails("INVALID_ARGUMENT", "Expecting value/list but got object at item 1 of input list", inputs,
          {"instances": [1, {"a": 1}]}, {"x": FLOAT})
    fails("INVALID_ARGUMENT", "Expecting 'instances' to be an list/array", inputs, {"instances": 1}, {"x": FLOAT})
    fails("INVALID_ARGUMENT", "No values in 'instances' array", inputs, {"instances": []}, {"x": FLOAT})


def test_columnar_format():
    tensors, row = inputs({"inputs": [2.0, 3.0, 4.0]}, {"x": FLOAT})
    assert not row and tensors["x"].tolist() == [2.0, 3.0, 4.0]
    tensors, _ = inputs({"inputs": 7}, {"x": INT32})
    assert tensors["x"].shape == () and tensors["x"] == 7
    tensors, _ = inputs({"inputs": {"a": [1], "b": [[True]], "extra": 0}}, {"a": INT64, "b": BOOL})
    assert tensors["a"].dtype == np.int64 and tensors["b"].shape == (1, 1)
    fails("INVALID_ARGUMENT", "Missing named input: b in 'inputs' object.", inputs, {"inputs": {"a": 1}},
          {"a": INT64, "b": BOOL})
    fails("INVALID_ARGUMENT", "inputs is a plain value/list, but expecting an object as multiple input tensors",
          inputs, {"inputs": [1]}, {"a": INT64, "b": BOOL})
    fails("INVALID_ARGUMENT", "expecting only one of 'inputs' or 'instances' keys to exist", inputs,
          {"inputs": [1], "instances": [1]}, {"x": FLOAT})
    fails("INVALID_ARGUMENT", "Missing 'inputs' or 'instances' key", inputs, {"signature_name": ""}, {"x": FLOAT})


@pytest.mark.parametrize(
    "value, dtype, code, message",
    [
        (1.0, INT32, "INVALID_ARGUMENT", "JSON Value: 1.0 Type: Number is not of expected type: int32"),
        (2**31, INT32, "INVALID_ARGUMENT", "is not of expected type: int32"),
        ("a", FLOAT, "INVALID_ARGUMENT", 'JSON Value: "a" Type: String is not of expected type: float'),
        (None, FLOAT, "INVALID_ARGUMENT", "JSON Value: null Type: Null is not of expected type: float"),
        (True, FLOAT, "INVALID_ARGUMENT", "Type: True is not of expected type: float"),
        ({"b64": "AAAA"}, FLOAT, "INVALID_ARGUMENT", "Type: Object is not of expected type: float"),
        (1, BOOL, "INVALID_ARGUMENT", "Type: Number is not of expected type: bool"),
        (3, STRING, "INVALID_ARGUMENT", "Type: Number is not of expected type: string"),
        ({"b64": "not base64!"}, STRING, "INVALID_ARGUMENT", "Unable to base64 decode"),
        ({"b64": "-_-_"}, STRING, "INVALID_ARGUMENT", "Unable to base64 decode"),  # web-safe alphabet
        (1.0, t.DT_HALF, "UNIMPLEMENTED", "Conversion of JSON Value: 1.0 to type: half"),
        ([[1, 2], [3]], FLOAT, "INVALID_ARGUMENT", "Encountered list at unexpected size: 1 at level: 1 expected size: 2"),
        ([1, [2]], FLOAT, "INVALID_ARGUMENT", "Encountered list at unexpected level: 1 expected < 1"),
        ([[1], 2], FLOAT, "INVALID_ARGUMENT", "JSON Value: 2 found at incorrect level: 1 in the JSON DOM. Expected at level: 2"),
    ],
)
def test_value_rules(value, dtype, code, message):
    fails(code, message, jt.tensor_from_json, value, dtype)


_FAST_CASES = [
    [1.5, 2, -3e38], [[1, 2], [3, 4]], [[[0.25]], [[1e-45]]], [], [[], []], [2**53 + 1, 1], [2**62, -(2**63)],
    [2**31 - 1, -(2**31)], [2**31], [2**60 + 2**36 + 1], [-1, 300, 70000], [2**63], [2**64], [-1],
    [True, False], [[True], [False]], [True, 1.0], [1, True], [[1, 2], [3]], [[1], 2], [1, [2]], ["a", 1.0],
    [None, 1.0], [{"b64": "AAAA"}], [float("nan"), float("inf")], [1.0, "2.0"],
]
_FAST_DTYPES = [FLOAT, t.DT_DOUBLE, INT32, INT64, BOOL, t.DT_UINT8, t.DT_INT8, t.DT_INT16, t.DT_UINT32, t.DT_UINT64]


def _outcome(function, *args):
    """("value", dtype, shape, bytes) or ("error", code, message)."""
    try:
        array = function(*args)
    except ServingError as error:
        return ("error", error.code, error.message)
    return ("value", array.dtype, array.shape, array.tobytes())


@pytest.mark.parametrize("dtype", _FAST_DTYPES)
def test_numpy_fast_path_gives_what_the_checked_walk_gives(dtype, monkeypatch):
    def outcomes(value, booleans):
        return (_outcome(jt.tensor_from_json, value, dtype, booleans),
                _outcome(lambda: jt.predict_inputs({"instances": value}, {"x": dtype}, booleans)[0]["x"]),
                _outcome(lambda: jt.predict_inputs({"inputs": {"x": value}}, {"x": dtype}, booleans)[0]["x"]))

    flags = []
    for value in _FAST_CASES:
        text = json.dumps(value)
        flags.append("true" in text or "false" in text)  # as the REST handler decides it from the body
    fast = [outcomes(value, booleans) for value, booleans in zip(_FAST_CASES, flags)]
    monkeypatch.setattr(jt, "_numeric_fast_path", lambda *args: None)
    for value, booleans, got in zip(_FAST_CASES, flags, fast):
        assert got == outcomes(value, booleans), (value, dtype)


def test_value_conversions():
    assert jt.tensor_from_json([300, -1], t.DT_UINT8).tolist() == [44, 255]  # TF wraps narrow integer types
    assert jt.tensor_from_json(1435774380, FLOAT) == np.float32(1435774336)
    assert jt.tensor_from_json([], FLOAT).shape == (0,)
    assert jt.tensor_from_json({"b64": "aGk="}, STRING) == b"hi"
    assert jt.tensor_from_json("é", STRING) == "é".encode()


# Responses.


@pytest.mark.parametrize(
    "value, text",
    [(9000000, "9e+06"), (999999, "999999.0"), (0.00003, "3e-05"), (555557.5, "555557.5"), (3, "3.0"),
     (0.1, "0.1"), (float("nan"), "NaN"), (float("inf"), "Infinity"), (-float("inf"), "-Infinity")],
)
def test_float_formatting(value, text):
    assert jt.tensor_json(np.float32(value), "y") == text


def test_double_formatting_keeps_17_digits_when_needed():
    assert jt.tensor_json(np.float64(0.1 + 0.2), "y") == "0.30000000000000004"


def test_predict_responses():
    assert jt.predict_response({"y": np.array([3.5, 4.0, 5.5], np.float32)}, True) == '{"predictions": [3.5, 4.0, 5.5]}'
    assert jt.predict_response({"y": np.array([3.0, 3.5], np.float32)}, False) == '{"outputs": [3.0, 3.5]}'
    two = {"a": np.array([[1], [2]], np.int64), "b": np.array([True, False])}
    assert json.loads(jt.predict_response(two, True)) == {"predictions": [{"a": [1], "b": True}, {"a": [2], "b": False}]}
    assert json.loads(jt.predict_response(two, False)) == {"outputs": {"a": [[1], [2]], "b": [True, False]}}
    assert jt.predict_response({"y": np.zeros((0, 2), np.float32)}, True) == '{"predictions": []}'
    strings = {"text": np.array([b'a"b'], dtype=object), "raw_bytes": np.array([b"\x00\xff"], dtype=object)}
    assert json.loads(jt.predict_response(strings, True)) == {"predictions": [{"text": 'a"b', "raw_bytes": {"b64": "AP8="}}]}
    fails("INVALID_ARGUMENT", "Tensor name: y has no shape information", jt.predict_response, {"y": np.float32(1)}, True)
    fails("INVALID_ARGUMENT", "Tensor name: b has inconsistent batch size: 3 expecting: 2", jt.predict_response,
          {"a": np.zeros(2), "b": np.zeros(3)}, True)


# :classify / :regress.


def test_examples_and_context():
    examples, context = jt.examples_from_json(
        {"context": {"lang": "en"}, "examples": [{"x": 1.5, "n": [1, 2], "s": ["a", {"b64": "Yg=="}], "flag": True}]}
    )
    feature = examples[0].features.feature
    assert list(feature["x"].float_list.value) == [1.5]
    assert list(feature["n"].int64_list.value) == [1, 2]
    assert list(feature["s"].bytes_list.value) == [b"a", b"b"]
    assert list(feature["flag"].int64_list.value) == [1]
    assert list(context.features.feature["lang"].bytes_list.value) == [b"en"]


@pytest.mark.parametrize(
    "document, message",
    [
        ({}, "When method is classify, key 'examples' is expected and was not found"),
        ({"examples": {}}, "Expecting 'examples' value to be an list/array"),
        ({"examples": []}, "'examples' value is an empty array"),
        ({"examples": [[1]]}, "Example must be JSON object but got JSON Array"),
        ({"examples": [{"x": [1, 2.5]}]}, "Unexpected element type in feature: x expecting type: int64"),
        ({"examples": [{"x": None}]}, "Feature: x has element with unexpected JSON type: Null"),
        ({"examples": [{"x": [[1]]}]}, "Feature: x has element with unexpected JSON type: Array"),
        ({"examples": [{"x": 2**64 - 1}]}, "Feature: x has uint64_t element. Only int64_t is supported."),
    ],
)
def test_example_errors(document, message):
    fails("INVALID_ARGUMENT", message, jt.examples_from_json, document)


def test_classify_and_regress_responses():
    assert json.loads(jt.classify_response([[(b"car", 0.2), (b"bike", 0.7)], [(None, 12.0)]])) == {
        "results": [[["car", 0.2], ["bike", 0.7]], [["", 12.0]]]
    }
    assert json.loads(jt.regress_response([3.5, 42.0])) == {"results": [3.5, 42.0]}
    fails("INVALID_ARGUMENT", "Cannot convert empty RegressionResults to JSON", jt.regress_response, [])
