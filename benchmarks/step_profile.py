"""Where a training step's time goes, by kind of operation.

The JAX backend's compiled step is read from ``jax.profiler``'s trace (one
event per XLA thunk, each matched to its instruction in the optimised HLO
that XLA dumps), the PyTorch backend's eager step and the native PyTorch
reference's from ``torch.profiler`` (each operator's own time). Every
operation falls in one kind:

- *products*: matrix products and convolutions (XLA: a ``dot`` or
  ``convolution``, or a fusion that contains one);
- *layout*: copies, transposes, concatenations, pads, slices, gathers;
- *elementwise and reductions*: everything else that computes (XLA's loop
  and reduction fusions; PyTorch's pointwise, normalisation and softmax
  kernels, the optimizer's updates);
- *outside the operations*: the profiled steps' wall time less the
  operations' (the framework's own work: Python dispatch, Keras'
  bookkeeping, waiting between XLA thunks; the profiler's own cost too,
  which the gap between the profiled and the plain step shows). XLA can
  run two thunks at once, so on JAX the sum of the operations can exceed
  the wall time, and this is then negative.

``products GFLOP/s`` is the step's analytic FLOPs (``benchmarks.flops``,
three forward passes) over the products' time: how fast each framework's
matrix kernels run on the same work.

    python -m benchmarks.step_profile --models vit_32px mixer_32px

Each (model, backend) runs in a process of its own. Writes
``step_profile.json`` and ``step_profile.md`` to ``--out``
(``benchmarks/results/`` by default).
"""

import argparse
import collections
import gzip
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

from benchmarks import throughput

KINDS = ("products", "layout", "elementwise and reductions")
BACKENDS = ("jax", "torch", throughput.REFERENCE)
STEPS = 5  # profiled steps (after the timed ones)
TOP = 6  # operations listed per row

_XLA_LAYOUT = {
    "copy",
    "transpose",
    "concatenate",
    "pad",
    "slice",
    "dynamic-slice",
    "dynamic-update-slice",
    "gather",
    "scatter",
    "broadcast",
    "reshape",
    "bitcast",
    "reverse",
}
_TORCH_PRODUCTS = re.compile(
    r"aten::(mm|addmm|bmm|baddbmm|matmul|linear|addbmm|"
    r"_scaled_dot_product\w*|\w*convolution\w*|conv\w+|mkldnn_\w*)$"
)
_TORCH_LAYOUT = re.compile(
    r"aten::(copy_|clone|contiguous|permute|transpose|t|cat|pad|"
    r"constant_pad_nd|index\w*|gather|scatter\w*|as_strided\w*|view|"
    r"reshape|expand|_unsafe_view|slice\w*|narrow|select\w*|split\w*|"
    r"unbind|stack|roll|flip|unfold|empty\w*|zeros\w*|ones\w*|full\w*|"
    r"_to_copy|to|detach\w*|alias|unsqueeze|squeeze|flatten|movedim)$"
)


# --- JAX: XLA's thunks, classified through the optimised HLO -------------

