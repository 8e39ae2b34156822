"""The papers' recipes adapted to a small dataset, against the linear probe.

Every registered small model at its registered (paper) size, trained on
scikit-learn's handwritten digits (1,437 training and 360 test images,
32 px) exactly as the command line trains it by default: the paper's recipe
adapted to the data (:func:`kvision.training.adapt_recipe`), only the number
of epochs given::

    python -m kvision.train MODEL --dataset digits --epochs E --seed S

three seeds each, on the current Keras backend, next to a logistic
regression on the raw pixels (the linear probe a model has to beat). Run
from the repository root, one backend per process; finished runs are kept
in the JSON file and skipped, so an interrupted run resumes:

    KERAS_BACKEND=torch python -m benchmarks.recipes_on_digits
    python -m benchmarks.recipes_on_digits --report-only

It writes ``recipes_digits_<backend>.json`` and rebuilds
``recipes_digits.md`` in ``benchmarks/results/``.
"""

import argparse
import datetime
import functools
import json
import os
import pathlib
import platform
import statistics
import time

RESULTS = pathlib.Path(__file__).resolve().parent / "results"
SEEDS = (0, 1, 2)
# Epochs per model: the budget each goal is stated for.
EPOCHS = {
    "convmixer_256_8": 6,
    "vit_32px": 30,
    "sl_vit_32px": 30,
    "mixer_32px": 30,
    "convnext_32px": 30,
}
# The goals (test accuracy, median over the seeds); every model must also
# beat the linear probe.
GOALS = {"convmixer_256_8": 0.98, "vit_32px": 0.97, "sl_vit_32px": 0.97}


def linear_probe(seed=0):
    """Logistic regression on the digits' raw pixels (32 px, [0, 1])."""
    from kvision import data
    from kvision.selfsup import linear_probe_accuracy

    (x, y), (x_test, y_test) = data.load_dataset("digits", seed=seed)

    def features(images):
        # float64 pixels, as recorded (float32 ones move the digits probe
        # from 0.961 to 0.964: one test image).
        return images.reshape(len(images), -1) / 255.0

    start = time.perf_counter()
    accuracy = linear_probe_accuracy(
        features(x), y, features(x_test), y_test, standardize=False
    )
    return {
        "seed": seed,
        "test_accuracy": round(accuracy, 4),
        "seconds": round(time.perf_counter() - start, 2),
    }


def current_recipe(model, epochs):
    """The applied values the CLI trains ``model`` with on digits today;
    runs recorded with other values (an older rule) are not reported."""
    from kvision.training import adapt_recipe
    from kvision.training import get_recipe

    recipe = adapt_recipe(
        get_recipe(model),
        _digits_training_images(),
        32,
        mirror_invariant=False,
        epochs=epochs,
    )
    return json.loads(json.dumps(recipe.applied()))


@functools.cache
def _digits_training_images():
    from kvision import data

    return len(data.load_dataset("digits", image_size=32)[0][1])


def is_current(run):
    return run.get("recipe_values") == current_recipe(
        run["model"], run["epochs"]
    )


def train_run(model, epochs, seed):
    """One CLI-default run; returns its row."""
    import keras

    from kvision.training.fit import train

    start, cpu_start = time.perf_counter(), time.process_time()
    load_before = os.getloadavg()[0]
    metrics = train(
        model, dataset="digits", epochs=epochs, seed=seed, verbose=0
    )
    return {
        "model": model,
        "backend": keras.backend.backend(),
        "seed": seed,
        "epochs": epochs,
        "parameters": metrics["parameters"],
        "batch_size": metrics["batch_size"],
        "learning_rate": metrics["learning_rate"],
        "recipe": metrics["recipe"],
        "recipe_values": metrics["recipe_values"],
        "test_accuracy": round(metrics["test_accuracy"], 4),
        "test_accuracy_per_epoch": metrics["test_accuracy_per_epoch"],
        "train_seconds": metrics["train_seconds"],
        "total_seconds": round(time.perf_counter() - start, 1),
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
        "load_average": [round(load_before, 1), round(os.getloadavg()[0], 1)],
    }


def _path(out, backend):
    return out / f"recipes_digits_{backend}.json"


def run(models, seeds, out):
    import keras

    backend = keras.backend.backend()
    path = _path(out, backend)
    record = (
        json.loads(path.read_text())
        if path.exists()
        else {"backend": backend, "runs": []}
    )
    record.update(
        keras=keras.__version__,
        python=platform.python_version(),
        machine=f"{platform.machine()}, {os.cpu_count()} CPUs",
        OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS"),
        XLA_FLAGS=os.environ.get("XLA_FLAGS"),
    )
    record["linear_probe"] = linear_probe()
    out.mkdir(parents=True, exist_ok=True)
    done = {
        (r["model"], r["seed"], r["epochs"])
        for r in record["runs"]
        if is_current(r)
    }
    for model in models:
        for seed in seeds:
            if (model, seed, EPOCHS[model]) in done:
                continue
            row = train_run(model, EPOCHS[model], seed)
            row["date"] = datetime.date.today().isoformat()
            print(json.dumps(row), flush=True)
            record["runs"].append(row)
            path.write_text(json.dumps(record, indent=2) + "\n")
    path.write_text(json.dumps(record, indent=2) + "\n")
    return path


