"""The test suite's own set-up (tests/conftest.py) takes effect."""

import os

import keras
import pytest


@pytest.mark.backend("jax")
def test_jax_compiles_without_most_optimisations():
    # JAX defines the flag in its compiler module and reads it per compile.
    from jax._src import compiler

    expected = os.environ["JAX_DISABLE_MOST_OPTIMIZATIONS"] not in ("0", "")
    assert compiler._DISABLE_MOST_OPTIMIZATIONS.value is expected


@pytest.mark.backend("jax")
def test_jax_compiles_with_the_classic_cpu_emitters():
    # XLA reads XLA_FLAGS once, when the first backend starts; a flag it
    # did not know would have stopped the process there.
    import jax

    assert "--xla_cpu_use_fusion_emitters=false" in os.environ["XLA_FLAGS"]
    assert jax.devices()[0].platform == "cpu"


def test_each_xdist_worker_gets_its_share_of_the_cores():
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers == 1:
        pytest.skip("runs under pytest-xdist (scripts/test.sh)")
    threads = max(1, len(os.sched_getaffinity(0)) // workers)
    assert os.environ["OMP_NUM_THREADS"] == str(threads)
    assert f"intra_op_parallelism_threads={threads}" in os.environ["XLA_FLAGS"]
    if keras.backend.backend() == "torch":
        import torch

        assert torch.get_num_threads() == threads
