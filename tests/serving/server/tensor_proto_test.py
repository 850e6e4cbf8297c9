"""Request TensorProto decoding: TensorFlow's own Tensor::FromProto is the reference (tf.raw_ops.ParseTensor runs
it in C++), tf.make_ndarray where it agrees; and the refusals, made before anything of the tensor's size exists."""

import tracemalloc

import ml_dtypes
import numpy as np
import pytest
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow.core.framework import types_pb2

from serving.server.errors import ServingError
from serving.server.tensor_proto import DEFAULT_MAX_BYTES
from serving.server.tensor_proto import STRING_ELEMENT_BYTES
from serving.server.tensor_proto import to_ndarray
from serving.server.tensor_proto import to_ndarrays

NUMERIC = [np.float32, np.float64, np.float16, ml_dtypes.bfloat16, np.int8, np.int16, np.int32, np.int64, np.uint8,
           np.uint16, np.uint32, np.uint64, np.bool_, np.complex64, np.complex128]
SHAPES = [(), (0,), (1,), (5,), (2, 3), (2, 0, 4), (1, 2, 1, 3)]
# The typed field TensorFlow reads for each dtype (tensor.cc ProtoHelper), written out here independently.
FIELDS = {"float32": "float_val", "float64": "double_val", "float16": "half_val", "bfloat16": "half_val",
          "int8": "int_val", "int16": "int_val", "int32": "int_val", "uint8": "int_val", "uint16": "int_val",
          "int64": "int64_val", "uint32": "uint32_val", "uint64": "uint64_val", "bool": "bool_val",
          "complex64": "scomplex_val", "complex128": "dcomplex_val", "object": "string_val"}


def proto(dtype, shape, **fields):
    message = tensor_pb2.TensorProto(dtype=dtype, **fields)
    for size in shape:
        message.tensor_shape.dim.add(size=size)
    return message


