"""The throughput suite on an accelerator, in float32 and mixed precision.

On a machine with a GPU (or TPU), one command runs
:mod:`benchmarks.throughput` twice, with the paths kvision takes there
(fused attention where no weights are returned; the backend's own
depthwise kernel, since the shifted one was measured to win on CPUs only):

    python -m benchmarks.accelerator
    python -m benchmarks.accelerator --backends jax torch --models vit_32px

- float32, into ``<out>/<device>/float32/``;
- mixed precision, into ``<out>/<device>/mixed_float16/`` on a GPU
  (``mixed_bfloat16`` on a TPU),

each with the same ``throughput.json``, ``throughput.md`` and
``throughput.png`` as the CPU run. First it asks each backend, in a process
of its own, which device it computes on, and stops if none has an
accelerator, so a CPU-only machine does not spend half an hour measuring
what ``benchmarks/results`` already holds (``--allow-cpu`` runs anyway:
the test suite does so with ``--quick``, mixed precision in bfloat16).
"""

import argparse
import os
import pathlib
import subprocess
import sys

from benchmarks import throughput

DEVICE_PROBE = (
    "from kvision._devices import default_platform; print(default_platform())"
)


def device_of(backend):
    """The kind of device ``backend`` computes on (``"gpu"``, ``"cpu"``,
    ...), asked in a fresh process since the backend is fixed at import."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", DEVICE_PROBE],
        cwd=throughput.REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def device_kind(device):
    """``"gpu"``, ``"tpu"`` or ``"cpu"`` for a device name."""
    kind = device.split(":")[0].split("/")[-1]
    return "gpu" if kind == "cuda" else kind


def mixed_policy(kind):
    """The mixed-precision policy a device kind runs fastest: float16 on
    GPUs (tensor cores), bfloat16 on TPUs and CPUs."""
    return "mixed_float16" if kind == "gpu" else "mixed_bfloat16"


def plan(devices, allow_cpu=False):
    """``(device kind, [dtype policies])`` for the run, from each backend's
    device; raises ``SystemExit`` when no backend has an accelerator and
    ``allow_cpu`` is false, or when backends disagree on the kind."""
    kinds = {device_kind(d) for d in devices.values()}
    accelerated = kinds & {"gpu", "tpu"}
    if not accelerated and not allow_cpu:
        raise SystemExit(
            f"No accelerator: every backend computes on the CPU ({devices})."
            " The CPU numbers are in benchmarks/results; --allow-cpu runs "
            "this anyway."
        )
    if len(kinds) > 1:
        raise SystemExit(
            f"The backends compute on different kinds of device ({devices});"
            " install each framework's accelerator build, or choose "
            "--backends."
        )
    (kind,) = kinds
    return kind, ["float32", mixed_policy(kind)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--backends",
        nargs="+",
        default=list(throughput.BACKENDS),
        choices=throughput.BACKENDS,
    )
    parser.add_argument("--models", nargs="+", default=list(throughput.MODELS))
    parser.add_argument(
        "--out", type=pathlib.Path, default=throughput.RESULTS / "accelerator"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-reference", action="store_true")
    parser.add_argument("--allow-cpu", action="store_true")
    args = parser.parse_args(argv)

    devices = {backend: device_of(backend) for backend in args.backends}
    kind, policies = plan(devices, allow_cpu=args.allow_cpu)
    print(f"devices: {devices}; dtype policies: {policies}", flush=True)
    for policy in policies:
        out = args.out / kind / policy
        command = ["--models", *args.models, "--backends", *args.backends]
        command += ["--dtype-policy", policy, "--out", str(out)]
        command += ["--quick"] * args.quick
        command += ["--no-reference"] * args.no_reference
        throughput.main(command)


if __name__ == "__main__":
    main()
