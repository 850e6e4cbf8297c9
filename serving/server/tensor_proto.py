"""Request TensorProtos -> NumPy arrays, by TensorFlow's own rules (`Tensor::FromProto`), with a size bound.

TF Serving parses every Predict input with `Tensor::FromProto` (tensorflow/core/framework/tensor.cc) and answers a
failure with INVALID_ARGUMENT "tensor parsing error: <alias>" (servables/tensorflow/predict_util.cc). The rules,
checked against that source and against `tf.raw_ops.ParseTensor`, which runs the same C++ function:

- The shape is that of `TensorShape::IsValid` (tensor_shape.cc): every dimension >= 0, at most 254 of them, and the
  running product of the dimensions, taken in order, never past 2**63 - 1 (so [2**62, 4, 0] is refused while
  [0, 2**62, 4] is an empty tensor). `unknown_rank` is ignored: TensorFlow reads a TensorShape from the dims alone.
- With no elements, the values are not looked at (nor is a `tensor_content` of any length).
- A non-empty `tensor_content` wins over the typed fields and must hold exactly elements x sizeof(dtype) bytes,
  little-endian (DT_BOOL: bytes 0 or 1 only); for DT_STRING it is n varint32 lengths followed by exactly that many
  bytes of strings.
- Otherwise the dtype's typed field: no values -> zeros (b"" for strings); fewer values than elements -> the last
  value repeated; more -> the first ones used, the rest ignored. int8/int16/uint8/uint16 come from `int_val` and
  half/bfloat16 from `half_val` (bit patterns), cut to their width as C++ converts them (300 as int8 is 44);
  complex values are (real, imaginary) pairs of `scomplex_val` / `dcomplex_val`, an odd last number ignored. A value
  in another dtype's field is not looked at (float_val of a DT_DOUBLE tensor gives zeros).

This server's own limits, where stock TF Serving tries the allocation (a 1 GiB tensor asked of one value takes its
gigabyte there; one past the machine's memory fails to allocate, a parse error):

- A tensor whose decoded size is over `max_bytes` is refused before anything is allocated (`to_ndarrays`: the
  tensors of one request together, in alias order, each with what the ones before it left). Numbers count
  elements x itemsize; strings count every element's bytes (a repeated last string once per element it fills) plus
  `STRING_ELEMENT_BYTES` (32) per element, so a short message cannot ask for a huge batch of strings.
- Only the dtypes NumPy holds are accepted (`ACCEPTED_DTYPES`): not DT_VARIANT, DT_RESOURCE, the quantized, float8
  and 4-bit types, the *_REF types, DT_INVALID or unknown enum values.
- At most 64 dimensions (NumPy's limit; TensorFlow allows 254), and an empty tensor whose non-zero dimensions times
  the itemsize pass 2**63 - 1 bytes (NumPy cannot describe it).

Every refusal is INVALID_ARGUMENT "tensor parsing error: <alias>: <what is wrong and what is expected>".
Arrays decoded from `tensor_content` are read-only views of the request's bytes (no copy); the others are writable.
"""

import itertools
import sys
from typing import NamedTuple

import ml_dtypes
import numpy as np
from tensorflow.core.framework import types_pb2

from serving.server.errors import ServingError

DEFAULT_MAX_BYTES = 64 * 1024 * 1024
# Counted per DT_STRING element on top of its bytes: the 24 bytes of the tstring TensorFlow copies it into (as
# tensor.cc's Helper<tstring>::TotalBytes counts a string tensor) and the 8 of the NumPy object array's pointer.
STRING_ELEMENT_BYTES = 32
MAX_RANK = 64  # NumPy's limit (numpy.lib.array_utils / NPY_MAXDIMS); TensorFlow's TensorShape allows 254
_TF_MAX_RANK = 254
_INT64_MAX = 2**63 - 1

# dtype -> (NumPy dtype of the decoded array, typed field, NumPy dtype the field's values are read as).
_NUMERIC = {
    types_pb2.DT_FLOAT: (np.dtype(np.float32), "float_val", np.float32),
    types_pb2.DT_DOUBLE: (np.dtype(np.float64), "double_val", np.float64),
    types_pb2.DT_HALF: (np.dtype(np.float16), "half_val", np.int32),
    types_pb2.DT_BFLOAT16: (np.dtype(ml_dtypes.bfloat16), "half_val", np.int32),
    types_pb2.DT_INT8: (np.dtype(np.int8), "int_val", np.int32),
    types_pb2.DT_INT16: (np.dtype(np.int16), "int_val", np.int32),
    types_pb2.DT_INT32: (np.dtype(np.int32), "int_val", np.int32),
    types_pb2.DT_INT64: (np.dtype(np.int64), "int64_val", np.int64),
    types_pb2.DT_UINT8: (np.dtype(np.uint8), "int_val", np.int32),
    types_pb2.DT_UINT16: (np.dtype(np.uint16), "int_val", np.int32),
    types_pb2.DT_UINT32: (np.dtype(np.uint32), "uint32_val", np.uint32),
    types_pb2.DT_UINT64: (np.dtype(np.uint64), "uint64_val", np.uint64),
    types_pb2.DT_BOOL: (np.dtype(np.bool_), "bool_val", np.bool_),
    types_pb2.DT_COMPLEX64: (np.dtype(np.complex64), "scomplex_val", np.float32),
    types_pb2.DT_COMPLEX128: (np.dtype(np.complex128), "dcomplex_val", np.float64),
}
ACCEPTED_DTYPES = (*_NUMERIC, types_pb2.DT_STRING)
_ACCEPTED_NAMES = ", ".join(types_pb2.DataType.Name(d) for d in ACCEPTED_DTYPES)


