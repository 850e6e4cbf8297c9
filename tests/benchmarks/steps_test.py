"""The benchmarks' shared train step (`benchmarks.steps`): one step against a NumPy reference of the loss, the clip and
Adam; the options it hands to `tf.function`; dense gradients; and the count of a recurrent loop's ops."""

import numpy as np
import pytest

from training.startup import import_tensorflow

tf = import_tensorflow()

import keras  # noqa: E402

from benchmarks import steps  # noqa: E402


class SquaredError:
    """A task's loss: per example, the mean over outputs of the squared error."""

    def loss(self, config, targets, logits):
        return keras.ops.mean(keras.ops.square(logits - targets), axis=-1)


def linear_model(kernel, bias):
    model = keras.Sequential([keras.Input((kernel.shape[0],)), keras.layers.Dense(kernel.shape[1])])
    model.layers[0].set_weights([kernel, bias])
    return model


def reference_step(x, y, kernel, bias, learning_rate, clip_global_norm):
    """(loss, kernel, bias) after one step, in float64: the mean squared error of x kernel + bias against y, its
    gradient clipped to the global norm (unless `clip_global_norm` is None), and Adam's first update (Keras's defaults: beta_1 0.9, beta_2 0.999, epsilon
    1e-7; the first step's bias corrections are 1 - beta_1 and 1 - beta_2)."""
    x, y, kernel, bias = (np.asarray(a, "float64") for a in (x, y, kernel, bias))
    logits = x @ kernel + bias
    loss = np.mean((logits - y) ** 2)
    d_logits = 2 * (logits - y) / logits.size
    gradients = [x.T @ d_logits, d_logits.sum(axis=0)]
    norm = np.sqrt(sum(np.sum(g**2) for g in gradients))
    if clip_global_norm is not None:
        gradients = [g * clip_global_norm / max(norm, clip_global_norm) for g in gradients]
    beta_1, beta_2, epsilon = 0.9, 0.999, 1e-7
    alpha = learning_rate * np.sqrt(1 - beta_2) / (1 - beta_1)
    updated = [w - alpha * (1 - beta_1) * g / (np.sqrt((1 - beta_2) * g**2) + epsilon)
               for w, g in zip((kernel, bias), gradients)]
    return loss, *updated


X = np.arange(12, dtype="float32").reshape(4, 3) / 4
Y = np.array([[1, -1], [0, 2], [3, 0], [-2, 1]], "float32")
KERNEL = np.arange(6, dtype="float32").reshape(3, 2) / 6 - 0.4
BIAS = np.array([0.1, -0.2], "float32")


@pytest.mark.parametrize("options", [{}, {"jit_compile": True}, {"jit_compile": False, "reduce_retracing": True},
                                     {"dense_gradients": True}])
def test_one_step_is_the_task_loss_then_the_clipped_gradient_then_adam(options):
    # A global norm of 1e-5 binds (the gradient's is about 5): Adam's first update, about learning_rate x sign(g) for
    # large gradients, shrinks where the clipped gradient nears epsilon / sqrt(1 - beta_2), so the clip shows.
    config = {"learning_rate": 0.1, "clip_global_norm": 1e-5}
    clipped = reference_step(X, Y, KERNEL, BIAS, **config)
    unclipped = reference_step(X, Y, KERNEL, BIAS, config["learning_rate"], None)
    assert not np.allclose(clipped[1], unclipped[1], atol=1e-3)  # the reference itself tells the clip apart

    model = linear_model(KERNEL, BIAS)
    step = steps.train_step(SquaredError(), config, model, **options)
    loss = step(tf.constant(X), tf.constant(Y))

    np.testing.assert_allclose(float(loss), clipped[0], rtol=1e-6)
    kernel, bias = model.layers[0].get_weights()
    # Updates of up to 0.1 from float32 gradients of about 1e-6, against the float64 reference.
    np.testing.assert_allclose(kernel, clipped[1], atol=1e-6)
    np.testing.assert_allclose(bias, clipped[2], atol=1e-6)


