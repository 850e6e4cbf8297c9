"""Test-session set-up: TensorFlow is imported once, without its start-up banner."""

from training.startup import import_tensorflow

import_tensorflow()
