"""A SavedModel built the TensorFlow 1 way, like TF Serving's own `saved_model_half_plus_two` test model.

y = a * x + b with a = 0.5 and b = 2 + `offset` (so versions can differ), exposed through four signatures with the
method names TF Serving knows:

    serving_default   predict: x float [batch] -> y float [batch]
    predict_matrix    predict: x float [batch, 2], flag bool [batch] -> y float [batch, 2], label string [batch]
    classify_x_to_y   classify: inputs = serialized tf.Examples with a float feature "x" -> classes, scores [batch, 1]
    regress_x_to_y    regress: inputs = serialized tf.Examples with a float feature "x" -> outputs [batch, 1]
"""

import os

import tensorflow as tf

from tests.serving.testdata import tf1_saved_model


def build(path, offset=0.0):
    """Writes the SavedModel to `path` (a version directory) and returns `path`."""
    graph = tf.Graph()
    with graph.as_default():
        a = tf.compat.v1.Variable(0.5, name="a")
        b = tf.compat.v1.Variable(2.0 + offset, name="b")
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        y = tf.add(a * x, b, name="y")
        matrix = tf.compat.v1.placeholder(tf.float32, [None, 2], name="matrix")
        flag = tf.compat.v1.placeholder(tf.bool, [None], name="flag")
        matrix_y = tf.add(a * matrix, b, name="matrix_y")
        label = tf.where(flag, tf.fill(tf.shape(flag), "yes"), tf.fill(tf.shape(flag), "no"), name="label")
        serialized = tf.compat.v1.placeholder(tf.string, [None], name="tf_example")
        parsed = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        example_y = tf.add(a * parsed["x"], b, name="example_y")
        classes = tf.fill(tf.shape(example_y), "y")
        signatures = {
            "serving_default": tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y}),
            "predict_matrix": tf.compat.v1.saved_model.predict_signature_def(
                {"x": matrix, "flag": flag}, {"y": matrix_y, "label": label}
            ),
            "classify_x_to_y": tf.compat.v1.saved_model.classification_signature_def(
                serialized, classes, example_y
            ),
            "regress_x_to_y": tf.compat.v1.saved_model.regression_signature_def(serialized, example_y),
        }
    return tf1_saved_model.save(graph, path, signatures, initialize=True)


def build_versions(base, versions, offsets=None):
    """`base/<v>` for each version v (offset v - 1 unless given): model outputs differ by version."""
    for index, version in enumerate(versions):
        build(os.path.join(base, str(version)), offset=(offsets or {}).get(version, version - 1))
    return base
