"""Attention and class activation maps against direct computations."""

import numpy as np
import pytest

from kvision import viz
from kvision.models import create_model


def images(n=3, size=32):
    return np.random.default_rng(0).uniform(size=(n, size, size, 3))


def test_cls_attention_is_row_zero_of_the_last_block_on_the_grid():
    model = create_model("sl_vit_32px", depth=2, embed_dim=32, num_heads=4)
    maps = viz.attention_maps(model, images())
    assert sorted(maps) == ["block_0", "block_1"]
    grid = viz.cls_attention(model, images())
    assert grid.shape == (3, 4, 8, 8)
    np.testing.assert_allclose(
        grid.reshape(3, 4, 64), maps["block_1"][:, :, 0, 1:], atol=1e-6
    )
    first = viz.cls_attention(model, images(), block=0)
    np.testing.assert_allclose(
        first.reshape(3, 4, 64), maps["block_0"][:, :, 0, 1:], atol=1e-6
    )


@pytest.mark.parametrize(
    "name, overrides, grid",
    [
        ("convmixer_256_8", dict(depth=1, dim=16), (16, 16)),
        ("mixer_32px", dict(depth=1, hidden_dim=16), (8, 8)),
    ],
)
def test_cam_averages_to_the_logit(name, overrides, grid):
    # With a plain pooled head, the mean of class k's map plus the bias is
    # exactly logit k: the map spreads the logit over positions.
    model = create_model(name, **overrides)
    x = images()
    logits = model.predict(x, verbose=0)
    bias = np.asarray(model.get_layer("head").bias)
    for k in (0, 3):
        cam = viz.class_activation_map(model, x, class_index=k)
        assert cam.shape == (3, *grid)
        np.testing.assert_allclose(
            cam.mean(axis=(1, 2)) + bias[k], logits[:, k], rtol=1e-4, atol=1e-4
        )
    predicted = viz.class_activation_map(model, x)
    for i, k in enumerate(np.argmax(logits, axis=-1)):
        np.testing.assert_allclose(
            predicted[i], viz.class_activation_map(model, x, k)[i], atol=1e-6
        )


def test_cam_of_convnext_gives_the_logits_through_its_layer_norm():
    model = create_model("convnext_32px", depths=(1, 1, 1, 1), dims=(8,) * 4)
    x = images()
    logits = model.predict(x, verbose=0)
    pooled = model.feature_model(["stage_3"]).predict(x, verbose=0)
    pooled = pooled["stage_3"].mean(axis=(1, 2))
    norm = model.get_layer("head_norm")
    sigma = np.sqrt(pooled.var(axis=-1) + norm.epsilon)
    kernel = np.asarray(model.get_layer("head").kernel)
    offset = np.asarray(norm.beta) @ kernel + np.asarray(
        model.get_layer("head").bias
    )
    for k in (0, 7):
        cam = viz.class_activation_map(model, x, class_index=k)
        np.testing.assert_allclose(
            cam.mean(axis=(1, 2)) / sigma + offset[k],
            logits[:, k],
            rtol=1e-3,
            atol=1e-4,
        )


def test_cam_needs_a_pooled_head():
    model = create_model("vit_32px", depth=1, embed_dim=16, num_heads=2)
    with pytest.raises(ValueError, match="pooling classifier head"):
        viz.class_activation_map(model, images())


def test_figures_have_their_axes_and_images():
    x = (images(4) * 255).astype("uint8")
    fig = viz.plot_overlays(x, np.random.default_rng(1).uniform(size=(4, 8, 8)))
    assert len(fig.axes) == 8
    assert sum(len(ax.images) for ax in fig.axes) == 4 + 2 * 4
    history = {
        "loss": [2.0, 1.0],
        "val_loss": [2.1, 1.2],
        "accuracy": [0.1, 0.5],
    }
    fig = viz.plot_history(history)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].lines) == 2 and len(fig.axes[1].lines) == 1
