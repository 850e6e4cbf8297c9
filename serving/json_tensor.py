"""TensorFlow Serving's REST JSON <-> tensors, rule for rule (its `util/json_tensor.cc`): the codec both sides speak,
the server (`serving.server.rest`) and the client (`serving.client`).

Requests: the row format (`instances`) and the columnar format (`inputs`) of :predict, typed by the signature's
input dtypes, with `{"b64": ...}` strings; the `examples` (+ `context`) of :classify and :regress, as tf.Examples.
Responses: `predictions` / `outputs` with TF Serving's float formatting (6 significant digits unless that does not
round-trip, `.0` appended to integral values, bare NaN / Infinity tokens), `*_bytes` outputs as `{"b64": ...}`,
and `results` for :classify / :regress. Error messages are TF Serving's.
"""

import base64
import binascii
import json
import math
import re

import numpy as np
from tensorflow.core.example import example_pb2
from tensorflow.core.example import feature_pb2
from tensorflow.core.framework import types_pb2

from serving import json_scan
from serving.server.errors import ServingError
from serving.server.errors import invalid_argument

# TF's DataTypeString names (used in messages) and NumPy types, by DataType enum.
TYPE_NAMES = {
    types_pb2.DT_FLOAT: "float",
    types_pb2.DT_DOUBLE: "double",
    types_pb2.DT_INT32: "int32",
    types_pb2.DT_UINT8: "uint8",
    types_pb2.DT_INT16: "int16",
    types_pb2.DT_INT8: "int8",
    types_pb2.DT_STRING: "string",
    types_pb2.DT_COMPLEX64: "complex64",
    types_pb2.DT_INT64: "int64",
    types_pb2.DT_BOOL: "bool",
    types_pb2.DT_BFLOAT16: "bfloat16",
    types_pb2.DT_UINT16: "uint16",
    types_pb2.DT_COMPLEX128: "complex128",
    types_pb2.DT_HALF: "half",
    types_pb2.DT_UINT32: "uint32",
    types_pb2.DT_UINT64: "uint64",
}
NUMPY_TYPES = {
    types_pb2.DT_FLOAT: np.float32,
    types_pb2.DT_DOUBLE: np.float64,
    types_pb2.DT_INT32: np.int32,
    types_pb2.DT_UINT8: np.uint8,
    types_pb2.DT_INT16: np.int16,
    types_pb2.DT_INT8: np.int8,
    types_pb2.DT_STRING: object,
    types_pb2.DT_INT64: np.int64,
    types_pb2.DT_BOOL: np.bool_,
    types_pb2.DT_UINT32: np.uint32,
    types_pb2.DT_UINT64: np.uint64,
}
_INT32_LIKE = (types_pb2.DT_INT32, types_pb2.DT_INT16, types_pb2.DT_INT8, types_pb2.DT_UINT8)
_INT_RANGES = {
    types_pb2.DT_INT64: (-(2**63), 2**63 - 1),
    types_pb2.DT_UINT32: (0, 2**32 - 1),
    types_pb2.DT_UINT64: (0, 2**64 - 1),
    **{dtype: (-(2**31), 2**31 - 1) for dtype in _INT32_LIKE},
}
_FAST_DTYPES = {types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE, types_pb2.DT_BOOL, *_INT_RANGES}


def type_name(dtype):
    return TYPE_NAMES.get(dtype, types_pb2.DataType.Name(dtype).lower().removeprefix("dt_"))


# JSON in.


_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, the only kind rapidjson skips
_MESSAGE_VALUE_CHARS = 200  # how much of a client's value an error message quotes

MAX_RANK = 64  # NumPy's limit on dimensions (TensorFlow allows 254)
# The deepest JSON a request needs: the body's object, `instances` or `inputs` (or a named-input object), a tensor
# of MAX_RANK nested lists, a {"b64": ...} leaf.
MAX_DEPTH = 2 + MAX_RANK + 1
DEFAULT_MAX_VALUES = 1 << 20
SCAN_ABOVE_BYTES = 1 << 16  # smaller bodies cannot cost much: they are parsed without being scanned first


