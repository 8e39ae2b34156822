"""Throughput and hardware efficiency of every small model on every backend.

One command measures, for each CPU-sized registered model on TensorFlow,
JAX and PyTorch, and for the same architecture written in native PyTorch
(:mod:`benchmarks.torch_reference`):

- training throughput: images/s of full training steps at batch 64
  (forward, loss, backward and an AdamW update; ``train_on_batch`` after
  ``compile`` with the defaults a user gets, so JAX and TensorFlow compile
  the step and PyTorch runs eagerly);
- inference throughput: images/s of ``predict_on_batch`` at batch 256;
- the input pipeline's share of a training step: the median time
  :class:`kvision.training.fit.AugmentedBatches` takes to make one batch with
  the model's paper recipe adapted to CIFAR-10 (random crop, RandAugment,
  erasing, MixUp/CutMix, as the recipe has them), over that time plus the
  training step's. ``fit`` draws these batches in the main thread, between
  steps, so the share is the part of training time spent waiting for data;
- parameters, analytic FLOPs per image (:mod:`benchmarks.flops`), the
  achieved GFLOP/s and their fraction of the machine's float32 matmul peak,
  measured in the same run (a square matmul in NumPy and in each backend;
  the best one is the peak);
- peak resident memory of the training and of the inference phase.

Every measurement runs in a process of its own (the Keras backend is fixed
at import, and memory peaks stay per model): warm-up calls first (the
first one compiles), then the median of timed repeats. On JAX, ConvMixer
and ConvNeXt are also measured with the native depthwise convolution, the
path before ``DepthwiseConv2D(implementation="auto")``.

    python -m benchmarks.throughput                # everything, ~35 min
    python -m benchmarks.throughput --backends jax --models mixer_32px
    python -m benchmarks.throughput --report-only  # tables and plot again

``--dtype-policy mixed_float16`` (or ``mixed_bfloat16``) measures under a
Keras mixed-precision policy (the native models under ``torch.autocast``,
the matmul peak in the compute dtype). The models run on each backend's
default device (a GPU or TPU when there is one, the native models on CUDA
when PyTorch sees it); every row records its device.
:mod:`benchmarks.accelerator` runs float32 and mixed precision in one go.

Results go to ``--out`` (default ``benchmarks/results``):
``throughput.json``, ``throughput.md`` (tables and the targets of issue #8)
and ``throughput.png``.
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from benchmarks.budgets import SMALL_MODELS

# The families added after the first five: one CPU-sized variant of each
# (and the SL variants of the paper's Table 2 pairs). No native PyTorch
# reference exists for them, and their FLOPs are counted by PyTorch rather
# than computed from a formula (``benchmarks.flops``).
LATER_FAMILIES = (
    "swin_32px",
    "sl_swin_32px",
    "pit_32px",
    "sl_pit_32px",
    "cait_32px",
    "sl_cait_32px",
    "t2t_32px",
    "sl_t2t_32px",
    "davit_32px",
    "poolformer_32px",
    "metaformer_32px",
)
MODELS = SMALL_MODELS + LATER_FAMILIES

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
REPO = pathlib.Path(__file__).resolve().parents[1]
BACKENDS = ("tensorflow", "jax", "torch")
REFERENCE = "torch-native"
DEPTHWISE_MODELS = ("convmixer_256_8", "convnext_32px")
TRAIN_BATCH, INFER_BATCH = 64, 256
DTYPE_POLICIES = ("float32", "mixed_float16", "mixed_bfloat16")
MATMUL_SIZE = 2048


class Timing:
    """How long to measure: warm-up calls, then repeats until both
    ``min_repeats`` and ``min_seconds`` are reached (at most
    ``max_repeats``)."""

    def __init__(
        self, warmup=2, min_repeats=5, min_seconds=3.0, max_repeats=30
    ):
        self.warmup = warmup
        self.min_repeats = min_repeats
        self.min_seconds = min_seconds
        self.max_repeats = max_repeats

    def seconds_per_call(self, step):
        """The median wall time of ``step()``, and every timed call."""
        for _ in range(self.warmup):
            step()
        times = []
        start = time.perf_counter()
        while len(times) < self.max_repeats and (
            len(times) < self.min_repeats
            or time.perf_counter() - start < self.min_seconds
        ):
            begin = time.perf_counter()
            step()
            times.append(time.perf_counter() - begin)
        return statistics.median(times), times


QUICK = {"timing": dict(warmup=1, min_repeats=1, min_seconds=0.0), "batch": 8}
# Shrinks each family for --quick (the smoke test), same code paths.
QUICK_OVERRIDES = {
    "vit_32px": {"depth": 1},
    "sl_vit_32px": {"depth": 1},
    "convmixer_256_8": {"depth": 1},
    "mixer_32px": {"depth": 1},
    "convnext_32px": {"depths": (1, 1, 1, 1)},
}


# --- measurements, in the child processes --------------------------------


def _memory_mb(field):
    """A field of /proc/self/status in MB (Linux), or None elsewhere."""
    try:
        status = pathlib.Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(field + ":"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def _reset_peak_memory():
    # Writing 5 to clear_refs resets VmHWM (Linux >= 4.0), so that each
    # phase gets its own peak; where it is refused the peak is cumulative.
    try:
        pathlib.Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _summary(times, batch):
    median = statistics.median(times)
    return {
        "images_per_second": round(batch / median, 2),
        "median_seconds": round(median, 5),
        # What a run of steps costs: a batch's making varies with the
        # augmentations drawn for it, so its median understates it.
        "mean_seconds": round(statistics.fmean(times), 5),
        "repeats": len(times),
        "spread": round((max(times) - min(times)) / median, 3),
    }


def _phase(step, timing, batch):
    per_phase = _reset_peak_memory()
    _, times = timing.seconds_per_call(step)
    return dict(
        _summary(times, batch),
        peak_rss_mb=_memory_mb("VmHWM"),
        peak_is_per_phase=per_phase,
    )


def _paired_phases(ready_step, fed_step, timing, batch):
    """A step on a ready batch and a step fed by the pipeline, alternated
    (warm-up pairs, then pairs until ``timing``'s repeats and seconds), so
    that the machine's drift over the run falls on both alike: their
    difference is the input pipeline's part of a step. Returns the fed
    phase with the ready one as its ``"ready"`` entry."""
    per_phase = _reset_peak_memory()
    for _ in range(timing.warmup):
        ready_step()
        fed_step()
    ready, fed = [], []
    start = time.perf_counter()
    while len(fed) < timing.max_repeats and (
        len(fed) < timing.min_repeats
        or time.perf_counter() - start < timing.min_seconds
    ):
        begin = time.perf_counter()
        ready_step()
        middle = time.perf_counter()
        fed_step()
        ready.append(middle - begin)
        fed.append(time.perf_counter() - middle)
    return dict(
        _summary(fed, batch),
        ready=_summary(ready, batch),
        peak_rss_mb=_memory_mb("VmHWM"),
        peak_is_per_phase=per_phase,
    )


def random_batch(batch, shape, num_classes, channels_first=False):
    """Seeded float32 images in [0, 1) and integer labels."""
    rng = np.random.default_rng(0)
    images = rng.uniform(size=(batch, *shape)).astype("float32")
    if channels_first:
        images = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    labels = rng.integers(0, num_classes, size=batch)
    return images, labels


def force_depthwise(model, implementation):
    """Sets every ``kvision.layers.DepthwiseConv2D`` of ``model`` to
    ``implementation`` (``"native"``, ``"shifted"`` or ``"auto"``)."""
    from kvision import layers

    for layer in model._flatten_layers():
        if isinstance(layer, layers.DepthwiseConv2D):
            layer.implementation = implementation


def compute_dtype(dtype_policy):
    """``"float32"``, ``"float16"`` or ``"bfloat16"``."""
    return dtype_policy.removeprefix("mixed_")


def measure_kvision(
    name, timing, batches, overrides, depthwise, dtype_policy="float32"
):
    """Train and inference throughput of a kvision model on this backend."""
    import keras

    from benchmarks import flops
    from kvision import models
    from kvision._devices import default_platform

    baseline = _memory_mb("VmRSS")
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(dtype_policy)
    model = models.create_model(name, **overrides)
    if depthwise != "auto":
        force_depthwise(model, depthwise)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    shape, classes = model.input_shape[1:], model.output_shape[-1]
    x, y_train = random_batch(batches["train"], shape, classes)
    train = _phase(lambda: model.train_on_batch(x, y_train), timing, len(x))
    x, _ = random_batch(batches["infer"], shape, classes)
    infer = _phase(lambda: model.predict_on_batch(x), timing, len(x))
    input_pipeline = measure_input_pipeline(
        name,
        shape,
        classes,
        timing,
        batches["train"],
        train_step=lambda images: model.train_on_batch(images, y_train),
    )
    forward, flops_source = flops.model_forward_flops(model)
    return {
        "parameters": model.count_params(),
        "forward_flops": forward,
        "flops_source": flops_source,
        "jit_compile": bool(model.jit_compile),
        "depthwise": depthwise,
        "device": default_platform(),
        "rss_before_model_mb": baseline,
        "train": train,
        "infer": infer,
        "input": input_pipeline,
    }


# The dataset whose adapted recipe the input pipeline is measured with: the
# benchmark's models take CIFAR-sized images.
INPUT_DATASET = {"num_train": 50_000, "mirror_invariant": True}


def measure_input_pipeline(
    name, shape, num_classes, timing, batch, train_step=None
):
    """The input pipeline's cost the way ``fit_model`` pays it
    (:class:`kvision.training.fit.AugmentedBatches` with the model's paper
    recipe, adapted to a CIFAR-10-sized dataset at this batch size, on
    seeded uint8 images): the time to make one batch alone, and, given
    ``train_step`` (a callable training on a batch of images), the time of a
    training step fed by the pipeline as ``fit_model`` makes it
    (prefetching on a GPU or TPU, serial on a CPU), batches asked for in
    Keras' order, alternated with steps on a ready batch; and which
    augmentations that recipe applies."""
    from kvision import training
    from kvision.training.fit import AugmentedBatches

    recipe = training.adapt_recipe(
        training.get_recipe(name),
        image_size=shape[0],
        batch_size=batch,
        **INPUT_DATASET,
    )
    rng = np.random.default_rng(0)
    count = 4 * batch
    images = rng.integers(0, 256, size=(count, *shape), dtype="uint8")
    labels = rng.integers(0, num_classes, size=count)

    def batches(prefetch):
        return AugmentedBatches(
            images, labels, num_classes, recipe, seed=0, prefetch=prefetch
        )

    def in_keras_order(dataset):
        while True:
            for index in range(len(dataset)):
                yield dataset[index][0]
            dataset.on_epoch_end()

    alone = in_keras_order(batches(prefetch=False))
    # Each batch draws its own augmentations: warm up until every kind has
    # run (JAX compiles an operation the first time it sees it; the fed
    # step below then finds them compiled) and average over many batches.
    making = Timing(
        warmup=16 * timing.warmup,
        min_repeats=timing.min_repeats,
        min_seconds=timing.min_seconds,
        max_repeats=4 * timing.max_repeats,
    )
    phase = _phase(lambda: next(alone), making, batch)
    if train_step is not None:
        pipeline = batches(prefetch="auto")  # as fit_model makes it
        fed = in_keras_order(pipeline)
        ready = next(in_keras_order(batches(prefetch=False)))
        # The share is a small difference of two step times: twice the
        # time of the other phases, to steady it.
        pairs = Timing(
            warmup=timing.warmup,
            min_repeats=timing.min_repeats,
            min_seconds=2 * timing.min_seconds,
            max_repeats=2 * timing.max_repeats,
        )
        phase["pipelined"] = _paired_phases(
            lambda: train_step(ready),
            lambda: train_step(next(fed)),
            pairs,
            batch,
        )
        phase["pipelined"]["prefetch"] = pipeline.prefetch
    phase["recipe"] = {
        "crop_padding": recipe.crop_padding,
        "flip": recipe.flip,
        "rand_augment_ops": recipe.rand_augment_ops,
        "erasing": recipe.erasing,
        "mixup": recipe.mixup,
        "cutmix": recipe.cutmix,
        "mix_prob": recipe.mix_prob,
    }
    return phase


def measure_reference(name, timing, batches, overrides, dtype_policy="float32"):
    """The same measurements for the native PyTorch model (eager), on CUDA
    when PyTorch sees it; mixed precision through ``torch.autocast`` (and a
    gradient scaler for float16, as Keras' ``mixed_float16`` scales the
    loss)."""
    import torch

    from benchmarks import torch_reference
    from kvision import models

    device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = compute_dtype(dtype_policy)

    def autocast():
        return torch.autocast(
            device,
            dtype=getattr(torch, dtype),
            enabled=dtype != "float32",
        )

    baseline = _memory_mb("VmRSS")
    torch.manual_seed(0)
    model = torch_reference.build_reference(name, **overrides).to(device)
    config = {**models.model_config(name), **overrides}
    shape, classes = config["input_shape"], config["num_classes"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler(device, enabled=dtype == "float16")
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = random_batch(batches["train"], shape, classes, channels_first=True)
    x, y = torch.from_numpy(x).to(device), torch.from_numpy(y).to(device)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(x), y)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        return float(loss)  # waits for the device

    model.train()
    train = _phase(train_step, timing, len(x))
    images, _ = random_batch(
        batches["infer"], shape, classes, channels_first=True
    )
    images = torch.from_numpy(images).to(device)
    model.eval()

    def infer_step():
        with torch.inference_mode(), autocast():
            return model(images).float().cpu().numpy()

    infer = _phase(infer_step, timing, len(images))
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "jit_compile": False,
        "depthwise": "native",
        "device": f"{device}:0",
        "rss_before_model_mb": baseline,
        "train": train,
        "infer": infer,
    }


def measure_matmul(backend, timing, size=MATMUL_SIZE, dtype="float32"):
    """GFLOP/s of a ``size x size`` matmul in NumPy (float32, on the CPU)
    or in a backend (``dtype``, on its default device)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size), dtype="float32") for _ in "ab")
    device = "cpu"
    if backend == "numpy":
        dtype = "float32"

        def step():
            return a @ b
    else:
        import keras

        from kvision._devices import default_platform

        device = default_platform()
        a, b = (keras.ops.cast(m, dtype) for m in (a, b))

        def step():
            # Back to NumPy so that asynchronous backends finish the product.
            return keras.ops.convert_to_numpy(keras.ops.matmul(a, b))

    median, times = timing.seconds_per_call(step)
    return {
        "size": size,
        "gflops_per_second": round(2 * size**3 / median / 1e9, 2),
        "repeats": len(times),
        "dtype": dtype,
        "device": device,
    }


