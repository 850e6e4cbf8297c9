"""SavedModel round trip: export a Keras model, load it with both TensorFlow loaders, compare outputs.

TF Serving loads a SavedModel through the TF1 session loader (SavedModelBundle), which fails on exports that track
Keras variable wrappers instead of the raw `tf.Variable`s; so every export is run through that loader as well as
through `tf.saved_model.load`.
"""

import collections
import os

import keras
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from tests.helpers import backend


# The last two SavedModels loaded into sessions, kept open as TF Serving keeps a loaded version: a test that runs an
# export many times (every bad request of a list) loads it once. Keyed by the export's saved_model.pb (path, time and
# size of the file), so a new export at the same path is loaded anew.
_SESSIONS = collections.OrderedDict()
_SESSIONS_KEPT = 2


def _loaded_session(path):
    """(session, meta graph) of the SavedModel at `path`, loaded by the TF1 loader (or kept from an earlier load)."""
    stat = os.stat(os.path.join(path, "saved_model.pb"))
    key = (os.path.abspath(path), stat.st_mtime_ns, stat.st_size)
    if key in _SESSIONS:
        _SESSIONS.move_to_end(key)
        return _SESSIONS[key]
    graph = tf.Graph()
    with graph.as_default():
        session = tf.compat.v1.Session(graph=graph)
        try:
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [tf.saved_model.SERVING], path)
        except BaseException:
            session.close()
            raise
    _SESSIONS[key] = (session, meta_graph)
    while len(_SESSIONS) > _SESSIONS_KEPT:
        _, (oldest, _) = _SESSIONS.popitem(last=False)
        oldest.close()
    return session, meta_graph


def load_with_session(path, inputs, signature="serving_default"):
    """Runs `signature` of the SavedModel at `path` the way TF Serving does: TF1 loader, graph, session.

    Args:
        inputs: {signature input name: array}.

    Returns:
        {signature output name: array}.
    """
    session, meta_graph = _loaded_session(path)
    signature_def = meta_graph.signature_def[signature]
    feed = {signature_def.inputs[name].name: value for name, value in inputs.items()}
    fetches = {name: info.name for name, info in signature_def.outputs.items()}
    return session.run(fetches, feed)


def assert_saved_model_round_trip(model, input_batches, path, atol=1e-5, input_signature=None):
    """Exports `model` and checks both loaders reproduce it on every batch of `input_batches`.

    `input_batches` should differ in batch size and sequence length, so the signature is shown to be polymorphic.
    A model of several inputs (a list, e.g. a decoder's targets, memory and mask) takes each batch as a list of
    arrays, in the order of `input_signature` (then `[[spec, spec, ...]]`).
    `input_signature` (e.g. `[keras.InputSpec(shape=(None, None, 3))]`) is needed for subclassed models, whose
    built shape would otherwise fix the sequence length.

    TensorFlow only: under another Keras backend the calling test is skipped.
    """
    backend.skip_unless_tensorflow("SavedModel export")
    model.export(path, format="tf_saved_model", verbose=False, input_signature=input_signature)
    reloaded = tf.saved_model.load(path)
    signature = reloaded.signatures["serving_default"]
    # The signature's input names in the order of the model's (flattened) inputs.
    (serve,) = reloaded.serve.concrete_functions
    input_names = [spec.name for spec in tf.nest.flatten(serve.structured_input_signature[0])]
    assert sorted(input_names) == sorted(signature.structured_input_signature[1]), (input_names, signature)
    for x in input_batches:
        arrays = list(x) if isinstance(x, (list, tuple)) else [x]
        assert len(arrays) == len(input_names), f"the signature takes {input_names}, got {len(arrays)} arrays"
        expected = keras.ops.convert_to_numpy(model(x))
        np.testing.assert_allclose(reloaded.serve(x).numpy(), expected, atol=atol)
        (session_output,) = load_with_session(path, dict(zip(input_names, arrays))).values()
        np.testing.assert_allclose(session_output, expected, atol=atol)


def assert_dense_signature_outputs(path):
    """Every output of every SignatureDef of the SavedModel at `path` is one dense tensor, which TF Serving can
    write: a TensorInfo naming a tensor, with a dtype. A ragged output is stored as DT_INVALID with no name, a
    sparse one as a COO encoding; both fail here (and in TF Serving)."""
    proto = saved_model_pb2.SavedModel()
    with open(os.path.join(path, "saved_model.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    (meta_graph,) = [m for m in proto.meta_graphs if tf.saved_model.SERVING in m.meta_info_def.tags]
    for key, signature in meta_graph.signature_def.items():
        if key.startswith("__"):
            continue
        for name, info in signature.outputs.items():
            assert info.WhichOneof("encoding") == "name" and info.name, f"{key}: output {name} is not dense: {info}"
            assert info.dtype != types_pb2.DT_INVALID, f"{key}: output {name} has no dtype"
