"""Accuracy under a CPU budget: test accuracy against training wall time.

Trains each CPU-sized model of :mod:`benchmarks.budgets` on each dataset for
a few epoch budgets (every budget is a run of its own, so the learning-rate
schedule always spans the whole budget), on the current Keras backend, and
adds a linear probe (logistic regression on raw pixels) per dataset as the
floor a model has to clear. Run from the repository root, one backend per
process:

    KERAS_BACKEND=jax python -m benchmarks.accuracy_under_budget
    python -m benchmarks.accuracy_under_budget --report-only

It writes ``accuracy_<backend>.json`` into ``--out`` and then rebuilds
``accuracy.md`` (a table) and ``accuracy_vs_time.png`` from every backend's
JSON file found there. ``bash benchmarks/run_accuracy.sh`` runs all three
backends. Other seeds (``--seed 1``) write ``accuracy_<backend>_seed1.json``
beside it, and the table adds the median over the seeds of every run made
with more than one. A seed draws the data too (the digits' split, the
cluttered images); ``--no-probe`` skips the linear probe on that draw (4
minutes on cluttered digits).
"""

import argparse
import datetime
import json
import os
import pathlib
import platform
import statistics
import time

import keras
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FormatStrFormatter
from matplotlib.ticker import LogFormatter

from benchmarks import budgets
from kvision import data
from kvision.training.fit import train

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
# A third of the budget and the whole of it: two points per line in the plot
# at 4/3 of the cost of the full budget alone.
BUDGET_FRACTIONS = (1 / 3, 1)
QUICK_SIZES = {"num_train": 64, "num_test": 32}
PROBE = "linear_probe"


def epoch_budgets(budget, dataset):
    """The epoch counts the benchmark trains ``budget`` for on ``dataset``."""
    full = budget.epochs[dataset]
    return sorted({max(1, round(full * f)) for f in BUDGET_FRACTIONS})


def train_run(budget, dataset, epochs, seed, quick):
    """Trains one budget; returns its row of the results."""
    kwargs = budget.train_kwargs(dataset, epochs=epochs, seed=seed)
    if quick:
        kwargs.update(QUICK_SIZES)
    start, cpu_start = time.perf_counter(), time.process_time()
    metrics = train(**kwargs, verbose=0)
    cpu_seconds = time.process_time() - cpu_start
    return {
        "model": budget.model,
        "dataset": dataset,
        "backend": metrics["backend"],
        "parameters": metrics["parameters"],
        "epochs": metrics["epochs"],
        "batch_size": metrics["batch_size"],
        "image_size": budget.image_size,
        "overrides": budget.overrides,
        # fit() alone (training plus the per-epoch evaluation), and
        # everything including building the model and the final evaluation.
        "train_seconds": metrics["train_seconds"],
        "total_seconds": round(time.perf_counter() - start, 2),
        # CPU time of this process (all its threads) over the whole run: less
        # sensitive than wall time to other jobs on a shared machine.
        "cpu_seconds": round(cpu_seconds, 2),
        "test_accuracy": round(metrics["test_accuracy"], 4),
    }


def linear_probe(dataset, image_size, seed, quick):
    """Logistic regression on the raw pixels of ``dataset``."""
    # scikit-learn is an optional dependency of kvision (the examples extra).
    from kvision.selfsup import linear_probe_accuracy

    sizes = QUICK_SIZES if quick else budgets.DATASET_SIZES[dataset]
    (x, y), (x_test, y_test) = data.load_dataset(
        dataset, image_size=image_size, seed=seed, **sizes
    )

    def features(images):
        # float64 pixels, as recorded (float32 ones move the digits probe
        # from 0.961 to 0.964: one test image).
        return images.reshape(len(images), -1) / 255.0

    start = time.perf_counter()
    accuracy = linear_probe_accuracy(
        features(x), y, features(x_test), y_test, standardize=False
    )
    seconds = time.perf_counter() - start
    return {
        "model": PROBE,
        "dataset": dataset,
        "backend": "scikit-learn",
        # A weight per pixel value and class, a bias per class.
        "parameters": (x[0].size + 1) * len(data.class_names(dataset)),
        "epochs": None,
        "image_size": image_size,
        "train_seconds": round(seconds, 2),
        "total_seconds": round(seconds, 2),
        # A one-thread fit, so its wall time stands in for its CPU time.
        "cpu_seconds": round(seconds, 2),
        "test_accuracy": round(accuracy, 4),
    }


