"""Depthwise convolution: native vs shifted multiply-adds, per backend.

Times full training steps (forward, loss, backward, SGD update) and
inference of the models built on depthwise convolutions, once with every
``kvision.layers.DepthwiseConv2D`` set to each implementation. One backend
per process:

    KERAS_BACKEND=jax python -m benchmarks.depthwise --out benchmarks/results

writes ``depthwise_<backend>.json``; ``--table`` prints the markdown table
of every result file in ``--out``.
"""

import argparse
import json
import pathlib

from benchmarks import throughput


def measure(model_name, implementation, batch_size, repeats):
    import keras

    from kvision import models

    keras.utils.set_random_seed(0)
    model = models.create_model(model_name)
    throughput.force_depthwise(model, implementation)
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    x, y = throughput.random_batch(batch_size, model.input_shape[1:], 10)
    # Two warm-up calls (the first compiles), then exactly ``repeats``.
    timing = throughput.Timing(
        warmup=2, min_repeats=repeats, min_seconds=0.0, max_repeats=repeats
    )
    train, _ = timing.seconds_per_call(lambda: model.train_on_batch(x, y))
    infer, _ = timing.seconds_per_call(lambda: model.predict_on_batch(x))
    return {
        "model": model_name,
        "implementation": implementation,
        "train_images_per_second": round(batch_size / train, 1),
        "infer_images_per_second": round(batch_size / infer, 1),
    }


def run(out, batch_size, repeats):
    import keras

    backend = keras.backend.backend()
    rows = [
        measure(name, implementation, batch_size, repeats)
        for name in throughput.DEPTHWISE_MODELS
        for implementation in ("native", "shifted")
    ]
    result = {
        "backend": backend,
        "batch_size": batch_size,
        "repeats": repeats,
        "rows": rows,
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"depthwise_{backend}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def table(out):
    lines = [
        "| model | backend | native train img/s | shifted train img/s "
        "| speed-up | native infer img/s | shifted infer img/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for path in sorted(out.glob("depthwise_*.json")):
        result = json.loads(path.read_text())
        by_model = {}
        for row in result["rows"]:
            by_model.setdefault(row["model"], {})[row["implementation"]] = row
        for model, rows in by_model.items():
            native, shifted = rows["native"], rows["shifted"]
            speedup = (
                shifted["train_images_per_second"]
                / native["train_images_per_second"]
            )
            lines.append(
                f"| {model} | {result['backend']} "
                f"| {native['train_images_per_second']} "
                f"| {shifted['train_images_per_second']} "
                f"| {speedup:.2f}x "
                f"| {native['infer_images_per_second']} "
                f"| {shifted['infer_images_per_second']} |"
            )
    print("\n".join(lines))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out", type=pathlib.Path, default="benchmarks/results"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--table", action="store_true")
    args = parser.parse_args()
    if args.table:
        table(args.out)
    else:
        run(args.out, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
