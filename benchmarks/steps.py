"""The training step that the benchmarks time, and the count of the ops in its recurrent loops."""

import keras
import tensorflow as tf

# Graph nodes that do no work at run time: they are left out of the count of a loop body's ops.
FREE_OPS = ("Const", "Identity", "NoOp")


def train_step(task, config, model, *, jit_compile=None, reduce_retracing=False, dense_gradients=False):
    """The train step a benchmark times: the task's loss, the gradient's global norm clipped and Adam, at the config's
    values (`learning_rate`, `clip_global_norm`).

    Args:
        task: the task whose `loss(config, targets, logits)` (per example) is averaged into the step's loss.
        config: the task's config, with `learning_rate` and `clip_global_norm`.
        model: the model, called as `model(inputs, training=True)`.
        jit_compile: `tf.function`'s: True compiles the step with XLA, False forbids it, None (the default) leaves
            it to TensorFlow, as a plain `tf.function`.
        reduce_retracing: `tf.function`'s: True traces one graph for batches of any length after the second length
            seen (as the trainer's step does).
        dense_gradients: make every gradient a dense tensor before the clip (an `Embedding`'s is `IndexedSlices`), so
            that Adam updates every row, as the trainer does.

    Returns:
        A `tf.function(inputs, targets) -> loss`, with a new Adam optimizer of its own.
    """
    optimizer = keras.optimizers.Adam(config["learning_rate"])

    @tf.function(jit_compile=jit_compile, reduce_retracing=reduce_retracing)
    def step(inputs, targets):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=True)
            loss = tf.reduce_mean(task.loss(config, targets, logits))
        gradients = tape.gradient(loss, model.trainable_variables)
        if dense_gradients:
            gradients = [tf.convert_to_tensor(g) for g in gradients]
        gradients, _ = tf.clip_by_global_norm(gradients, config["clip_global_norm"])
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    return step


def loop_ops(step, inputs, targets, loop=""):
    """(forward, backward): how many ops one step of the train step's recurrent loop runs, in its forward body (as
    rewritten for the backward pass, with the pushes of what the gradient needs) and in its gradient's body; the
    graphs' `FREE_OPS` left out.

    Args:
        step: a `tf.function(inputs, targets)`, as `train_step` makes.
        inputs, targets: a batch to trace it on.
        loop: a part of the name of the loop's functions (e.g. "decoder", the layer's name) that picks one loop where
            the graph holds several; empty: every loop.

    Raises:
        ValueError: unless the loops picked are exactly one forward body and one gradient body.
    """
    library = step.get_concrete_function(inputs, targets).graph.as_graph_def().library.function
    bodies = {f.signature.name: sum(node.op not in FREE_OPS for node in f.node_def) for f in library
              if loop in f.signature.name and "while_body" in f.signature.name}
    backward = [count for name, count in bodies.items() if "_grad_" in name]
    forward = [count for name, count in bodies.items() if "_grad_" not in name and name.endswith("_rewritten")]
    if len(forward) != 1 or len(backward) != 1:
        picked = f" named with {loop!r}" if loop else ""
        raise ValueError(f"expected one recurrent loop body{picked} and one gradient body in the train step, got "
                         f"{sorted(bodies)}")
    return forward[0], backward[0]