@pytest.mark.parametrize("jit_compile", [None, False, True])
def test_jit_compile_is_the_tf_function_option(jit_compile):
    step = steps.train_step(SquaredError(), {"learning_rate": 0.1, "clip_global_norm": 1.0},
                            linear_model(KERNEL, BIAS), jit_compile=jit_compile)
    attributes = step.get_concrete_function(tf.constant(X), tf.constant(Y)).function_def.attr
    # tf.function marks the graph with _XlaMustCompile when told True or False, and leaves it unmarked for None.
    if jit_compile is None:
        assert "_XlaMustCompile" not in attributes
    else:
        assert "_XlaMustCompile" in attributes and attributes["_XlaMustCompile"].b is jit_compile


@pytest.mark.parametrize("reduce_retracing, traces", [(False, 2), (True, 1)])
def test_reduce_retracing_traces_one_graph_for_any_batch_after_the_second(reduce_retracing, traces):
    step = steps.train_step(SquaredError(), {"learning_rate": 0.1, "clip_global_norm": 1.0},
                            linear_model(KERNEL, BIAS), reduce_retracing=reduce_retracing)
    step(tf.constant(X[:2]), tf.constant(Y[:2]))  # its first call may trace twice: it creates Adam's variables
    first = step.experimental_get_tracing_count()
    for batch in (3, 4):
        step(tf.constant(X[:batch]), tf.constant(Y[:batch]))
    assert step.experimental_get_tracing_count() - first == traces


@pytest.mark.parametrize("dense_gradients", [False, True])
def test_dense_gradients_turn_an_embeddings_sparse_gradient_dense(dense_gradients, monkeypatch):
    seen = []
    apply_gradients = keras.optimizers.Adam.apply_gradients

    def recording(self, pairs):
        pairs = list(pairs)
        seen.extend(type(gradient) for gradient, _ in pairs)
        return apply_gradients(self, pairs)

    monkeypatch.setattr(keras.optimizers.Adam, "apply_gradients", recording)
    model = keras.Sequential([keras.Input((3,), dtype="int32"), keras.layers.Embedding(7, 4),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    step = steps.train_step(SquaredError(), {"learning_rate": 0.1, "clip_global_norm": 1.0}, model,
                            dense_gradients=dense_gradients)
    step(tf.constant([[1, 2, 3], [4, 5, 6]]), tf.constant(Y[:2]))
    # Per trace (the first call may trace twice): the embeddings', the kernel's and the bias's gradients.
    assert seen and len(seen) % 3 == 0, seen
    assert (tf.IndexedSlices in seen) is not dense_gradients, seen


def two_loops():
    """A train step through two recurrent layers, an LSTM ("first") then a simple RNN ("second"), and its batch."""
    inputs = keras.Input((5, 2))
    hidden = keras.layers.LSTM(4, name="first", return_sequences=True)(inputs)
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.SimpleRNN(3, name="second")(hidden)))
    step = steps.train_step(SquaredError(), {"learning_rate": 0.1, "clip_global_norm": 1.0}, model)
    return step, tf.constant(np.arange(40, dtype="float32").reshape(4, 5, 2) / 40), tf.zeros([4, 2])


def test_loop_ops_counts_the_working_ops_of_the_loop_named():
    step, x, y = two_loops()
    first, second = steps.loop_ops(step, x, y, loop="first"), steps.loop_ops(step, x, y, loop="second")
    # The LSTM's step (four gates) runs more ops than the simple RNN's (one), forward and backward.
    assert first[0] > second[0] > 0 and first[1] > second[1] > 0, (first, second)
    library = step.get_concrete_function(x, y).graph.as_graph_def().library.function
    bodies = {f.signature.name: [node.op for node in f.node_def] for f in library}
    forward = [ops for name, ops in bodies.items()
               if "second" in name and "while_body" in name and name.endswith("_rewritten")]
    assert len(forward) == 1
    free = sum(op in steps.FREE_OPS for op in forward[0])
    assert free > 0 and second[0] == len(forward[0]) - free  # every node but Const, Identity and NoOp


def test_loop_ops_refuses_several_loops_or_none():
    step, x, y = two_loops()
    with pytest.raises(ValueError, match=r"expected one recurrent loop body and one gradient body .*first.*second"):
        steps.loop_ops(step, x, y)
    with pytest.raises(ValueError, match=r"expected one recurrent loop body named with 'decoder' .*got \[\]"):
        steps.loop_ops(step, x, y, loop="decoder")