def parse_json(body, max_values=DEFAULT_MAX_VALUES, max_depth=MAX_DEPTH):
    """The request body (bytes-like) as a JSON value, as TF Serving's rapidjson reads it: `NaN`, `Inf`, `Infinity`
    (and their negatives) are numbers, and bytes after the first top-level value are ignored.

    A body larger than SCAN_ABOVE_BYTES is first measured on its bytes (`json_scan.scan`): more than `max_values`
    values and keys, or nesting deeper than `max_depth`, is refused before any Python object is built, which bounds
    the memory a request can take (serving/README.md states it). Bytes that are not UTF-8 are kept as they are in
    string values (decoded with surrogateescape, encoded back by `_leaf`), as rapidjson, which does not validate
    UTF-8, passes them to the model.
    """
    if len(body) > SCAN_ABOVE_BYTES or b"Inf" in body or b"-NaN" in body:
        extent = json_scan.scan(body)
        if extent.depth > max_depth:
            raise invalid_argument(
                f"JSON Parse error: the document nests {extent.depth} levels deep, deeper than the {max_depth} a "
                f"request may use (a tensor has at most {MAX_RANK} dimensions)"
            )
        if extent.values > max_values:
            raise invalid_argument(
                f"JSON Parse error: the document has up to {extent.values} values and keys, more than the "
                f"{max_values} a request may have (--rest_api_max_json_values); send large tensors over gRPC"
            )
        body = json_scan.spell_non_finite(body, extent.letters)
    text = body.decode("utf-8", errors="surrogateescape")
    start = _WHITESPACE.match(text).end()
    if start == len(text):
        raise invalid_argument("JSON Parse error: The document is empty")
    try:
        value, _ = _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as error:
        raise invalid_argument(f"JSON Parse error: {error.msg} at offset: {error.pos}") from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: the document nests too deeply") from None
    except ValueError:  # an integer of more digits than Python converts (4300)
        raise invalid_argument("JSON Parse error: Number too big to be stored in double.") from None
    return value


def shorten(text):
    """`text`, cut to about _MESSAGE_VALUE_CHARS characters for an error message."""
    if len(text) <= _MESSAGE_VALUE_CHARS:
        return text
    return text[:_MESSAGE_VALUE_CHARS] + f"... ({len(text)} characters)"


def _json_text(value):
    """The JSON text of a client's value for an error message: at most about _MESSAGE_VALUE_CHARS characters,
    however large the value (it is encoded lazily and cut)."""
    pieces, size = [], 0
    try:
        for piece in json.JSONEncoder(separators=(",", ":"), allow_nan=True).iterencode(value):
            pieces.append(piece)
            size += len(piece)
            if size > _MESSAGE_VALUE_CHARS:
                return "".join(pieces)[:_MESSAGE_VALUE_CHARS] + "..."
    except (TypeError, ValueError, RecursionError):
        return shorten(str(value))
    return "".join(pieces)


def _json_type(value):
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _type_error(value, dtype):
    return invalid_argument(
        f"JSON Value: {_json_text(value)} Type: {_json_type(value)} is not of expected type: {type_name(dtype)}"
    )


def _is_b64(value):
    return isinstance(value, dict) and len(value) == 1 and "b64" in value and isinstance(value["b64"], str)


def _leaf(value, dtype):
    """One JSON leaf as a Python value of `dtype`."""
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if isinstance(value, int) and abs(value) >= 2**1024:  # rapidjson's limit on a number
            raise invalid_argument("JSON Parse error: Number too big to be stored in double.")
        return float(value)
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_BOOL:
        if not isinstance(value, bool):
            raise _type_error(value, dtype)
        return value
    if dtype == types_pb2.DT_STRING:
        if isinstance(value, str):
            try:
                return value.encode("utf-8", errors="surrogateescape")  # bytes that were not UTF-8 come back as sent
            except UnicodeEncodeError:
                raise invalid_argument(
                    f"JSON Value: {_json_text(value)} holds a lone UTF-16 surrogate escape, which is not a character"
                ) from None
        if _is_b64(value):
            try:
                return base64.b64decode(value["b64"], validate=True)
            except (binascii.Error, ValueError):
                raise invalid_argument(f"Unable to base64 decode: {shorten(value['b64'])}") from None
        raise _type_error(value, dtype)
    raise ServingError("UNIMPLEMENTED", f"Conversion of JSON Value: {_json_text(value)} to type: {type_name(dtype)}")


