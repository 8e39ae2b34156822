"""Which kind of device the Keras backend computes on, asked one way for
the whole package (the depthwise "auto" rule, notebooks, benchmarks)."""

import functools

import keras


@functools.cache
def default_platform():
    """``"cpu"``, ``"gpu"`` or ``"tpu"``: where the backend puts a new tensor.

    Cached, as a process's devices do not change; safe to call while JAX
    traces (it never looks at a traced value).
    """
    if keras.backend.backend() == "torch":
        # keras.distribution has no torch implementation; a torch tensor
        # names its device type ("cpu", "cuda").
        kind = keras.ops.zeros(()).device.type
    else:
        devices = keras.distribution.list_devices()
        kind = devices[0].split(":")[0] if devices else "cpu"
    kind = kind.lower()
    return "gpu" if kind in ("cuda", "rocm") else kind
