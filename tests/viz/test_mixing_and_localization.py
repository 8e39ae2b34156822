"""Token-mixing filters and the localisation score against direct sums."""

import numpy as np
import pytest

from kvision import viz
from kvision.data.images import resize_bilinear
from kvision.models import create_model


def test_token_mixing_weights_are_the_first_kernel_on_the_grid():
    model = create_model(
        "mixer_32px", depth=2, hidden_dim=16, tokens_mlp_dim=12
    )
    for block in (0, 1, -1):
        weights = viz.token_mixing_weights(model, block=block)
        assert weights.shape == (12, 8, 8)
        name = f"block_{block % 2}"
        kernel = np.asarray(model.get_layer(name).token_mlp.fc1.kernel)
        assert kernel.shape == (64, 12)
        # Hidden unit j weighs patch (r, c) = token 8 r + c by kernel[., j].
        for j in (0, 5):
            for r, c in ((0, 0), (2, 7), (7, 3)):
                assert weights[j, r, c] == kernel[8 * r + c, j]


def test_token_mixing_weights_on_a_non_square_grid():
    model = create_model(
        "mixer_32px", depth=1, hidden_dim=8, input_shape=(16, 32, 3)
    )
    kernel = np.asarray(model.get_layer("block_0").token_mlp.fc1.kernel)
    np.testing.assert_array_equal(
        viz.token_mixing_weights(model), kernel.T.reshape(-1, 4, 8)
    )


def test_token_mixing_weights_need_a_mixer_and_a_block():
    vit = create_model("vit_32px", depth=1, embed_dim=16, num_heads=2)
    with pytest.raises(ValueError, match="no MLP-Mixer blocks"):
        viz.token_mixing_weights(vit)
    convmixer = create_model("convmixer_256_8", depth=1, dim=8)
    with pytest.raises(ValueError, match="no MLP-Mixer blocks"):
        viz.token_mixing_weights(convmixer)
    mixer = create_model("mixer_32px", depth=2, hidden_dim=8)
    with pytest.raises(ValueError, match="block=2"):
        viz.token_mixing_weights(mixer, block=2)
    with pytest.raises(ValueError, match="block='last'"):
        viz.token_mixing_weights(mixer, block="last")


def square_masks():
    masks = np.zeros((2, 8, 8), bool)
    masks[0, 2:6, 2:6] = True  # a quarter of the image
    masks[1, :2, :] = True  # a quarter too
    return masks


def test_a_map_inside_the_mask_scores_one():
    masks = square_masks()
    result = viz.localization_score(masks * 3.0, masks)
    assert result == pytest.approx({"score": 1.0, "uniform": 0.25, "ratio": 4})


def test_a_uniform_map_scores_the_mask_area():
    masks = square_masks()
    masks[1, 2, :] = True  # now 0.25 and 0.375: uniform = 0.3125
    for maps in (np.ones((2, 4, 4)), np.full((2, 2, 2), 7.0)):
        result = viz.localization_score(maps, masks)
        assert result["score"] == pytest.approx(0.3125)
        assert result["uniform"] == pytest.approx(0.3125)
        assert result["ratio"] == pytest.approx(1.0)


def test_score_is_the_mean_share_after_the_bilinear_stretch():
    rng = np.random.default_rng(0)
    maps = rng.uniform(size=(2, 4, 4))
    masks = square_masks()
    stretched = np.stack([np.kron(m, np.ones((2, 2))) for m in maps])
    # A 4x4 map on 8x8 pixels, interpolated: exactly kvision's bilinear
    # resize, and close to the nearest-neighbour stretch.
    resized = resize_bilinear(maps, 8)
    shares = (resized * masks).sum((1, 2)) / resized.sum((1, 2))
    result = viz.localization_score(maps, masks)
    assert result["score"] == pytest.approx(shares.mean(), rel=1e-6)
    nearest = (stretched * masks).sum((1, 2)) / stretched.sum((1, 2))
    assert result["score"] == pytest.approx(nearest.mean(), abs=0.05)
    assert result["ratio"] == pytest.approx(result["score"] / 0.25)


def test_signed_maps_are_shifted_to_their_minimum():
    masks = square_masks()
    maps = np.where(masks, 1.0, -2.0)  # a signed CAM, object high
    assert viz.localization_score(maps, masks)["score"] == pytest.approx(1.0)
    # A constant map has no mass left after the shift: it scores like a
    # uniform map.
    flat = np.full((2, 8, 8), -1.0)
    assert viz.localization_score(flat, masks)["ratio"] == pytest.approx(1.0)
    # Non-negative maps are used as they are (no stretch of their floor).
    attention = np.where(masks, 2.0, 1.0)
    expected = 16 * 2 / (16 * 2 + 48 * 1)
    assert viz.localization_score(attention, masks)["score"] == pytest.approx(
        expected
    )


@pytest.mark.parametrize(
    "maps, masks, match",
    [
        (np.ones((2, 4)), np.ones((2, 8, 8)), "maps.shape=\\(2, 4\\)"),
        (np.ones((3, 4, 4)), np.ones((2, 8, 8)), "same B"),
        (np.ones((2, 4, 4)), np.ones((2, 8, 6)), "square"),
        (np.ones((2, 4, 4)), np.full((2, 8, 8), 0.5), "only 0 and 1"),
    ],
)
def test_localization_score_validates_its_inputs(maps, masks, match):
    with pytest.raises(ValueError, match=match):
        viz.localization_score(maps, masks)
