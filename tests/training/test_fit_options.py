"""fit_model's public options: a held-out validation split and callbacks."""

import keras

from kvision import data
from kvision import models
from kvision import training


def test_validation_split_callbacks_and_a_checkpoint_that_reloads(tmp_path):
    (x, y), test = data.load_dataset(
        "digits", image_size=16, num_train=64, num_test=24
    )
    (x_fit, y_fit), validation = data.split_validation(x, y, seed=0)
    model = models.create_model(
        "mixer_32px",
        input_shape=(16, 16, 3),
        depth=1,
        hidden_dim=8,
        tokens_mlp_dim=8,
        channels_mlp_dim=8,
    )
    recipe = training.get_recipe("mixer_32px", batch_size=32, epochs=2)
    seen = []
    checkpoint = tmp_path / "mixer.keras"
    result = training.fit_model(
        model,
        recipe,
        (x_fit, y_fit),
        test_data=test,
        validation_data=validation,
        verbose=0,
        callbacks=[
            keras.callbacks.ModelCheckpoint(checkpoint),
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: seen.append(logs)
            ),
        ],
    )
    assert len(seen) == 2 and "val_accuracy" in seen[-1]
    # val_* is the held-out split; the test split is evaluated at the end.
    x_val = data.to_model_range(validation[0])
    y_val = keras.utils.to_categorical(validation[1], 10)
    _, val_accuracy = model.evaluate(x_val, y_val, verbose=0)
    assert abs(result.history["val_accuracy"][-1] - val_accuracy) < 1e-6
    assert result.test_accuracy is not None
    reloaded = keras.saving.load_model(checkpoint)
    assert type(reloaded) is type(model)
