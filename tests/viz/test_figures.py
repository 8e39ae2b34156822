"""The figures: axes, images and lines as documented, no pyplot state."""

import numpy as np
import pytest
from matplotlib.figure import Figure

from kvision import viz
from kvision.models import create_model


def uint8_images(n, size=16):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, size, size, 3)).astype("uint8")


def test_attention_heads_grid():
    maps = np.random.default_rng(1).uniform(size=(2, 3, 4, 4))
    fig = viz.plot_attention_heads(uint8_images(2), maps, titles=["a", "b"])
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 2 * (3 + 1)
    # First column: the image; then each head's overlay (image + map).
    assert [len(ax.images) for ax in fig.axes[:4]] == [1, 2, 2, 2]
    assert fig.axes[0].get_title() == "a" and fig.axes[4].get_title() == "b"
    assert fig.axes[1].get_title() == "head 0"
    with pytest.raises(ValueError, match="head_maps.shape"):
        viz.plot_attention_heads(uint8_images(2), maps[0])


def test_attention_heads_of_a_model():
    model = create_model(
        "sl_vit_32px", depth=1, embed_dim=16, num_heads=2, head_dim=None
    )
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3))
    fig = viz.plot_attention_heads(x, viz.cls_attention(model, x))
    assert len(fig.axes) == 2 * 3


def test_spt_views_show_the_four_shifts_of_the_image():
    image = uint8_images(1)[0]
    fig = viz.plot_spt_views(image, patch_size=4)
    assert len(fig.axes) == 5
    assert all(len(ax.images) == 1 for ax in fig.axes)
    original = fig.axes[0].images[0].get_array()
    np.testing.assert_array_equal(original, image)
    # Up-left view: the image moved down-right by the shift (2 px), zero
    # padding coming in at the top and left.
    up_left = np.asarray(fig.axes[1].images[0].get_array())
    np.testing.assert_array_equal(up_left[2:, 2:], image[:-2, :-2])
    assert not up_left[:2].any() and not up_left[:, :2].any()
    down_right = np.asarray(fig.axes[4].images[0].get_array())
    np.testing.assert_array_equal(down_right[:-2, :-2], image[2:, 2:])
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "original",
        "up-left",
        "up-right",
        "down-left",
        "down-right",
    ]
    # The patch grid: 16 / 4 + 1 lines each way on every view.
    assert all(len(ax.lines) == 2 * 5 for ax in fig.axes)


def test_spt_views_of_float_images_and_bad_arguments():
    image = uint8_images(1, size=8)[0] / 255.0
    fig = viz.plot_spt_views(image, patch_size=2)
    assert fig.axes[0].images[0].get_array().dtype == image.dtype
    with pytest.raises(ValueError, match="patch_size=1"):
        viz.plot_spt_views(image, patch_size=1)
    with pytest.raises(ValueError, match="patch_size=0"):
        viz.plot_spt_views(image, patch_size=0)
    with pytest.raises(ValueError, match="image.shape"):
        viz.plot_spt_views(image[..., 0], patch_size=2)


def test_attention_distance_of_one_model():
    distances = np.arange(12.0).reshape(4, 3)
    fig = viz.plot_attention_distance(distances)
    (ax,) = fig.axes
    assert len(ax.collections) == 1 and len(ax.lines) == 1
    assert len(ax.collections[0].get_offsets()) == 12
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1, 4, 7, 10])
    assert ax.get_legend() is None


def test_attention_distance_compares_models():
    fig = viz.plot_attention_distance(
        {"ViT": np.ones((3, 4)), "SL-ViT": np.zeros((3, 2))}
    )
    (ax,) = fig.axes
    assert len(ax.collections) == 2 and len(ax.lines) == 2
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["ViT", "SL-ViT"]
    fig = viz.plot_attention_distance(
        [np.ones((2, 2)), np.ones((2, 2))],
        labels=["a", "b"],
        ylabel="entropy (nats)",
    )
    assert fig.axes[0].get_ylabel() == "entropy (nats)"
    with pytest.raises(ValueError, match="labels"):
        viz.plot_attention_distance({"a": np.ones((2, 2))}, labels=["a"])
    with pytest.raises(ValueError, match="as many labels"):
        viz.plot_attention_distance([np.ones((2, 2))] * 2, labels=["a"])
    with pytest.raises(ValueError, match="blocks, heads"):
        viz.plot_attention_distance(np.ones(3))


def test_token_mixing_filters():
    model = create_model("mixer_32px", depth=1, hidden_dim=8, tokens_mlp_dim=20)
    weights = viz.token_mixing_weights(model)
    fig = viz.plot_token_mixing(weights, count=9)
    assert len(fig.axes) == 9
    assert all(len(ax.images) == 1 for ax in fig.axes)
    image = fig.axes[4].images[0]
    np.testing.assert_array_equal(image.get_array(), weights[4])
    low, high = image.get_clim()
    assert low == -high  # centred on zero
    assert len(viz.plot_token_mixing(weights, count=50).axes) == 20
    with pytest.raises(ValueError, match="count=0"):
        viz.plot_token_mixing(weights, count=0)
    with pytest.raises(ValueError, match="weights.shape"):
        viz.plot_token_mixing(weights[0])


def test_figures_leave_pyplot_alone():
    # Figures are built without pyplot, so none is registered there.
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    viz.plot_spt_views(uint8_images(1)[0], 4)
    viz.plot_token_mixing(np.ones((4, 2, 2)))
    assert plt.get_fignums() == before