def _versions():
    versions = {"python": platform.python_version(), "numpy": np.__version__}
    for module in ("keras", "tensorflow", "jax", "torch"):
        if module in sys.modules:
            versions[module] = sys.modules[module].__version__
    return versions


def run_child(args):
    timing = Timing(**QUICK["timing"]) if args.quick else Timing()
    batch = QUICK["batch"] if args.quick else None
    batches = {"train": batch or TRAIN_BATCH, "infer": batch or INFER_BATCH}
    overrides = QUICK_OVERRIDES.get(args.model, {}) if args.quick else {}
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    if args.child == "matmul":
        size = 256 if args.quick else MATMUL_SIZE
        dtype = compute_dtype(args.dtype_policy)
        row = measure_matmul(args.backend, timing, size, dtype)
    elif args.backend == REFERENCE:
        row = measure_reference(
            args.model, timing, batches, overrides, args.dtype_policy
        )
    else:
        row = measure_kvision(
            args.model,
            timing,
            batches,
            overrides,
            args.depthwise,
            args.dtype_policy,
        )
    row.update(
        kind=args.child,
        dtype_policy=args.dtype_policy,
        model=args.model,
        backend=args.backend,
        train_batch=batches["train"],
        infer_batch=batches["infer"],
        overrides=overrides,
        seconds=round(time.perf_counter() - start, 1),
        load_before=round(load_before, 2),
        load_after=round(os.getloadavg()[0], 2),
        threads=_threads(),
        versions=_versions(),
    )
    pathlib.Path(args.record).write_text(json.dumps(row) + "\n")