def sample(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype == np.bool_:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    if dtype.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    return (rng.normal(size=shape) * 100).astype(dtype)


def typed_proto(array):
    """`array` in its dtype's typed *_val field (what TF Serving writes by default)."""
    array = np.asarray(array)
    message = proto(tf.dtypes.as_dtype(array.dtype).as_datatype_enum, array.shape)
    flat = array.reshape(-1)
    if array.dtype.kind == "c":
        flat = flat.view(np.float32 if array.dtype == np.complex64 else np.float64)
    elif array.dtype.name in ("float16", "bfloat16"):
        flat = flat.view(np.uint16)
    getattr(message, FIELDS[array.dtype.name]).extend(flat.tolist())
    return message


def content_proto(array):
    array = np.asarray(array)
    return proto(tf.dtypes.as_dtype(array.dtype).as_datatype_enum, array.shape,
                 tensor_content=array.astype(array.dtype.newbyteorder("<")).tobytes())


def reference(message):
    """What TensorFlow's C++ Tensor::FromProto makes of `message` (via ParseTensor), as a NumPy array."""
    value = tf.raw_ops.ParseTensor(serialized=message.SerializeToString(),
                                   out_type=tf.dtypes.as_dtype(message.dtype)).numpy()
    return np.array(value, dtype=object) if message.dtype == types_pb2.DT_STRING else np.asarray(value)


def tf_refuses(message):
    with pytest.raises(tf.errors.InvalidArgumentError):
        tf.raw_ops.ParseTensor(serialized=message.SerializeToString(), out_type=tf.float32)


def assert_same(ours, expected):
    assert ours.dtype == expected.dtype and ours.shape == expected.shape, (ours.dtype, ours.shape, expected.shape)
    if ours.dtype == object:
        assert ours.tolist() == expected.tolist() and all(type(v) is bytes for v in ours.reshape(-1))
    else:  # bit for bit (NaNs, -0.0)
        assert ours.tobytes() == expected.tobytes(), (ours, expected)


def refused(message, clause, max_bytes=DEFAULT_MAX_BYTES, alias="x"):
    with pytest.raises(ServingError) as raised:
        to_ndarray(message, alias, max_bytes)
    assert raised.value.code == "INVALID_ARGUMENT"
    assert raised.value.message.startswith(f"tensor parsing error: {alias}: "), raised.value.message
    assert clause in raised.value.message, raised.value.message
    return raised.value.message


# Round trips.


@pytest.mark.parametrize("dtype", NUMERIC, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trips_every_dtype_and_shape(dtype, shape):
    array = sample(dtype, shape)
    for message in (typed_proto(array), content_proto(array), tf.make_tensor_proto(array)):
        ours = to_ndarray(message, "x")
        assert_same(ours, array)
        assert_same(ours, reference(message))
        assert_same(ours, tf.make_ndarray(message))


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_round_trips_strings(shape):
    values = [b"", b"a", b"a\x00", b"\x00", "é".encode(), b"\xff\xfe", b"x" * 300]
    array = np.array([values[i % len(values)] for i in range(int(np.prod(shape)))], dtype=object).reshape(shape)
    message = tf.make_tensor_proto(array)
    assert len(message.string_val) == array.size
    ours = to_ndarray(message, "x")
    assert_same(ours, array)
    assert_same(ours, reference(message))
    assert ours.tolist() == tf.make_ndarray(message).tolist()


# Fewer, no and more values than the shape has elements.


@pytest.mark.parametrize("dtype", [*NUMERIC, object], ids=lambda d: np.dtype(d).name)
def test_fewer_values_repeat_the_last_and_none_give_zeros(dtype):
    two = sample(dtype, (2,), seed=1) if dtype is not object else np.array([b"first", b"last"], dtype=object)
    fewer = typed_proto(two) if dtype is not object else tf.make_tensor_proto(two)
    fewer.tensor_shape.dim[0].size = 5
    expected = np.concatenate([two, two[-1:].repeat(3)])
    assert_same(to_ndarray(fewer, "x"), expected)
    assert_same(to_ndarray(fewer, "x"), reference(fewer))
    assert to_ndarray(fewer, "x").tolist() == tf.make_ndarray(fewer).tolist()
    empty = proto(fewer.dtype, (2, 3))
    zeros = np.zeros((2, 3), dtype) if dtype is not object else np.full((2, 3), b"", dtype=object)
    assert_same(to_ndarray(empty, "x"), zeros)
    assert_same(to_ndarray(empty, "x"), reference(empty))


@pytest.mark.parametrize("dtype", [*NUMERIC, object], ids=lambda d: np.dtype(d).name)
def test_more_values_use_the_first_ones(dtype):
    five = sample(dtype, (5,), seed=2) if dtype is not object else np.array([b"a", b"b", b"c", b"d", b"e"], object)
    more = typed_proto(five) if dtype is not object else tf.make_tensor_proto(five)
    more.tensor_shape.dim[0].size = 2
    more.tensor_shape.dim.add(size=1)
    assert_same(to_ndarray(more, "x"), five[:2].reshape(2, 1))
    assert_same(to_ndarray(more, "x"), reference(more))


def test_values_are_cut_to_their_width_as_cpp_converts_them():
    cases = [
        proto(types_pb2.DT_INT8, [4], int_val=[300, -200, 127, -129]),
        proto(types_pb2.DT_UINT8, [2], int_val=[300, -1]),
        proto(types_pb2.DT_INT16, [2], int_val=[70000, -40000]),
        proto(types_pb2.DT_UINT16, [2], int_val=[70000, -1]),
        proto(types_pb2.DT_HALF, [3], half_val=[0x13C00, -1, 0x7E00]),
        proto(types_pb2.DT_BFLOAT16, [2], half_val=[0x23F80, -1]),
    ]
    for message in cases:
        assert_same(to_ndarray(message, "x"), reference(message))
    assert to_ndarray(cases[0], "x").tolist() == [44, 56, 127, 127]


def test_complex_pairs_and_odd_counts():
    odd = proto(types_pb2.DT_COMPLEX64, [3], scomplex_val=[1, 2, 3])  # one pair, repeated; the 3 ignored
    one = proto(types_pb2.DT_COMPLEX128, [2], dcomplex_val=[5])  # no whole pair: zeros
    for message in (odd, one):
        assert_same(to_ndarray(message, "x"), reference(message))
    assert to_ndarray(odd, "x").tolist() == [1 + 2j] * 3 and to_ndarray(one, "x").tolist() == [0j, 0j]


def test_tensor_content_wins_and_other_fields_are_not_read():
    both = proto(types_pb2.DT_FLOAT, [1], tensor_content=np.float32([5]).tobytes(), float_val=[9])
    other_field = proto(types_pb2.DT_DOUBLE, [2], float_val=[1.5])
    for message in (both, other_field):
        assert_same(to_ndarray(message, "x"), reference(message))
    assert to_ndarray(both, "x").tolist() == [5.0] and to_ndarray(other_field, "x").tolist() == [0.0, 0.0]


def test_bool_content_must_be_zeros_and_ones():
    good = proto(types_pb2.DT_BOOL, [3], tensor_content=bytes([0, 1, 1]))
    assert_same(to_ndarray(good, "x"), reference(good))
    bad = proto(types_pb2.DT_BOOL, [3], tensor_content=bytes([0, 1, 2]))
    refused(bad, "tensor_content of a DT_BOOL tensor must hold only the bytes 0 (false) and 1 (true)")
    tf_refuses(bad)


def test_empty_tensors_ignore_their_values():
    for message in (proto(types_pb2.DT_FLOAT, [0], tensor_content=b"\0" * 8),
                    proto(types_pb2.DT_INT32, [0, 3], int_val=[1, 2]),
                    proto(types_pb2.DT_STRING, [3, 0], tensor_content=b"junk"),
                    proto(types_pb2.DT_FLOAT, [0, 2**40])):  # no overflow: the product is 0 from the start
        assert_same(to_ndarray(message, "x"), reference(message))


def test_unknown_rank_is_ignored_as_tensorflow_does():
    scalar = proto(types_pb2.DT_FLOAT, [], float_val=[7])
    scalar.tensor_shape.unknown_rank = True
    vector = proto(types_pb2.DT_INT32, [2], int_val=[7])
    vector.tensor_shape.unknown_rank = True
    for message in (scalar, vector):
        assert_same(to_ndarray(message, "x"), reference(message))


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(out + bytes([value]))


def test_string_tensor_content_is_tensorflows_string_list():
    strings = [b"a", b"", b"x" * 200, b"bc\x00"]
    good = proto(types_pb2.DT_STRING, [2, 2],
                 tensor_content=b"".join(varint(len(s)) for s in strings) + b"".join(strings))
    assert to_ndarray(good, "x").tolist() == [[b"a", b""], [b"x" * 200, b"bc\x00"]]
    assert_same(to_ndarray(good, "x"), reference(good))
    rng = np.random.default_rng(3)
    many = [bytes(rng.integers(0, 256, size, dtype=np.uint8)) for size in
            [0, 1, 127, 128, 129, 255, 16383, 16384, 20000, *rng.integers(0, 300, 200)]]
    message = proto(types_pb2.DT_STRING, [len(many)],
                    tensor_content=b"".join(varint(len(s)) for s in many) + b"".join(many))
    assert to_ndarray(message, "x").tolist() == many
    assert_same(to_ndarray(message, "x"), reference(message))
    padded = proto(types_pb2.DT_STRING, [1], tensor_content=b"\x81\x80\x80\x80\x00" + b"x")  # a 5-byte varint 1
    assert_same(to_ndarray(padded, "x"), reference(padded))
    high = proto(types_pb2.DT_STRING, [1], tensor_content=b"\x81\x80\x80\x80\x10" + b"x")  # 2**32 + 1, mod 2**32
    assert_same(to_ndarray(high, "x"), reference(high))
    bad = [b"\x01\x02abcd", b"\x01\x02ab", b"\x01", b"\x81\x80\x80\x80\x80\x00x\x01y",
           b"\x80\x80\x80\x80\x80\x80\x01\x01ab", b"\x80\x80\x80\x80\x80\x00\x01a"]  # 6-byte varints
    for content in bad:
        message = proto(types_pb2.DT_STRING, [2], tensor_content=content)
        refused(message, "varint32 lengths followed by exactly that many bytes")
        tf_refuses(message)


# Refusals.


def test_huge_shapes_are_refused_with_their_size():
    message = refused(proto(types_pb2.DT_FLOAT, [2**40], float_val=[1.0]), "more than")
    assert message == ("tensor parsing error: x: shape [1099511627776] has 1099511627776 elements (4398046511104 "
                       "bytes), more than the 67108864 bytes a request tensor may take")
    refused(proto(types_pb2.DT_FLOAT, [2**40]), "shape [1099511627776] has 1099511627776 elements")
    refused(proto(types_pb2.DT_INT64, [2**14, 2**14], int64_val=[3]), "(2147483648 bytes), more than the 1048576",
            max_bytes=2**20)


def test_the_size_limit_is_inclusive():
    message = proto(types_pb2.DT_FLOAT, [256], float_val=[1.0])
    assert to_ndarray(message, "x", max_bytes=1024).shape == (256,)
    refused(message, "(1024 bytes), more than the 1023 bytes", max_bytes=1023)
    content = proto(types_pb2.DT_INT16, [8], tensor_content=b"\1\0" * 8)
    assert to_ndarray(content, "x", max_bytes=16).tolist() == [1] * 8
    refused(content, "(16 bytes), more than the 15 bytes", max_bytes=15)


def test_strings_count_their_bytes_and_each_repeat():
    per = STRING_ELEMENT_BYTES
    message = proto(types_pb2.DT_STRING, [4], string_val=[b"ab", b"cdef"])  # ab, cdef, cdef, cdef
    size = 2 + 4 * 3 + 4 * per
    assert to_ndarray(message, "x", max_bytes=size).tolist() == [b"ab", b"cdef", b"cdef", b"cdef"]
    refused(message, f"({size} bytes, {per} per string and their bytes), more than the {size - 1}", max_bytes=size - 1)
    # One 1000-byte string asked to fill a million elements: a gigabyte once TensorFlow copies each.
    refused(proto(types_pb2.DT_STRING, [10**6], string_val=[b"x" * 1000]), f"({10**9 + 10**6 * per} bytes")
    refused(proto(types_pb2.DT_STRING, [2**40]), "at least")
    content = b"".join(varint(3) for _ in range(4)) + b"abc" * 4
    message = proto(types_pb2.DT_STRING, [4], tensor_content=content)
    assert len(to_ndarray(message, "x", max_bytes=12 + 4 * per)) == 4
    refused(message, "more than the", max_bytes=12 + 4 * per - 1)


def test_invalid_shapes_are_refused_as_tensorflow_refuses_them():
    cases = [
        (proto(types_pb2.DT_FLOAT, [2, -1], float_val=[1.0]), "has a negative dimension (-1)"),
        (proto(types_pb2.DT_FLOAT, [2**62, 4], float_val=[1.0]), "more elements than an int64 counts"),
        (proto(types_pb2.DT_FLOAT, [2**62, 4, 0]), "more elements than an int64 counts"),  # overflows before the 0
        (proto(types_pb2.DT_FLOAT, [2**32, 2**32]), "more elements than an int64 counts"),
        (proto(types_pb2.DT_FLOAT, [1] * 255), "255 dimensions, more than the 64"),
    ]
    for message, clause in cases:
        refused(message, clause)
        tf_refuses(message)


def test_shapes_numpy_cannot_hold_are_refused():
    # TensorFlow takes these; a NumPy array cannot have them.
    refused(proto(types_pb2.DT_FLOAT, [1] * 65, float_val=[1.0]), "65 dimensions, more than the 64")
    refused(proto(types_pb2.DT_FLOAT, [0, 2**62, 4]), "NumPy cannot describe")
    assert to_ndarray(proto(types_pb2.DT_FLOAT, [1] * 64, float_val=[2.0]), "x").shape == (1,) * 64


@pytest.mark.parametrize("dtype, name", [
    (types_pb2.DT_VARIANT, "DT_VARIANT"), (types_pb2.DT_RESOURCE, "DT_RESOURCE"), (types_pb2.DT_INVALID, "DT_INVALID"),
    (types_pb2.DT_FLOAT_REF, "DT_FLOAT_REF"), (types_pb2.DT_QINT8, "DT_QINT8"), (types_pb2.DT_FLOAT8_E5M2,
    "DT_FLOAT8_E5M2"), (999, "999 (not a DataType)"), (-5, "-5 (not a DataType)"),
])
def test_dtypes_a_request_cannot_carry_are_refused(dtype, name):
    message = proto(dtype, [1])
    text = refused(message, f"dtype {name} cannot be sent in a request; a request tensor's dtype must be one of ",
                   alias="input_1")
    assert text.endswith("DT_FLOAT, DT_DOUBLE, DT_HALF, DT_BFLOAT16, DT_INT8, DT_INT16, DT_INT32, DT_INT64, DT_UINT8, "
                         "DT_UINT16, DT_UINT32, DT_UINT64, DT_BOOL, DT_COMPLEX64, DT_COMPLEX128, DT_STRING")
    refused(proto(dtype, [0]), f"dtype {name} cannot")  # empty too


def test_tensor_content_of_the_wrong_size_is_refused():
    for content in (b"\0" * 4, b"\0" * 12, b"\0"):
        message = proto(types_pb2.DT_FLOAT, [2], tensor_content=content)
        refused(message, f"tensor_content has {len(content)} bytes, but shape [2] of DT_FLOAT takes 8 "
                         f"(2 elements of 4 bytes)")
        tf_refuses(message)


@pytest.mark.parametrize("message, max_bytes", [
    (proto(types_pb2.DT_FLOAT, [2**40], float_val=[1.0]), DEFAULT_MAX_BYTES),
    (proto(types_pb2.DT_DOUBLE, [2**40]), DEFAULT_MAX_BYTES),
    (proto(types_pb2.DT_FLOAT, [2**28], float_val=[1.0]), 2**20),  # 1 GiB if it were made
    (proto(types_pb2.DT_FLOAT, [2**26], float_val=[1.0, 2.0]), 2**20),  # 256 MiB
    (proto(types_pb2.DT_FLOAT, [2**26]), 2**20),
    (proto(types_pb2.DT_STRING, [2**24], string_val=[b"x" * 1024]), DEFAULT_MAX_BYTES),
    (proto(types_pb2.DT_STRING, [2**24]), DEFAULT_MAX_BYTES),
], ids=["2**40-one-value", "2**40-empty", "2**28-one-value", "2**26-two-values", "2**26-empty", "strings-repeated",
        "strings-empty"])
def test_refusals_come_before_allocation(message, max_bytes):
    tracemalloc.start()
    try:
        with pytest.raises(ServingError):
            to_ndarray(message, "x", max_bytes)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2**20, peak


def test_tracemalloc_sees_what_decoding_allocates():
    """The control of the test above: an 8 MiB decode shows up, so a refusal made after allocating would too."""
    message = proto(types_pb2.DT_FLOAT, [2**21], float_val=[1.0, 2.0])
    tracemalloc.start()
    try:
        to_ndarray(message, "x")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak >= 2**23, peak


# A request's tensors together.


def test_a_requests_tensors_share_one_limit():
    tensors = {"b": proto(types_pb2.DT_FLOAT, [256], float_val=[1.0]),  # 1024 bytes
               "a": proto(types_pb2.DT_STRING, [2], string_val=[b"xyz"]),  # 2 x (3 + 32)
               "c": proto(types_pb2.DT_INT8, [0])}
    arrays = to_ndarrays(tensors, max_bytes=1024 + 70)
    assert sorted(arrays) == ["a", "b", "c"] and arrays["a"].tolist() == [b"xyz", b"xyz"]
    assert arrays["b"].shape == (256,) and arrays["c"].shape == (0,)
    with pytest.raises(ServingError) as raised:
        to_ndarrays(tensors, max_bytes=1024 + 69)
    assert raised.value.message == ("tensor parsing error: b: shape [256] has 256 elements (1024 bytes), more than "
                                    "the 1023 bytes left of the 1093 a request's tensors may take together")
    with pytest.raises(ServingError) as raised:
        to_ndarrays({"a": tensors["b"]}, max_bytes=1000)
    assert raised.value.message.endswith("more than the 1000 bytes a request's tensors may take together")
    # Many inputs, each within the limit alone, cannot add up past it.
    many = {f"in{i:03d}": proto(types_pb2.DT_FLOAT, [2**20]) for i in range(100)}
    with pytest.raises(ServingError) as raised:
        to_ndarrays(many, max_bytes=DEFAULT_MAX_BYTES)
    assert raised.value.message.startswith("tensor parsing error: in016: ")  # 16 x 4 MiB fit
    refused(proto(types_pb2.DT_FLOAT, [2**20]), "more than the 4194303 bytes a request tensor may take",
            max_bytes=2**22 - 1)