def _numeric_fast_path(value, dtype, booleans):
    """NumPy's own conversion of a nested list, where its result provably equals `_walk`'s; else None.

    NumPy infers an integer or float array exactly when every leaf is a JSON number and the lists are rectangular
    (ragged lists raise; strings, objects and nulls give other kinds), except that it folds booleans into numbers:
    so numbers are taken this way only when the body holds no `true` / `false` (`booleans` False).
    """
    if not isinstance(value, list) or dtype not in _FAST_DTYPES:
        return None
    try:
        array = np.array(value)
    except (ValueError, TypeError, OverflowError):
        return None
    kind = array.dtype.kind
    if dtype == types_pb2.DT_BOOL:
        return array if kind == "b" else None
    if booleans or kind not in "if":
        return None
    if dtype in (types_pb2.DT_FLOAT, types_pb2.DT_DOUBLE):
        # Through float64, as float(value) would: an int64 cast straight to float32 can round differently.
        return array.astype(np.float64, copy=False).astype(NUMPY_TYPES[dtype], copy=False)
    low, high = _INT_RANGES[dtype]
    if kind != "i" or (array.size and (array.min() < low or array.max() > high)):
        return None
    return array.astype(NUMPY_TYPES[dtype], copy=False)  # int64 -> int8/int16/uint8 wraps, as TF's int_val does


def tensor_from_json(value, dtype, booleans=True):
    """A JSON value (scalar, b64 object or nested lists) as a NumPy array of `dtype`, checked as TF Serving does.

    `booleans=False` promises that the request body has no JSON `true` / `false`, which lets a numeric tensor take
    NumPy's conversion instead of the element-by-element walk.
    """
    fast = _numeric_fast_path(value, dtype, booleans)
    return fast if fast is not None else _walk(value, dtype)


def _walk(value, dtype):
    """`tensor_from_json` element by element, with TF Serving's error for the first value that breaks a rule."""
    shape = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    rank = len(shape)
    if rank > MAX_RANK:
        raise invalid_argument(f"JSON value nests lists {rank} deep: a tensor has at most {MAX_RANK} dimensions")
    flat = []

    def visit(node, level):
        if isinstance(node, list):
            if level >= rank:
                raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {rank}")
            if len(node) != shape[level]:
                raise invalid_argument(
                    f"Encountered list at unexpected size: {len(node)} at level: {level} expected size: {shape[level]}"
                )
            for child in node:
                visit(child, level + 1)
        else:
            if level != rank:
                raise invalid_argument(
                    f"JSON Value: {_json_text(node)} found at incorrect level: {level} in the JSON DOM. "
                    f"Expected at level: {rank}"
                )
            flat.append(_leaf(node, dtype))

    try:
        visit(value, 0)
    except RecursionError:
        raise invalid_argument("JSON Parse error: the document nests too deeply") from None
    numpy_type = NUMPY_TYPES[dtype]
    if dtype in _INT32_LIKE and dtype != types_pb2.DT_INT32:
        # TF stores these in int_val and wraps out-of-range values (uint8: 300 -> 44, -1 -> 255).
        array = np.array(flat, dtype=np.int64).astype(numpy_type)
    elif numpy_type is object:
        array = np.empty(len(flat), dtype=object)
        array[:] = flat
    else:
        array = np.array(flat, dtype=numpy_type)
    return array.reshape(shape)


def predict_signature_name(document):
    """The request's `signature_name` ("" for the default); checks that the body is a JSON object first."""
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_json_text(document)} Is not object")
    name = document.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid_argument(
            f"JSON Value: {_json_text(name)} Type: {_json_type(name)} 'signature_name' key must be a string value."
        )
    return name


