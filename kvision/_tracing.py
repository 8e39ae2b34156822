"""Whether a value is concrete or being traced into a graph, on every
backend, without importing the backend's framework (by class name)."""

import keras


def is_concrete(value):
    """True for an eager tensor or array whose values can be read now.

    False for a JAX tracer (inside ``jax.jit``) and for a TensorFlow
    symbolic tensor (inside ``tf.function`` or a ``tf.data`` map, which
    Keras' preprocessing layers run in on every backend). PyTorch tensors
    and NumPy arrays are concrete.
    """
    classes = type(value).__mro__
    if any(
        cls.__name__ == "Tracer" and cls.__module__.startswith("jax")
        for cls in classes
    ):
        return False
    if any(cls.__module__.startswith("tensorflow") for cls in classes):
        return any(cls.__name__ == "EagerTensor" for cls in classes)
    return True


def compiling_on_jax():
    """Whether the current call is being traced for compilation by JAX.

    Under ``jax.jit`` every new array is a tracer, while an eager call (even
    one differentiated with ``jax.grad``) makes a concrete array.
    """
    return keras.backend.backend() == "jax" and not is_concrete(
        keras.ops.ones(())
    )