def run(models, datasets, epochs, seed, quick, out, probe=True):
    """Trains everything asked for on this backend; writes its JSON file."""
    backend = keras.backend.backend()
    load_before = os.getloadavg()
    runs = []
    for dataset in datasets:
        for name in models:
            budget = budgets.BUDGETS[name]
            for count in epochs or epoch_budgets(budget, dataset):
                row = train_run(budget, dataset, count, seed, quick)
                print(json.dumps(row), flush=True)
                runs.append(row)
    probe_sizes = sorted({budgets.BUDGETS[name].image_size for name in models})
    baselines = [
        linear_probe(dataset, size, seed, quick)
        for dataset in datasets
        for size in probe_sizes
        if probe
    ]
    for row in baselines:
        print(json.dumps(row), flush=True)
    record = {
        "backend": backend,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "date": datetime.date.today().isoformat(),
        "seed": seed,
        "quick": quick,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        # How busy the machine was (1-minute load average, before and
        # after): wall times are only comparable at similar loads.
        "load_average": [
            round(load_before[0], 2),
            round(os.getloadavg()[0], 2),
        ],
        "runs": runs,
        "baselines": baselines,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / (
        f"accuracy_{backend}.json"
        if seed == 0
        else f"accuracy_{backend}_seed{seed}.json"
    )
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def load_results(out):
    """Every backend's record found in ``out``, in backend order."""
    return [
        json.loads(path.read_text())
        for path in sorted(out.glob("accuracy_*.json"))
    ]


def _seconds(value):
    return f"{value:.1f}"


def markdown_table(records):
    """The combined results as a markdown document."""
    lines = [
        "# Accuracy under a CPU budget",
        "",
        "Written by `benchmarks/accuracy_under_budget.py` (see "
        "`benchmarks/README.md`); do not edit by hand. Each row is one "
        "training run, as `python -m kvision.train` trains by default (the "
        "paper's recipe adapted to the dataset), whose schedule spans the "
        "stated epochs; *wall time* is `fit()` (training plus the "
        "per-epoch evaluation), *CPU time* the process's CPU time over the "
        "whole run (building, compiling, training, evaluating). Times are "
        "measured on a CPU shared with other jobs and are noisy; the load "
        "averages below say how busy it was.",
        "",
    ]
    for record in records:
        lines.append(
            f"- {record['backend']}: keras {record['keras']}, Python "
            f"{record['python']}, {record['machine']}, {record['date']}, "
            f"seed {record['seed']}, OMP_NUM_THREADS="
            f"{record['OMP_NUM_THREADS'] or 'unset'}, load average "
            f"{record['load_average'][0]} before and "
            f"{record['load_average'][1]} after"
            + (" (**quick mode: tiny data, not a measurement**)")
            * record["quick"]
        )
    lines += [
        "",
        "| model | dataset | backend | params | epochs | wall time (s) "
        "| CPU time (s) | test accuracy | seed |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    runs = _runs_with_seeds(records)
    for row in runs:
        lines.append(
            f"| {row['model']} | {row['dataset']} | {row['backend']} "
            f"| {row['parameters']:,} | {row['epochs']} "
            f"| {_seconds(row['train_seconds'])} "
            f"| {_seconds(row['cpu_seconds'])} "
            f"| {row['test_accuracy']:.3f} | {row['seed']} |"
        )
    medians = _medians_over_seeds(runs)
    if medians:
        lines += [
            "",
            "Medians over seeds, for the runs made with more than one:",
            "",
            "| model | dataset | backend | epochs | seeds | median test "
            "accuracy | lowest | highest |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for (model, dataset, backend, epochs), values in medians:
            lines.append(
                f"| {model} | {dataset} | {backend} | {epochs} "
                f"| {len(values)} | {statistics.median(values):.3f} "
                f"| {min(values):.3f} | {max(values):.3f} |"
            )
    baselines = _baselines(records)
    if baselines:
        lines += [
            "",
            "Linear probe (scikit-learn `LogisticRegression` on raw pixels "
            "scaled to [0, 1]), the floor a model has to clear:",
            "",
            "| dataset | image size | params | fit time (s) | test accuracy |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for row in baselines:
            lines.append(
                f"| {row['dataset']} | {row['image_size']} "
                f"| {row['parameters']:,} "
                f"| {_seconds(row['train_seconds'])} "
                f"| {row['test_accuracy']:.3f} |"
            )
    configs = {
        row["model"]: (row["image_size"], row["batch_size"], row["overrides"])
        for row in runs
    }
    if configs:
        lines += [
            "",
            "Configurations (`create_model` overrides of the registered "
            "variant, from `benchmarks/budgets.py`):",
            "",
            "| model | image size | batch size | overrides |",
            "| --- | ---: | ---: | --- |",
        ]
        for model, (size, batch, overrides) in sorted(configs.items()):
            shown = ", ".join(f"{k}={v}" for k, v in overrides.items())
            lines.append(f"| {model} | {size} | {batch} | {shown} |")
    return "\n".join(lines) + "\n"


def _runs_with_seeds(records):
    """Every run, with its record's seed, in table order."""
    runs = [
        dict(row, seed=record["seed"])
        for record in records
        for row in record["runs"]
    ]
    return sorted(
        runs,
        key=lambda r: (
            r["dataset"],
            r["model"],
            r["backend"],
            r["epochs"],
            r["seed"],
        ),
    )


def _medians_over_seeds(runs):
    """``[((model, dataset, backend, epochs), accuracies), ...]`` for the
    runs repeated with other seeds."""
    groups = {}
    for row in runs:
        key = (row["model"], row["dataset"], row["backend"], row["epochs"])
        groups.setdefault(key, []).append(row["test_accuracy"])
    return [(key, values) for key, values in groups.items() if len(values) > 1]


def _baselines(records):
    """The linear-probe rows, once each: they do not depend on the backend
    (NumPy and scikit-learn only), so every record holds the same ones."""
    unique = {}
    for record in records:
        for row in record["baselines"]:
            unique.setdefault((row["dataset"], row["image_size"]), row)
    return [unique[key] for key in sorted(unique)]


def accuracy_figure(records):
    """Test accuracy against wall time, one panel per dataset (the seed-0
    runs: one line per model and backend).

    Returns:
        A ``matplotlib.figure.Figure``: one line per model and backend
        (colour: model; line style and marker: backend), the linear probe
        dashed and chance dotted.
    """
    runs = [
        row
        for record in records
        if record["seed"] == 0
        for row in record["runs"]
    ]
    datasets = sorted({row["dataset"] for row in runs})
    models = sorted({row["model"] for row in runs})
    backends = sorted({row["backend"] for row in runs})
    colours = {m: f"C{i}" for i, m in enumerate(models)}
    styles = dict(zip(backends, ("-", "--", ":", "-."), strict=False))
    markers = dict(zip(backends, ("o", "s", "^", "D"), strict=False))
    figure = Figure(figsize=(6.5 * max(len(datasets), 1) + 1.8, 4.8))
    axes = figure.subplots(1, max(len(datasets), 1), squeeze=False)[0]
    for ax, dataset in zip(axes, datasets, strict=False):
        for model in models:
            for backend in backends:
                line = sorted(
                    (r["train_seconds"], r["test_accuracy"])
                    for r in runs
                    if (r["dataset"], r["model"], r["backend"])
                    == (dataset, model, backend)
                )
                if line:
                    seconds, accuracy = zip(*line, strict=True)
                    ax.plot(
                        seconds,
                        accuracy,
                        color=colours[model],
                        linestyle=styles[backend],
                        marker=markers[backend],
                    )
        for row in _baselines(records):
            if row["dataset"] == dataset:
                ax.axhline(row["test_accuracy"], color="grey", linestyle="--")
                ax.annotate(
                    f"linear probe {row['test_accuracy']:.3f}",
                    (0.01, row["test_accuracy"]),
                    xycoords=("axes fraction", "data"),
                    xytext=(0, 3),
                    textcoords="offset points",
                    fontsize=7,
                    color="grey",
                )
        ax.axhline(
            1 / len(data.class_names(dataset)), color="grey", linestyle=":"
        )
        ax.set_xscale("log")
        # Seconds as plain numbers (a log axis would print 4x10^0).
        ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(
            LogFormatter(labelOnlyBase=False, minor_thresholds=(2, 1))
        )
        ax.tick_params(axis="x", which="minor", labelsize=7)
        ax.set_xlabel("wall time of fit() (s, log scale)")
        ax.set_ylabel("test accuracy")
        ax.set_ylim(0, 1)
        ax.set_title(dataset)
        ax.grid(alpha=0.3, which="both")
    handles = [Line2D([], [], color=colours[m], label=m) for m in models] + [
        Line2D(
            [],
            [],
            color="black",
            linestyle=styles[b],
            marker=markers[b],
            label=b,
        )
        for b in backends
    ]
    handles += [
        Line2D([], [], color="grey", linestyle="--", label="linear probe"),
        Line2D([], [], color="grey", linestyle=":", label="chance"),
    ]
    figure.legend(handles=handles, loc="center right", fontsize=8)
    figure.tight_layout(rect=(0, 0, 1 - 1.7 / figure.get_figwidth(), 1))
    return figure


def write_report(out):
    """Rebuilds ``accuracy.md`` and ``accuracy_vs_time.png`` in ``out``."""
    records = load_results(out)
    if not records:
        raise SystemExit(f"No accuracy_<backend>.json in {out}")
    (out / "accuracy.md").write_text(markdown_table(records))
    accuracy_figure(records).savefig(out / "accuracy_vs_time.png", dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--models",
        nargs="+",
        choices=sorted(budgets.BUDGETS),
        default=list(budgets.BUDGETS),
    )
    parser.add_argument(
        "--datasets",
        nargs="+",
        choices=budgets.DATASETS,
        default=list(budgets.DATASETS),
    )
    parser.add_argument(
        "--epochs",
        nargs="+",
        type=int,
        help="epoch budgets for every model (default: a third of and all "
        "of each model's budget in benchmarks/budgets.py)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--no-probe",
        action="store_true",
        help="skip the linear probe on this seed's draw of the data",
    )
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"a smoke run: {QUICK_SIZES['num_train']} training images and "
        "1 epoch unless --epochs says otherwise",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only rebuild the table and plot from the JSON files in --out",
    )
    args = parser.parse_args(argv)
    if not args.report_only:
        epochs = args.epochs or ([1] if args.quick else None)
        path = run(
            args.models,
            args.datasets,
            epochs,
            args.seed,
            args.quick,
            args.out,
            probe=not args.no_probe,
        )
        print(f"wrote {path}")
    write_report(args.out)
    print(f"wrote {args.out / 'accuracy.md'}, accuracy_vs_time.png")


if __name__ == "__main__":
    main()
