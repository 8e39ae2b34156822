import os

import pytest


def _add_xla_flag(flag):
    """Appends ``--name=value`` to XLA_FLAGS unless the user set ``name``."""
    name = flag.lstrip("-").split("=")[0]
    flags = os.environ.get("XLA_FLAGS", "")
    if name not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} {flag}".strip()


# Most JAX tests compile a small graph and run it once or a few times, so
# XLA's optimisation passes cost more than they save: without them the JAX
# suite ran about 30 % faster (layers, registry models, fit: 350 s -> 245 s
# on 2 cores). It changes no semantics; set the variable to 0 to measure
# with full optimisation. Subprocesses and notebook kernels inherit it.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if os.environ.get("KERAS_BACKEND") == "jax":
    # XLA's CPU compiler emits kernels through its newer "fusion emitters"
    # by default; the classic emitters compile each kernel in about half
    # the time (600 eager one-op compiles: 13.3 s -> 7.5 s; sl_swin_32px's
    # first training step 4.1 s -> 2.4 s), and an eager JAX call compiles
    # every operation it meets. Same operations, different code generator.
    _add_xla_flag("--xla_cpu_use_fusion_emitters=false")

# pytest-xdist workers (scripts/test.sh starts two) would each start one
# thread per core, oversubscribing the machine: the torch suite took 393 s
# that way and 136 s with one thread per worker on 2 cores. Give each worker
# its share of the cores, before any backend starts its thread pools.
_workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if _workers > 1:
    _threads = str(max(1, len(os.sched_getaffinity(0)) // _workers))
    os.environ.setdefault("OMP_NUM_THREADS", _threads)
    os.environ.setdefault("TF_NUM_INTRAOP_THREADS", _threads)
    if "intra_op_parallelism_threads" not in os.environ.get("XLA_FLAGS", ""):
        _add_xla_flag(f"--xla_cpu_multi_thread_eigen={_threads != '1'}".lower())
        _add_xla_flag(f"intra_op_parallelism_threads={_threads}")

import keras  # noqa: E402  (the variables must be set before it loads)


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