def _error(alias, clause):
    return ServingError("INVALID_ARGUMENT", f"tensor parsing error: {alias}: {clause}")


def _dtype_name(dtype):
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return f"{dtype} (not a DataType)"


def _shape_text(dims):
    return "[" + ",".join(str(d) for d in dims) + "]"


def _checked_shape(proto, alias, itemsize):
    """The dims and element count of a valid shape (TensorShape::IsValid, then NumPy's limits)."""
    rank = len(proto.tensor_shape.dim)
    if rank > MAX_RANK:  # (checked before the dims are read: a message may carry millions of them)
        raise _error(alias, f"the shape has {rank} dimensions, more than the {MAX_RANK} a request tensor may "
                            f"have (TensorFlow allows {_TF_MAX_RANK}, NumPy {MAX_RANK})")
    dims = [d.size for d in proto.tensor_shape.dim]
    count = 1
    for d in dims:
        if d < 0:
            raise _error(alias, f"shape {_shape_text(dims)} has a negative dimension ({d}); every dimension of a "
                                f"request tensor must be >= 0")
        count *= d
        if count > _INT64_MAX:
            raise _error(alias, f"shape {_shape_text(dims)} has more elements than an int64 counts "
                                f"(2**63 - 1); a tensor's element count must fit in int64")
    if count == 0:
        extent = itemsize
        for d in dims:
            extent *= d or 1
        if extent > _INT64_MAX:
            raise _error(alias, f"the empty shape {_shape_text(dims)} has dimensions whose product passes "
                                f"2**63 - 1 bytes, which NumPy cannot describe")
    return dims, count


class _Limit(NamedTuple):
    bytes: int
    text: str  # how a refusal names it: "the 67108864 bytes a request tensor may take"


def _too_big(alias, dims, count, size, limit, detail=""):
    return _error(alias, f"shape {_shape_text(dims)} has {count} elements ({size} bytes{detail}), more than "
                         f"{limit.text}")


