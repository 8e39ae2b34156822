import os

import keras
import pytest


def pytest_report_header(config):
    return f"keras {keras.__version__}, backend: {keras.backend.backend()}"


@pytest.fixture(autouse=True)
def _reset_keras_state():
    """Each test starts from the same seeds and a float32 dtype policy."""
    keras.utils.set_random_seed(1337)
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")
    # free_memory=False skips a full garbage collection per test, which is
    # slow in a process that has imported JAX.
    keras.backend.clear_session(free_memory=False)


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.backend("jax")`` runs a test on that backend only.

    ``@pytest.mark.one_backend("jax")`` marks a slow test whose claim holds
    on any backend (a model learns to a threshold): the suite runs it on
    the named backend only, unless ``KVISION_EVERY_BACKEND=1`` asks for
    every backend (to re-measure a threshold, say).
    """
    backend = keras.backend.backend()
    every = os.environ.get("KVISION_EVERY_BACKEND") == "1"
    for item in items:
        marker = item.get_closest_marker("backend")
        if marker is not None and backend not in marker.args:
            item.add_marker(
                pytest.mark.skip(reason=f"needs backend {marker.args}")
            )
        marker = item.get_closest_marker("one_backend")
        if marker is not None and not every and backend not in marker.args:
            item.add_marker(
                pytest.mark.skip(
                    reason=f"runs on {marker.args[0]} (KVISION_EVERY_BACKEND"
                    "=1 runs it here too)"
                )
            )
