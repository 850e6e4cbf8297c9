"""A SavedModel whose serving_default runs as long as asked: `steps` int64 [batch] -> `done` int64 [batch].

A graph while loop counts to max(steps); TensorFlow checks for cancellation between its iterations, so a run cut
off by its RunOptions timeout (a request deadline) stops there. A billion steps take minutes on a CPU.
"""

import tensorflow as tf

from tests.serving.testdata import tf1_saved_model


def build(path):
    graph = tf.Graph()
    with graph.as_default():
        steps = tf.compat.v1.placeholder(tf.int64, [None], name="steps")
        limit = tf.reduce_max(steps)
        (count,) = tf.while_loop(lambda i: i < limit, lambda i: (i + 1,), (tf.constant(0, tf.int64),))
        done = tf.identity(tf.fill(tf.shape(steps), count), name="done")
        signature = tf.compat.v1.saved_model.predict_signature_def({"steps": steps}, {"done": done})
    return tf1_saved_model.save(graph, path, {"serving_default": signature})
