"""Command line: train a registered model on a small dataset.

    python -m kvision.train sl_vit_32px --dataset digits --epochs 30 \\
        --out runs/sl_vit --seed 0

By default the paper's recipe is applied to the dataset
(:func:`kvision.training.adapt_recipe`: batch size, learning rate, warm-up,
crop and flips adapted, and RandAugment, erasing and MixUp/CutMix off in a
run that shows the model fewer than a million images, each by a stated
rule) and printed, the paper's values beside the applied ones;
``--paper-augmentation`` keeps the paper's augmentation in a short run,
``--no-adapt`` trains with the recipe as published and ``--recipe quick``
with a short one without heavy augmentation.

Writes ``metrics.json`` (with ``test_accuracy``), ``history.json``,
``training_curves.png``, ``maps.png`` and the trained ``model.keras`` into
``--out``. ``--distribute``
trains data-parallel over every local device through Keras' distribution
API, which Keras implements for the JAX backend only; under TensorFlow or
PyTorch it stops with an error (use ``tf.distribute`` or torchrun there).
"""

import argparse
import json
import sys

import keras


def parse_args(argv):
    from kvision.data.datasets import DATASETS

    parser = argparse.ArgumentParser(
        prog="python -m kvision.train", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "model", help="a name from kvision.models.list_models()"
    )
    parser.add_argument("--dataset", default="digits", choices=DATASETS)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--out", required=True)
    parser.add_argument("--recipe", default="paper", choices=("paper", "quick"))
    parser.add_argument(
        "--no-adapt",
        action="store_true",
        help="train with the recipe as published, not adapted to the data",
    )
    parser.add_argument(
        "--paper-augmentation",
        action="store_true",
        help="keep the paper's RandAugment, erasing and MixUp/CutMix in a "
        "short adapted run",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--num-train", type=int, default=None)
    parser.add_argument("--num-test", type=int, default=None)
    parser.add_argument("--distribute", action="store_true")
    return parser.parse_args(argv)


def distribute_over_local_devices():
    """Data parallelism over all local devices (JAX backend)."""
    if keras.backend.backend() != "jax":
        raise SystemExit(
            "--distribute uses keras.distribution, which supports the JAX "
            f"backend only; the backend is {keras.backend.backend()!r}. "
            "Set KERAS_BACKEND=jax, or use tf.distribute / torchrun."
        )
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices)
    )
    return len(devices)


def main(argv=None):
    from kvision.training.fit import train

    args = parse_args(sys.argv[1:] if argv is None else argv)
    devices = distribute_over_local_devices() if args.distribute else 1
    metrics = train(
        args.model,
        dataset=args.dataset,
        epochs=args.epochs,
        out=args.out,
        recipe=args.recipe,
        adapt=not args.no_adapt,
        paper_augmentation=args.paper_augmentation,
        report=print,
        seed=args.seed,
        image_size=args.image_size,
        batch_size=args.batch_size,
        num_train=args.num_train,
        num_test=args.num_test,
    )
    metrics["devices"] = devices
    print(json.dumps(metrics, indent=2))
    return metrics


if __name__ == "__main__":
    main()
