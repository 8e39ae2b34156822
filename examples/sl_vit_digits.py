"""Train a small SL-ViT (SPT + LSA) on scikit-learn's digits; plot attention.

Everything model-related comes from ``kvision.layers``. The digits ship with
scikit-learn, so this runs offline on any Keras backend:

    KERAS_BACKEND=jax python examples/sl_vit_digits.py --out outputs/sl_vit

It writes ``metrics.json``, ``training_curves.png``,
``class_token_attention.png`` and the trained ``model.keras`` into
``--out``. ``KVISION_SMOKE=1`` shrinks the run to a few seconds.
"""

import argparse
import json
import os
import pathlib
import time

import keras

from kvision import data
from kvision import layers
from kvision import viz


def build_sl_vit(image_size, num_classes, patch_size, dim, depth, heads):
    """A small ViT with Shifted Patch Tokenization and Locality Self-Attention.

    Returns the classifier and a companion model, sharing its layers, whose
    outputs are every block's attention scores ``(B, heads, N, N)``.
    """
    inputs = keras.Input((image_size, image_size, 3))
    x = layers.ShiftedPatchTokenization(patch_size, dim)(inputs)
    x = layers.ClassToken()(x)
    x = layers.PositionEmbedding()(x)
    scores = []
    for i in range(depth):
        x, s = layers.TransformerBlock(
            heads,
            2 * dim,
            attention="lsa",
            drop_path_rate=0.1 * i / max(depth - 1, 1),
            norm_epsilon=1e-5,
            name=f"block{i}",
        )(x, return_attention_scores=True)
        scores.append(s)
    x = keras.layers.LayerNormalization(epsilon=1e-5)(x[:, 0])
    outputs = keras.layers.Dense(num_classes)(x)
    return keras.Model(inputs, outputs), keras.Model(inputs, scores)


def main():
    smoke = os.environ.get("KVISION_SMOKE") == "1"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/sl_vit_digits")
    parser.add_argument("--epochs", type=int, default=2 if smoke else 40)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    image_size, patch_size = 32, 4
    (x_train, y_train), (x_test, y_test) = data.load_dataset(
        "digits", image_size=image_size, num_train=256 if smoke else None
    )
    x_train, x_test = x_train / 255.0, x_test / 255.0
    model, attention_model = build_sl_vit(
        image_size, 10, patch_size, dim=64, depth=4, heads=4
    )
    batch_size = 64
    steps = args.epochs * -(-len(x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0,
        decay_steps=max(steps - steps // 10, 1),
        warmup_target=2e-3,
        warmup_steps=steps // 10,
    )
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        batch_size=batch_size,
        epochs=args.epochs,
        validation_data=(x_test, y_test),
        verbose=2,
    )
    seconds = time.perf_counter() - start
    _, test_accuracy = model.evaluate(x_test, y_test, verbose=0)

    shown = x_test[:8]
    scores = keras.ops.convert_to_numpy(attention_model(shown)[-1])
    grid = image_size // patch_size
    # Class-token row of the last block, mean over heads, on the patch grid.
    maps = scores[:, :, 0, 1:].mean(axis=1).reshape(-1, grid, grid)
    viz.plot_overlays(
        shown, maps, suptitle="SL-ViT: class-token attention, last block"
    ).savefig(out / "class_token_attention.png", dpi=100)
    viz.plot_history(history.history).savefig(
        out / "training_curves.png", dpi=100
    )
    metrics = {
        "model": "sl_vit (SPT + LSA), 4 blocks, width 64",
        "dataset": "digits (scikit-learn), 32x32 RGB",
        "backend": keras.backend.backend(),
        "epochs": args.epochs,
        "parameters": model.count_params(),
        "train_seconds": round(seconds, 1),
        "test_accuracy": float(test_accuracy),
        # Evaluated on the test split after every epoch (the curves).
        "test_accuracy_per_epoch": [
            round(float(v), 4) for v in history.history["val_accuracy"]
        ],
    }
    model.save(out / "model.keras")
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