def summary(record):
    """Per model: the runs at its current epoch budget and recipe, with
    medians."""
    rows = []
    probe = record["linear_probe"]["test_accuracy"]
    for model, epochs in EPOCHS.items():
        runs = [
            r
            for r in record["runs"]
            if r["model"] == model and r["epochs"] == epochs and is_current(r)
        ]
        if not runs:
            continue
        runs.sort(key=lambda r: r["seed"])
        accuracy = statistics.median(r["test_accuracy"] for r in runs)
        curves = list(
            zip(*(r["test_accuracy_per_epoch"] for r in runs), strict=True)
        )
        goal = max(GOALS.get(model, 0.0), probe)
        rows.append(
            {
                "model": model,
                "epochs": epochs,
                "seeds": [r["seed"] for r in runs],
                "parameters": runs[0]["parameters"],
                "batch_size": runs[0]["batch_size"],
                "learning_rate": runs[0]["learning_rate"],
                "accuracies": [r["test_accuracy"] for r in runs],
                "median_accuracy": accuracy,
                "median_per_epoch": [statistics.median(c) for c in curves],
                "median_train_seconds": statistics.median(
                    r["train_seconds"] for r in runs
                ),
                "median_cpu_seconds": statistics.median(
                    r["cpu_seconds"] for r in runs
                ),
                "load_average": [r["load_average"] for r in runs],
                "goal": goal,
                "met": len(runs) >= 3 and accuracy >= goal,
            }
        )
    return rows


def markdown(records):
    lines = [
        "# The papers' recipes on digits",
        "",
        "Written by `benchmarks/recipes_on_digits.py`; do not edit by hand. "
        "Each model at its registered size, trained as `python -m "
        "kvision.train MODEL --dataset digits --epochs E --seed S` trains "
        "it by default (the paper's recipe adapted to 1,437 training "
        "images of 32 px), evaluated on the 360 test images. *Wall* is "
        "`fit()` (training and the per-epoch evaluation), *CPU* the "
        "process's CPU time for the whole run; both on a 2-core machine "
        "shared with other jobs (load averages in the JSON), so wall times "
        "are noisy.",
        "",
    ]
    for record in records:
        probe = record["linear_probe"]
        lines += [
            f"## {record['backend']} (keras {record['keras']}, Python "
            f"{record['python']}, {record['machine']}, OMP_NUM_THREADS="
            f"{record['OMP_NUM_THREADS'] or 'unset'}"
            + (
                f", XLA_FLAGS={record['XLA_FLAGS']}"
                if record.get("XLA_FLAGS")
                else ""
            )
            + ")",
            "",
            f"Linear probe (logistic regression on the raw pixels, seed "
            f"{probe['seed']} split): **{probe['test_accuracy']:.3f}**.",
            "",
            "| model | params | epochs | batch | lr | test accuracy per "
            "seed | median | goal | met | median wall (s) | median CPU (s) |",
            "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | :---: "
            "| ---: | ---: |",
        ]
        for row in summary(record):
            accuracies = " / ".join(f"{a:.3f}" for a in row["accuracies"])
            seeds = ",".join(str(s) for s in row["seeds"])
            lines.append(
                f"| {row['model']} | {row['parameters']:,} | {row['epochs']} "
                f"| {row['batch_size']} | {row['learning_rate']:.3g} "
                f"| {accuracies} (seeds {seeds}) "
                f"| **{row['median_accuracy']:.3f}** | {row['goal']:.3f} "
                f"| {'yes' if row['met'] else 'no'} "
                f"| {row['median_train_seconds']:.0f} "
                f"| {row['median_cpu_seconds']:.0f} |"
            )
        lines += ["", "Median test accuracy after each epoch:", ""]
        for row in summary(record):
            curve = ", ".join(f"{a:.2f}" for a in row["median_per_epoch"])
            lines.append(f"- {row['model']}: {curve}")
        lines.append("")
    return "\n".join(lines)


def write_report(out):
    records = [
        json.loads(p.read_text())
        for p in sorted(out.glob("recipes_digits_*.json"))
    ]
    if not records:
        raise SystemExit(f"No recipes_digits_<backend>.json in {out}")
    (out / "recipes_digits.md").write_text(markdown(records))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--models", nargs="+", choices=sorted(EPOCHS), default=list(EPOCHS)
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--out", type=pathlib.Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    if not args.report_only:
        print(f"wrote {run(args.models, args.seeds, args.out)}")
    write_report(args.out)
    print(f"wrote {args.out / 'recipes_digits.md'}")


if __name__ == "__main__":
    main()
