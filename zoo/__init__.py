"""seqzoo's models: the classic sequence models as Keras 3 layers and models (keras and keras.ops only)."""

from zoo import cells
from zoo import layers
from zoo import models
from zoo import rnn

__version__ = "0.1.0"