def _read_varints(content, n):
    """The first n varint32s of `content` (as TF's GetVarint32: at most 5 bytes, taken mod 2**32) and the offset
    after them; None where `content` does not start with n of them. Arrays of n entries, no per-element loop."""
    head = np.frombuffer(content, np.uint8, count=min(len(content), 5 * n))
    ends = np.flatnonzero(head < 0x80)[:n].copy()
    if len(ends) < n:
        return None
    starts = np.empty(n, np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    lengths = ends - starts + 1
    if np.any(lengths > 5):
        return None
    values = np.zeros(n, np.uint64)
    for k in range(5):
        more = np.flatnonzero(lengths > k)
        values[more] |= (head[starts[more] + k] & np.uint8(0x7F)).astype(np.uint64) << np.uint64(7 * k)
    return (values & np.uint64(0xFFFFFFFF)).astype(np.int64), int(ends[-1]) + 1


def _strings(proto, alias, dims, count, limit):
    if count * STRING_ELEMENT_BYTES > limit.bytes:
        raise _too_big(alias, dims, count, count * STRING_ELEMENT_BYTES, limit,
                       f" at least, {STRING_ELEMENT_BYTES} per string")
    out = np.empty(count, dtype=object)
    content = proto.tensor_content
    if content:
        found = _read_varints(content, count)
        if found is None or int(found[0].sum()) != len(content) - found[1]:
            raise _error(alias, f"tensor_content of a DT_STRING tensor of {count} elements must hold {count} varint32 "
                                f"lengths followed by exactly that many bytes of strings")
        lengths, offset = found
        total = len(content) - offset + count * STRING_ELEMENT_BYTES
        if total > limit.bytes:
            raise _too_big(alias, dims, count, total, limit, f", {STRING_ELEMENT_BYTES} per string and their bytes")
        bounds = np.concatenate(([0], np.cumsum(lengths))) + offset
        out[:] = [content[a:b] for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]
        return out
    field = proto.string_val
    given = min(len(field), count)
    if given:
        total = sum(map(len, itertools.islice(field, given))) + (count - given) * len(field[given - 1])
        total += count * STRING_ELEMENT_BYTES
        if total > limit.bytes:
            raise _too_big(alias, dims, count, total, limit, f", {STRING_ELEMENT_BYTES} per string and their bytes")
        out[:given] = list(itertools.islice(field, given))
        out[given:] = field[given - 1]
    else:
        out[:] = b""
    return out


def _numbers(proto, alias, dtype, dims, count, limit):
    numpy_type, field_name, field_type = _NUMERIC[dtype]
    size = count * numpy_type.itemsize
    if size > limit.bytes:
        raise _too_big(alias, dims, count, size, limit)
    content = proto.tensor_content
    if content:
        if len(content) != size:
            raise _error(alias, f"tensor_content has {len(content)} bytes, but shape {_shape_text(dims)} of "
                                f"{types_pb2.DataType.Name(dtype)} takes {size} ({count} elements of "
                                f"{numpy_type.itemsize} bytes)")
        if dtype == types_pb2.DT_BOOL and np.any(np.frombuffer(content, np.uint8) > 1):
            raise _error(alias, "tensor_content of a DT_BOOL tensor must hold only the bytes 0 (false) and 1 (true)")
        flat = np.frombuffer(content, numpy_type.newbyteorder("<"))
        return flat if sys.byteorder == "little" else flat.astype(numpy_type)
    values = np.array(getattr(proto, field_name), field_type)  # one copy from the repeated field, no Python loop
    if numpy_type.kind == "c":
        values = values[: len(values) // 2 * 2].view(numpy_type)
    elif dtype in (types_pb2.DT_HALF, types_pb2.DT_BFLOAT16):
        values = values.astype(np.uint16).view(numpy_type)  # the low 16 bits, as C++'s int32 -> uint16
    elif values.dtype != numpy_type:
        values = values.astype(numpy_type)  # int_val -> int8 / int16 / uint8 / uint16 wraps, as in C++
    given = len(values)
    if given == 0:
        return np.zeros(count, numpy_type)
    if given >= count:
        return values[:count] if given == count else values[:count].copy()
    out = np.empty(count, numpy_type)
    out[:given] = values
    out[given:] = values[-1]
    return out


def to_ndarray(proto, alias, max_bytes=DEFAULT_MAX_BYTES):
    """The NumPy array of request tensor `proto` (input `alias`), decoded as TensorFlow's Tensor::FromProto does.

    Raises ServingError INVALID_ARGUMENT "tensor parsing error: <alias>: ..." for a dtype outside
    ACCEPTED_DTYPES, an invalid shape, a tensor_content of the wrong size or form, or a tensor whose decoded size is
    over `max_bytes`, each before anything of the tensor's size is allocated.
    """
    return _decode(proto, alias, _Limit(max_bytes, f"the {max_bytes} bytes a request tensor may take"))


def to_ndarrays(tensors, max_bytes=DEFAULT_MAX_BYTES):
    """{alias: array} of a map of request tensors (PredictRequest.inputs), `max_bytes` for all of them together:
    each is decoded with what the ones before it (in alias order) left, so a request of many inputs, each one
    within the limit, cannot add up past it. Raises as `to_ndarray`."""
    arrays = {}
    used = 0
    for alias in sorted(tensors):
        left = max_bytes - used
        text = f"the {max_bytes} bytes a request's tensors may take together"
        if used:
            text = f"the {left} bytes left of the {max_bytes} a request's tensors may take together"
        arrays[alias] = array = _decode(tensors[alias], alias, _Limit(left, text))
        used += decoded_bytes(array)
    return arrays


def decoded_bytes(array):
    """What a decoded array counts against the limit: its bytes; for strings, theirs and STRING_ELEMENT_BYTES each."""
    if array.dtype == object:
        return array.size * STRING_ELEMENT_BYTES + sum(map(len, array.reshape(-1).tolist()))
    return array.nbytes


def _decode(proto, alias, limit):
    dtype = proto.dtype
    if dtype not in ACCEPTED_DTYPES:
        raise _error(alias, f"dtype {_dtype_name(dtype)} cannot be sent in a request; a request tensor's dtype must "
                            f"be one of {_ACCEPTED_NAMES}")
    itemsize = 8 if dtype == types_pb2.DT_STRING else _NUMERIC[dtype][0].itemsize
    dims, count = _checked_shape(proto, alias, itemsize)
    if count == 0:
        return np.empty(dims, object if dtype == types_pb2.DT_STRING else _NUMERIC[dtype][0])
    if dtype == types_pb2.DT_STRING:
        flat = _strings(proto, alias, dims, count, limit)
    else:
        flat = _numbers(proto, alias, dtype, dims, count, limit)
    return flat.reshape(dims)