_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%?([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(
    r"^\s*(?:ROOT\s+)?%?(?P<name>[\w.\-]+)\s*=\s*.*?"
    r"\b(?P<op>[a-z][a-z0-9\-]*)\((?P<rest>.*)$"
)
_CALLS = re.compile(r"calls=%?([\w.\-]+)")


def parse_hlo(text):
    """``{computation: [(instruction, opcode, called computations)]}`` of
    an HLO module's text."""
    computations, current = {}, None
    for line in text.splitlines():
        header = _COMPUTATION.match(line)
        if header and "=" not in line.split("{")[0]:
            current = computations.setdefault(header.group(1), [])
            continue
        match = _INSTRUCTION.match(line)
        if match and current is not None:
            called = _CALLS.findall(match.group("rest"))
            current.append((match.group("name"), match.group("op"), called))
    return computations


def hlo_kinds(text):
    """Each instruction's kind (see the module's docstring) in an HLO
    module, fusions by what they contain."""
    computations = parse_hlo(text)

    def opcodes(name, seen=()):
        found = set()
        for _, op, called in computations.get(name, ()):
            found.add(op)
            for inner in called:
                if inner not in seen:
                    found |= opcodes(inner, seen + (name,))
        return found

    kinds = {}
    for instructions in computations.values():
        for name, op, called in instructions:
            inside = {op}
            for inner in called:
                inside |= opcodes(inner)
            kinds[name] = _kind_of_opcodes(inside - {"parameter", "fusion"})
    return kinds


def _kind_of_opcodes(opcodes):
    if opcodes & {"dot", "convolution"}:
        return "products"
    if opcodes and opcodes <= _XLA_LAYOUT | {"tuple", "get-tuple-element"}:
        return "layout"
    return "elementwise and reductions"


def _train_step_hlo(dump_dir):
    """The optimised HLO of the largest compiled training step."""
    files = sorted(
        pathlib.Path(dump_dir).glob("*train*after_optimizations.txt"),
        key=lambda path: path.stat().st_size,
    )
    if not files:
        raise RuntimeError(f"XLA dumped no training step into {dump_dir}")
    return files[-1].read_text()


def _jax_op_seconds(trace_dir, steps):
    """``{instruction: seconds per step}`` from a ``jax.profiler`` trace."""
    (path,) = pathlib.Path(trace_dir).glob("**/perfetto_trace.json.gz")
    with gzip.open(path) as file:
        trace = json.load(file)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    totals = collections.Counter()
    for event in events:
        args = event.get("args", {})
        if (
            event.get("ph") == "X"
            and "hlo_op" in args
            and "train" in args.get("hlo_module", "")
        ):
            totals[args["hlo_op"]] += event["dur"] * 1e-6 / steps
    return dict(totals)


def _timed_steps(step, steps):
    """Seconds per step of ``steps`` calls (``step`` returns a Python
    number, so the work is done when it returns)."""
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def _profile_jax(step, steps, dump_dir):
    import jax

    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            wall = _timed_steps(step, steps)
        seconds = _jax_op_seconds(trace_dir, steps)
    kinds = hlo_kinds(_train_step_hlo(dump_dir))
    ops = {
        name: (kinds.get(name, "elementwise and reductions"), value)
        for name, value in seconds.items()
    }
    return ops, wall


# --- PyTorch: operators' own time -----------------------------------------


def torch_kind(name):
    if _TORCH_PRODUCTS.match(name):
        return "products"
    if _TORCH_LAYOUT.match(name):
        return "layout"
    return "elementwise and reductions"


def _profile_torch(step, steps):
    import torch

    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities) as profile:
        wall = _timed_steps(step, steps)
    ops = {
        event.key: (
            torch_kind(event.key),
            event.self_cpu_time_total * 1e-6 / steps,
        )
        for event in profile.key_averages()
        if event.self_cpu_time_total > 0
    }
    return ops, wall


# --- one (model, backend), in a child process -----------------------------


def _kvision_step(name, batch, overrides):
    import keras

    from kvision import models

    keras.utils.set_random_seed(0)
    model = models.create_model(name, **overrides)
    model.compile(
        optimizer=keras.optimizers.AdamW(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = throughput.random_batch(
        batch, model.input_shape[1:], model.output_shape[-1]
    )
    return lambda: model.train_on_batch(x, y)


def _reference_step(name, batch, overrides):
    import torch

    from benchmarks import torch_reference
    from kvision import models

    torch.manual_seed(0)
    model = torch_reference.build_reference(name, **overrides)
    config = {**models.model_config(name), **overrides}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    x, y = throughput.random_batch(
        batch, config["input_shape"], config["num_classes"], True
    )
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    model.train()

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return float(loss)

    return step


def _forward_flops(name, overrides):
    from benchmarks import flops
    from kvision import models

    model = models.create_model(name, **overrides)
    return flops.model_forward_flops(model)[0]


def profile_child(args):
    quick = args.quick
    batch = throughput.QUICK["batch"] if quick else throughput.TRAIN_BATCH
    overrides = throughput.QUICK_OVERRIDES.get(args.model, {}) if quick else {}
    timing = (
        throughput.Timing(**throughput.QUICK["timing"])
        if quick
        else throughput.Timing()
    )
    if args.backend == throughput.REFERENCE:
        step = _reference_step(args.model, batch, overrides)
    else:
        step = _kvision_step(args.model, batch, overrides)
    wall, _ = timing.seconds_per_call(step)
    steps = 1 if quick else STEPS
    if args.backend == "jax":
        ops, profiled = _profile_jax(step, steps, args.dump)
    else:
        ops, profiled = _profile_torch(step, steps)
    row = {
        "model": args.model,
        "backend": args.backend,
        "batch": batch,
        "overrides": overrides,
        "step_seconds": round(wall, 5),
        "profiled_step_seconds": round(profiled, 5),
        "forward_flops": _forward_flops(args.model, overrides),
        "operations": {
            name: {"kind": kind, "seconds": round(seconds, 6)}
            for name, (kind, seconds) in ops.items()
        },
    }
    pathlib.Path(args.record).write_text(json.dumps(row) + "\n")


def run_profile(model, backend, quick, workdir):
    record = workdir / f"{model}-{backend}.json"
    dump = workdir / f"hlo-{model}"
    command = [
        sys.executable,
        "-m",
        "benchmarks.step_profile",
        "--child",
        "--backend",
        backend,
        "--model",
        model,
        "--record",
        str(record),
        "--dump",
        str(dump),
    ]
    command += ["--quick"] if quick else []
    env = dict(
        os.environ,
        KERAS_BACKEND="torch" if backend == throughput.REFERENCE else backend,
        KERAS_HOME=str(workdir / "keras"),
        TF_CPP_MIN_LOG_LEVEL="3",
    )
    if backend == "jax":
        flags = f"--xla_dump_to={dump} --xla_dump_hlo_as_text"
        env["XLA_FLAGS"] = f"{env.get('XLA_FLAGS', '')} {flags}".strip()
    done = subprocess.run(
        command,
        cwd=throughput.REPO,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{model} on {backend} failed:\n{done.stderr[-4000:]}"
        )
    return json.loads(record.read_text())


# --- the report ------------------------------------------------------------


def summarize(row, flops=None):
    """Seconds per kind, outside the operations, and the products' GFLOP/s
    (given the forward FLOPs, from the row or another backend's)."""
    seconds = dict.fromkeys(KINDS, 0.0)
    for operation in row["operations"].values():
        seconds[operation["kind"]] += operation["seconds"]
    inside = sum(seconds.values())
    profiled = row.get("profiled_step_seconds", row["step_seconds"])
    flops = row.get("forward_flops") or flops
    products = seconds["products"]
    return {
        **seconds,
        "operations": inside,
        "profiled": profiled,
        "outside": profiled - inside,
        "products_gflops": (
            3 * flops * row["batch"] / products / 1e9
            if flops and products
            else None
        ),
    }


def _grouped(row):
    """``(name, kind, count, seconds)`` of a row's operations, XLA's
    numbered instructions (``dot_fusion.12``) summed by name, longest
    first."""
    groups = {}
    for name, op in row["operations"].items():
        key = (re.sub(r"\.\d+$", "", name), op["kind"])
        count, seconds = groups.get(key, (0, 0.0))
        groups[key] = (count + 1, seconds + op["seconds"])
    return sorted(
        (
            (name, kind, count, seconds)
            for (name, kind), (count, seconds) in groups.items()
        ),
        key=lambda item: -item[3],
    )


def _ms(seconds):
    return f"{1000 * seconds:.1f}"


def report(result):
    """The markdown tables of a run."""
    lines = [
        "# Where a training step's time goes",
        "",
        f"Measured {result['date']} with `python -m benchmarks.step_profile` "
        f"({result['cpu_count']} CPUs; batch {result['rows'][0]['batch']}"
        + ("; quick mode: tiny models, one step" if result["quick"] else "")
        + "). Milliseconds per training step; *step* is the median wall "
        "time without the profiler, the kinds are the profiled operations' "
        "own time, *profiled* the wall time of the profiled steps, "
        "*outside* the profiled step less the operations (negative where "
        "XLA ran two at once). See the module's docstring for what "
        "each kind holds.",
        "",
    ]
    flops_of = {
        r["model"]: r["forward_flops"]
        for r in result["rows"]
        if r["forward_flops"]
    }
    models = list(dict.fromkeys(r["model"] for r in result["rows"]))
    for model in models:
        rows = [r for r in result["rows"] if r["model"] == model]
        lines += [
            f"## {model}",
            "",
            "| backend | step | profiled | products | layout | elementwise "
            "and reductions | outside | products GFLOP/s |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in rows:
            summary = summarize(row, flops_of.get(model))
            gflops = summary["products_gflops"]
            lines.append(
                f"| {row['backend']} | {_ms(row['step_seconds'])} | "
                + f"{_ms(summary['profiled'])} | "
                + " | ".join(_ms(summary[kind]) for kind in KINDS)
                + f" | {_ms(summary['outside'])} | "
                + (f"{gflops:.0f}" if gflops else "–")
                + " |"
            )
        lines += [
            "",
            "The longest operations (XLA's instructions grouped by name, "
            "their count in brackets):",
            "",
        ]
        for row in rows:
            listed = ", ".join(
                f"`{name}`{f' ({count})' if count > 1 else ''} "
                f"{_ms(seconds)} ({kind})"
                for name, kind, count, seconds in _grouped(row)[:TOP]
            )
            lines.append(f"- {row['backend']}: {listed}")
        lines.append("")
    return "\n".join(lines)


def run(args):
    import datetime

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            for backend in args.backends:
                start = time.perf_counter()
                row = run_profile(model, backend, args.quick, pathlib.Path(tmp))
                rows.append(row)
                print(
                    f"{model} {backend}: step {_ms(row['step_seconds'])} ms "
                    f"({time.perf_counter() - start:.0f} s)",
                    flush=True,
                )
    result = {
        "date": datetime.date.today().isoformat(),
        "quick": args.quick,
        "cpu_count": os.cpu_count(),
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "step_profile.json").write_text(json.dumps(result, indent=1))
    (args.out / "step_profile.md").write_text(report(result) + "\n")
    print(f"results in {args.out}")
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--models", nargs="+", default=list(throughput.SMALL_MODELS)
    )
    parser.add_argument(
        "--backends", nargs="+", default=list(BACKENDS), choices=BACKENDS
    )
    parser.add_argument("--out", type=pathlib.Path, default=throughput.RESULTS)
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: tiny, one step"
    )
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--backend")
    parser.add_argument("--model")
    parser.add_argument("--record")
    parser.add_argument("--dump")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.models) - set(throughput.MODELS))
    if unknown:
        parser.error(f"unknown --models {unknown}")
    if args.child:
        profile_child(args)
    else:
        run(args)


if __name__ == "__main__":
    main()
