"""A SavedModel whose serving_default checks its input, as exported models check theirs (the LM's sampling
settings, for instance): `x` float [batch] -> `y` = sqrt(x) float [batch], and a negative `x` fails the run with
INVALID_ARGUMENT ("x must be non-negative"), whichever row it is in.
"""

import tensorflow as tf

from tests.serving.testdata import tf1_saved_model


def build(path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None], name="x")
        check = tf.debugging.assert_non_negative(x, message="x must be non-negative")
        with tf.control_dependencies([check]):
            y = tf.sqrt(x, name="y")
        signature = tf.compat.v1.saved_model.predict_signature_def({"x": x}, {"y": y})
    return tf1_saved_model.save(graph, path, {"serving_default": signature})