def _threads():
    if "torch" in sys.modules:
        return sys.modules["torch"].get_num_threads()
    return os.cpu_count()


# --- orchestration ---------------------------------------------------------


def jobs(models, backends):
    """Every (kind, backend, model, depthwise) the run measures, in order."""
    planned = [("matmul", "numpy", None, "auto")]
    planned += [("matmul", b, None, "auto") for b in backends if b in BACKENDS]
    for model in models:
        for backend in backends:
            if backend == REFERENCE and not has_reference(model):
                continue
            planned.append(("model", backend, model, "auto"))
            if backend == "jax" and model in DEPTHWISE_MODELS:
                planned.append(("model", backend, model, "native"))
    return planned


def has_reference(model):
    """Whether :mod:`benchmarks.torch_reference` has ``model`` (it covers
    the small models, ``tests/test_torch_reference.py`` checks them)."""
    return model in SMALL_MODELS


def _child_backend(backend):
    # The native reference and the NumPy matmul load Keras only to read
    # model configurations; torch is the backend that imports nothing more.
    return "torch" if backend in (REFERENCE, "numpy") else backend


def run_job(
    kind, backend, model, depthwise, quick, workdir, dtype_policy="float32"
):
    record = workdir / f"{kind}-{backend}-{model}-{depthwise}.json"
    command = [
        sys.executable,
        "-m",
        "benchmarks.throughput",
        "--child",
        kind,
        "--backend",
        backend,
        "--depthwise",
        depthwise,
        "--record",
        str(record),
        "--dtype-policy",
        dtype_policy,
    ]
    command += ["--model", model] if model else []
    command += ["--quick"] if quick else []
    env = dict(
        os.environ,
        KERAS_BACKEND=_child_backend(backend),
        KERAS_HOME=str(workdir / "keras"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    done = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{kind} {backend} {model} failed:\n{done.stderr[-4000:]}"
        )
    return json.loads(record.read_text())


def run(args):
    import tempfile

    from benchmarks import throughput_report

    backends = list(args.backends)
    if "torch" in backends and not args.no_reference:
        backends.append(REFERENCE)
    planned = jobs(args.models, backends)
    rows, start = [], time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for number, (kind, backend, model, depthwise) in enumerate(planned, 1):
            row = run_job(
                kind,
                backend,
                model,
                depthwise,
                args.quick,
                pathlib.Path(tmp),
                args.dtype_policy,
            )
            rows.append(row)
            print(
                f"[{number}/{len(planned)}] {throughput_report.describe(row)}",
                flush=True,
            )
    result = {
        "date": datetime.date.today().isoformat(),
        "quick": args.quick,
        "dtype_policy": args.dtype_policy,
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        },
        "train_batch": QUICK["batch"] if args.quick else TRAIN_BATCH,
        "infer_batch": QUICK["batch"] if args.quick else INFER_BATCH,
        "total_seconds": round(time.perf_counter() - start, 1),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "throughput.json").write_text(json.dumps(result, indent=1))
    throughput_report.write(args.out)
    print(f"total {result['total_seconds']} s; results in {args.out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS))
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: tiny, one repeat"
    )
    parser.add_argument(
        "--dtype-policy",
        default="float32",
        choices=DTYPE_POLICIES,
        help="Keras dtype policy of the models (and compute dtype of the "
        "matmul peak)",
    )
    parser.add_argument(
        "--no-reference",
        action="store_true",
        help="skip the native PyTorch models",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="rebuild throughput.md/png from throughput.json",
    )
    # The child processes' own arguments.
    parser.add_argument("--child", choices=("model", "matmul"))
    parser.add_argument("--backend")
    parser.add_argument("--model")
    parser.add_argument("--depthwise", default="auto")
    parser.add_argument("--record")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown --models {unknown}; choose from {MODELS}")
    if args.child:
        run_child(args)
    elif args.report_only:
        from benchmarks import throughput_report

        throughput_report.write(args.out)
    else:
        run(args)


if __name__ == "__main__":
    main()