def predict_inputs(document, input_dtypes, booleans=True):
    """The tensors of a :predict body, typed by the signature's inputs.

    Args:
        document: the parsed body (an object; see `predict_signature_name`).
        input_dtypes: {input name: DataType enum} of the signature.
        booleans: False promises that the body has no JSON `true` / `false` (see `tensor_from_json`).

    Returns:
        ({input name: np.ndarray}, row_format).
    """
    has_instances, has_inputs = "instances" in document, "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument(
            "JSON Value: Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"
        )
    if not has_instances and not has_inputs:
        raise invalid_argument("Missing 'inputs' or 'instances' key")
    if has_instances:
        return _row_format(document["instances"], input_dtypes, booleans), True
    return _columnar_format(document["inputs"], input_dtypes, booleans), False


_ROW_BLOCK = 1024  # instances checked at once when looking for the first bad one


def _row_format(instances, input_dtypes, booleans):
    """The tensors of the row format: each input's instances stacked. A valid request is converted a column at a
    time (one conversion of all the instances of an input); an invalid one is then searched, instance by instance,
    for the first error, which is reported in TF Serving's words."""
    if not isinstance(instances, list):
        raise invalid_argument("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument("No values in 'instances' array")
    names = sorted(input_dtypes)
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not named and len(names) != 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors required as per "
            "tensorinfo_map"
        )
    columns = _columns(instances, names, named)
    if columns is not None:
        try:
            return {name: tensor_from_json(column, input_dtypes[name], booleans) for name, column in columns.items()}
        except ServingError:
            pass
    _raise_first_error(instances, input_dtypes, booleans, names, named)
    raise invalid_argument("The instances could not be stacked into one tensor per input")  # not reached


def _columns(items, names, named):
    """{input name: [its value in each item]}, or None if some item is not shaped as the first one says (an object
    with exactly the input names, or a value)."""
    if named:
        keys = set(names)
        if all(type(item) is dict and item.keys() == keys and not _is_b64(item) for item in items):
            return {name: [item[name] for item in items] for name in names}
        return None
    if any(type(item) is dict and not _is_b64(item) for item in items):
        return None
    return {names[0]: items}


def _raise_first_error(instances, input_dtypes, booleans, names, named):
    """Raises TF Serving's error for the first instance that breaks the row format's rules. Instances are checked a
    block at a time: a block whose columns convert as a whole, with the first instance in front (so that every
    instance is held to its shape), has no error; only a block that does not is checked instance by instance."""
    first = _check_instance(0, instances[0], None, input_dtypes, booleans, names, named)
    for start in range(0, len(instances), _ROW_BLOCK):
        block = instances[start : start + _ROW_BLOCK]
        columns = _columns([instances[0]] + block, names, named)
        if columns is not None:
            try:
                for name, column in columns.items():
                    tensor_from_json(column, input_dtypes[name], booleans)
                continue
            except ServingError:
                pass
        for index, item in enumerate(block, start):
            _check_instance(index, item, first, input_dtypes, booleans, names, named)


def _check_instance(index, item, first, input_dtypes, booleans, names, named):
    """Converts one instance as TF Serving does, checked against the first instance's tensors (`first`; None for the
    first itself); raises TF Serving's error; returns {input name: tensor}."""
    if named:
        if isinstance(item, list):
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        if not isinstance(item, dict) or _is_b64(item):
            raise invalid_argument(f"Expecting object but got value at item {index} of input list")
        for key in item:
            if key not in input_dtypes:
                raise _wrapped(index, None, invalid_argument(f"JSON object: does not have named input: {shorten(key)}"))
        if sorted(item) != names:
            raise _wrapped(
                index, None, invalid_argument(f"JSON object: {_json_text(item)} keys must be equal to: {','.join(names)}")
            )
        values = item
    else:
        if isinstance(item, dict) and not _is_b64(item):
            raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
        values = {names[0]: item}
    tensors = {}
    for name in names:
        try:
            tensor = tensors[name] = tensor_from_json(values[name], input_dtypes[name], booleans)
            if first is not None:
                if tensor.size != first[name].size:
                    raise invalid_argument(f"Expecting tensor size: {first[name].size} but got: {tensor.size}")
                if tensor.shape != first[name].shape:
                    raise invalid_argument(
                        f"Expecting shape {_shape_text(first[name].shape)} but got: {_shape_text(tensor.shape)}"
                    )
        except ServingError as error:
            raise _wrapped(index, name if named else None, error) from None
        if tensor.ndim >= MAX_RANK:
            raise invalid_argument(
                f"The instances of input {name} have {tensor.ndim} dimensions: with the batch dimension, more than "
                f"the {MAX_RANK} a tensor may have"
            )
    return tensors


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


