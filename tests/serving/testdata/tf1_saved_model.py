"""Saving a graph built the TensorFlow 1 way as a SavedModel, as the test models here (and TF Serving's own) are."""

import tensorflow as tf


def save(graph, path, signatures, initialize=False):
    """Writes `graph` with `signatures` ({key: SignatureDef}) under the `serve` tag to `path`; `initialize` runs the
    graph's variable initializers first. Returns `path`."""
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        if initialize:
            session.run(tf.compat.v1.global_variables_initializer())
        builder = tf.compat.v1.saved_model.Builder(path)
        builder.add_meta_graph_and_variables(session, [tf.saved_model.SERVING], signature_def_map=signatures)
        builder.save()
    return path
