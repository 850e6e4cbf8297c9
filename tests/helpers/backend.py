"""The Keras backend a test runs under, and the checks whose tools differ from one backend to another.

The suite runs under TensorFlow; the tests marked `jax` (the cell and sequence-layer contracts, the language models'
step checks) run again under Keras's JAX backend, in the pytest process that `tests/zoo/jax_backend_test.py` starts.
What only TensorFlow has (SavedModel export and its two loaders, `tf.test.compute_gradient`) is skipped elsewhere
through `skip_unless_tensorflow`, never left to fail. What each backend has in its own form goes through the helpers
here: autodiff (`tf.GradientTape` or `jax.grad`) and XLA compilation (`tf.function(jit_compile=True)` or `jax.jit`).
"""

import keras
import numpy as np
import pytest

NAME = keras.backend.backend()
TENSORFLOW = NAME == "tensorflow"
JAX = NAME == "jax"


def jax_for(names, under_jax):
    """`names` as pytest parameters, those in `under_jax` also marked `jax`: the JAX pass (eager JAX is slow) checks a
    mechanism on one or two configurations rather than on all of them; TensorFlow checks every one."""
    unknown = set(under_jax) - set(names)
    if unknown:
        raise ValueError(f"jax_for: {sorted(unknown)} are not among the parameters {list(names)}")
    return [pytest.param(n, marks=[pytest.mark.jax] if n in under_jax else []) for n in names]


def skip_unless_tensorflow(what):
    """Skips the calling test, saying so, unless Keras runs on TensorFlow."""
    if not TENSORFLOW:
        pytest.skip(f"{what} is TensorFlow only: checked in the TensorFlow run, not under the {NAME} backend")


def tensorflow_sees_a_gpu():
    """Whether Keras runs on TensorFlow with a GPU: the one setting where Keras's cuDNN RNN path opts out of XLA."""
    return TENSORFLOW and bool(keras.distribution.list_devices("gpu"))


def gradients(scalar, args):
    """The gradients of `scalar(*args)` (a scalar tensor) with respect to each of `args` (NumPy arrays), by the
    backend's autodiff (`tf.GradientTape` or `jax.grad`): a list of NumPy arrays shaped like `args`."""
    if TENSORFLOW:
        import tensorflow as tf

        tensors = [tf.constant(a) for a in args]
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            value = scalar(*tensors)
        return [g.numpy() for g in tape.gradient(value, tensors)]
    if JAX:
        import jax

        return [np.asarray(g) for g in jax.grad(scalar, argnums=tuple(range(len(args))))(*args)]
    pytest.skip(f"no autodiff check for the {NAME} backend")


def xla_compiled(fn, variables=(), input_specs=None):
    """`fn` compiled by XLA as the backend compiles: `tf.function(jit_compile=True)` or `jax.jit`.

    Args:
        fn: a function of tensors that may read Keras variables (a layer or model call, a decoding step).
        variables: the Keras variables `fn` reads. Under JAX their values are passed to the compiled function as
            arguments, through a `keras.StatelessScope`, rather than baked into it as constants.
        input_specs: optional [(shape, dtype)], one per argument, for TensorFlow's input signature: a `None`
            dimension stays symbolic in the compiled graph. JAX compiles for the shapes it is called with.

    Returns:
        a function that takes NumPy arrays and returns (the structure of) NumPy arrays.
    """
    if TENSORFLOW:
        import tensorflow as tf

        signature = None if input_specs is None else [tf.TensorSpec(shape, dtype) for shape, dtype in input_specs]
        compiled_tf = tf.function(fn, jit_compile=True, input_signature=signature)
        return lambda *args: keras.tree.map_structure(
            keras.ops.convert_to_numpy, compiled_tf(*[tf.constant(a) for a in args])
        )
    if JAX:
        import jax

        variables = list(variables)

        def stateless(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        compiled_jax = jax.jit(stateless)
        return lambda *args: keras.tree.map_structure(np.asarray, compiled_jax([v.value for v in variables], *args))
    pytest.skip(f"no XLA compilation check for the {NAME} backend")