def _wrapped(index, name, error):
    where = f"element: {index} key: {name}" if name else f"element: {index}"
    return invalid_argument(f"Failed to process {where} of 'instances' list. Error: {error.code}: {error.message}")


def _columnar_format(inputs, input_dtypes, booleans):
    if isinstance(inputs, dict) and not _is_b64(inputs):
        missing = [name for name in sorted(input_dtypes) if name not in inputs]
        if missing:
            raise invalid_argument(f"Missing named input: {missing[0]} in 'inputs' object.")
        return {name: tensor_from_json(inputs[name], dtype, booleans) for name, dtype in input_dtypes.items()}
    if len(input_dtypes) != 1:
        raise invalid_argument(
            "inputs is a plain value/list, but expecting an object as multiple input tensors required as per "
            "tensorinfo_map"
        )
    ((name, dtype),) = input_dtypes.items()
    return {name: tensor_from_json(inputs, dtype, booleans)}


# JSON out.


def _format_floats(values, single_precision):
    """TF Serving's float text: %.6g if it round-trips, else %.9g (float) / %.17g (double); `.0` if integral."""
    texts = []
    for value in values:
        if math.isnan(value):
            texts.append("NaN")
            continue
        if math.isinf(value):
            texts.append("Infinity" if value > 0 else "-Infinity")
            continue
        text = "%.6g" % value
        parsed = float(text)
        same = np.float32(parsed) == np.float32(value) if single_precision else parsed == value
        if not same:
            text = ("%.9g" if single_precision else "%.17g") % value
        if "." not in text and "e" not in text:
            text += ".0"
        texts.append(text)
    return texts


def _leaf_texts(array, name):
    """The JSON text of every element of `array` (flattened, row-major)."""
    flat = array.reshape(-1)
    if array.dtype == np.float32:
        return _format_floats(flat.tolist(), single_precision=True)
    if array.dtype == np.float64:
        return _format_floats(flat.tolist(), single_precision=False)
    if array.dtype == np.bool_:
        return ["true" if v else "false" for v in flat.tolist()]
    if np.issubdtype(array.dtype, np.integer):
        return [str(v) for v in flat.tolist()]
    if array.dtype == object or array.dtype.kind in "SU":
        values = [v if isinstance(v, bytes) else str(v).encode("utf-8") for v in flat.tolist()]
        if name.endswith("_bytes"):
            return ['{"b64": "' + base64.b64encode(v).decode("ascii") + '"}' for v in values]
        return [json.dumps(v.decode("utf-8", errors="replace"), ensure_ascii=False) for v in values]
    raise invalid_argument(f"Failed to write JSON value for tensor type: {array.dtype}")


