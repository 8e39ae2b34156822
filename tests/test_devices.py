"""One answer, on every backend, to "which kind of device computes here"."""

import keras
import pytest

from kvision import _devices
from kvision import notebook


def test_default_platform_is_where_new_tensors_live():
    platform = _devices.default_platform()
    assert platform in ("cpu", "gpu", "tpu")
    # This machine has no accelerator; on one, the tensor's device agrees.
    device = str(getattr(keras.ops.zeros(()), "device", "cpu")).lower()
    if platform == "cpu":
        assert "gpu" not in device and "cuda" not in device
    assert notebook.describe_device()[0] == platform


@pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="jax.jit traces the call"
)
def test_default_platform_answers_while_jax_traces():
    import jax

    _devices.default_platform.cache_clear()
    traced = []

    def f(x):
        traced.append(_devices.default_platform())
        return x + 1

    jax.jit(f)(keras.ops.zeros((2,)))
    assert traced == [_devices.default_platform()]
