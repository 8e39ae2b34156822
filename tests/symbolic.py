"""Models built without weight values, for checks that need only shapes.

Inside ``keras.StatelessScope(initialize_variables=False)`` Keras creates
every weight with its shape, dtype and path but neither allocates nor
initialises it (the initialiser is kept for later). A functional model built
there has its whole graph, output shapes, config and weight shapes, at a
cost independent of its parameter count: ConvNeXt-XLarge (350M parameters)
takes about 0.3-0.7 s on every backend instead of 5-21 s, and no memory.
Such a model must not be called on data or saved.
"""

import json

import keras
import numpy as np
from keras.src.backend.common import global_state

from kvision.models import create_model


def symbolic(build, *args, **kwargs):
    """``build(*args, **kwargs)``, with every weight it creates left
    without a value."""
    with keras.StatelessScope(initialize_variables=False):
        return _without_pending(lambda: build(*args, **kwargs))


def symbolic_model(name, **overrides):
    """``create_model(name, **overrides)`` without weight values."""
    return symbolic(create_model, name, **overrides)


def symbolic_from_config(model):
    """Rebuilds ``model`` through its serialized config (a ``.keras``
    file's architecture part), without weight values."""
    serialized = json.loads(
        json.dumps(keras.saving.serialize_keras_object(model))
    )
    return symbolic(keras.saving.deserialize_keras_object, serialized)


def _without_pending(build):
    # The deferred weights wait in a global list that the next stateless
    # scope to close would initialise (allocating them after all): take
    # this build's weights off it.
    pending = global_state.get_global_attribute(
        "uninitialized_variables", [], set_to_default=True
    )
    start = len(pending)
    try:
        return build()
    finally:
        del pending[start:]


def trainable_parameters(model):
    """Trainable parameters, counted from the weights' shapes."""
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)