def _nest(texts, shape):
    """Nested JSON list text of `shape` from row-major leaf texts."""
    if not shape:
        return texts[0]
    if len(shape) == 1:
        return "[" + ", ".join(texts) + "]"
    step = int(np.prod(shape[1:])) if shape[1:] else 1
    if shape[0] == 0:
        return "[]"
    return "[" + ", ".join(_nest(texts[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


def tensor_json(array, name):
    """One output tensor as JSON text."""
    array = np.asarray(array)
    return _nest(_leaf_texts(array, name), list(array.shape))


def predict_response(outputs, row_format):
    """The JSON text of a :predict response: `predictions` (row format) or `outputs` (columnar)."""
    names = sorted(outputs)
    if not row_format:
        if len(names) == 1:
            return '{"outputs": ' + tensor_json(outputs[names[0]], names[0]) + "}"
        body = ", ".join(f"{json.dumps(n)}: {tensor_json(outputs[n], n)}" for n in names)
        return '{"outputs": {' + body + "}}"
    batch = None
    for name in names:
        array = np.asarray(outputs[name])
        if array.ndim == 0:
            raise invalid_argument(f"Tensor name: {name} has no shape information ")
        if batch is None:
            batch = array.shape[0]
        elif array.shape[0] != batch:
            raise invalid_argument(f"Tensor name: {name} has inconsistent batch size: {array.shape[0]} expecting: {batch}")
    items = []
    for index in range(batch or 0):
        if len(names) == 1:
            items.append(tensor_json(np.asarray(outputs[names[0]])[index], names[0]))
        else:
            items.append(
                "{" + ", ".join(f"{json.dumps(n)}: {tensor_json(np.asarray(outputs[n])[index], n)}" for n in names) + "}"
            )
    return '{"predictions": [' + ", ".join(items) + "]}"


# :classify and :regress.


def _feature(name, values):
    """A tf.train.Feature from a JSON value or list, its kind decided by the first value."""
    values = values if isinstance(values, list) else [values]
    feature = feature_pb2.Feature()
    kind = None
    for value in values:
        if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_b64(value)):
            raise invalid_argument(
                f"Feature: {shorten(name)} has element with unexpected JSON type: {_json_type(value)}"
            )
        if isinstance(value, str) or _is_b64(value):
            this = "bytes"
        elif isinstance(value, float):
            this = "float"
        else:  # int or bool
            this = "int64"
        kind = kind or this
        if this != kind:
            raise invalid_argument(f"Unexpected element type in feature: {shorten(name)} expecting type: {kind}")
        if kind == "bytes":
            feature.bytes_list.value.append(_leaf(value, types_pb2.DT_STRING))
        elif kind == "float":
            feature.float_list.value.append(value)
        else:
            number = int(value)
            if number > 2**63 - 1:
                raise invalid_argument(f"Feature: {shorten(name)} has uint64_t element. Only int64_t is supported.")
            if number < -(2**63):
                raise invalid_argument(f"Feature: {shorten(name)} has element with unexpected JSON type: Number")
            feature.int64_list.value.append(number)
    return feature


def _example(value):
    if not isinstance(value, dict):
        raise invalid_argument(f"Example must be JSON object but got JSON {_json_type(value)}")
    example = example_pb2.Example()
    for name, values in value.items():
        try:
            entry = example.features.feature[name]
        except (UnicodeError, ValueError):
            raise invalid_argument(f"Feature name {_json_text(name)} is not valid UTF-8") from None
        entry.CopyFrom(_feature(name, values))
    return example


def examples_from_json(document):
    """(examples, context or None) of a :classify / :regress body, as tf.train.Example protos."""
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {_json_text(document)} Is not object")
    if "examples" not in document:
        raise invalid_argument("When method is classify, key 'examples' is expected and was not found")
    examples = document["examples"]
    if not isinstance(examples, list):
        raise invalid_argument("Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid_argument("'examples' value is an empty array")
    context = _example(document["context"]) if "context" in document else None
    return [_example(e) for e in examples], context


def classify_response(classifications):
    """`classifications`: per example, a list of (label bytes or None, score or None)."""
    if not classifications:
        raise invalid_argument("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classes in classifications:
        pairs = []
        for label, score in classes:
            label_text = json.dumps((label or b"").decode("utf-8", errors="replace"), ensure_ascii=False)
            score_text = _format_floats([float(score or 0.0)], single_precision=True)[0]
            pairs.append(f"[{label_text}, {score_text}]")
        rows.append("[" + ", ".join(pairs) + "]")
    return '{"results": [' + ", ".join(rows) + "]}"


def regress_response(values):
    if len(values) == 0:
        raise invalid_argument("Cannot convert empty RegressionResults to JSON")
    return '{"results": [' + ", ".join(_format_floats([float(v) for v in values], single_precision=True)) + "]}"


def error_body(message):
    return json.dumps({"error": message})
