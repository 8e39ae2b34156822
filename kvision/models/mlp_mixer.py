"""MLP-Mixer: token-mixing and channel-mixing MLPs over patches."""

import keras

from kvision import _checks
from kvision import layers
from kvision.models import base
from kvision.models import initialization
from kvision.models.registry import register_model


@keras.saving.register_keras_serializable(package="kvision")
class MLPMixer(base.VisionModel):
    """MLP-Mixer: a patch embedding and ``depth`` Mixer blocks.

    Reference: Tolstikhin et al., *MLP-Mixer: An all-MLP Architecture for
    Vision* (arXiv:2105.01601), Table 1. Layout: ``"stem"``
    (:class:`~kvision.layers.PatchEmbedding`) → ``"block_0"`` …
    (:class:`~kvision.layers.MixerBlock`) → ``"final_norm"`` → average over
    tokens → ``"head"``.

    Registered variants (parameters = trainable weights):

    | name | input | patch | C x depth | D_S | D_C | classes | params |
    | --- | --- | --- | --- | --- | --- | --- | --- |
    | ``mixer_s16`` | 224 | 16 | 512 x 8 | 256 | 2048 | 1000 | 18,528,264 |
    | ``mixer_b16`` | 224 | 16 | 768 x 12 | 384 | 3072 | 1000 | 59,880,472 |
    | ``mixer_l16`` | 224 | 16 | 1024 x 24 | 512 | 4096 | 1000 | 208,196,168 |
    | ``mixer_32px`` | 32 | 4 | 128 x 8 | 64 | 512 | 10 | 1,132,170 |

    Args:
        input_shape: ``(height, width, channels)``; static. The model
            takes float images in [0, 1]: convert uint8 pixels with
            :func:`kvision.data.to_model_range`.
        patch_size: int, patch side; divides height and width.
        hidden_dim: int, the channel width ``C``.
        depth: int, number of Mixer blocks.
        tokens_mlp_dim: int, hidden width ``D_S`` of token mixing.
        channels_mlp_dim: int, hidden width ``D_C`` of channel mixing.
        activation: MLP activation (default ``"gelu_approximate"``, as
            the official code).
        norm_epsilon: float, LayerNorm epsilon (default 1e-6).
        dropout: float in [0, 1), dropout inside the MLPs.
        drop_path_rate: float in [0, 1), stochastic depth.
        drop_path_schedule: ``"linear"`` or ``"constant"`` (default).
        include_top: bool, whether to end with the classifier.
        num_classes: int, classes of the classifier.
        pooling: headless output: ``None`` (all tokens), ``"avg"`` or
            ``"max"`` over tokens.
        classifier_activation: activation of the classifier (default
            ``None``: logits).
        weight_init: how kernels are drawn (see
            :mod:`kvision.models.initialization`); default
            ``"lecun_normal"``, Flax's default, which the official code
            keeps.
        zero_head: bool, start the classifier at zero (default True, as
            the official code).
        name: model name.

    Example:

    >>> from kvision.models import create_model
    >>> model = create_model("mixer_32px", depth=2)
    >>> tuple(model.output.shape)
    (None, 10)
    """

    def __init__(
        self,
        input_shape=(224, 224, 3),
        patch_size=16,
        hidden_dim=768,
        depth=12,
        tokens_mlp_dim=384,
        channels_mlp_dim=3072,
        activation="gelu_approximate",
        norm_epsilon=1e-6,
        dropout=0.0,
        drop_path_rate=0.0,
        drop_path_schedule="constant",
        include_top=True,
        num_classes=1000,
        pooling=None,
        classifier_activation=None,
        weight_init="lecun_normal",
        zero_head=True,
        name="mlp_mixer",
        **kwargs,
    ):
        config = base.constructor_arguments(locals())
        _checks.positive_int("depth", depth)
        base.check_head_arguments(include_top, num_classes, pooling)
        rates = base.drop_path_rates(drop_path_rate, depth, drop_path_schedule)

        inputs = base.image_input(input_shape)
        x = layers.PatchEmbedding(
            patch_size, hidden_dim, data_format="channels_last", name="stem"
        )(inputs)
        names = []
        for i, rate in enumerate(rates):
            names.append(f"block_{i}")
            x = layers.MixerBlock(
                tokens_mlp_dim,
                channels_mlp_dim,
                activation=activation,
                dropout=dropout,
                drop_path_rate=rate,
                norm_epsilon=norm_epsilon,
                name=names[-1],
            )(x)
        x = keras.layers.LayerNormalization(
            epsilon=norm_epsilon, name="final_norm"
        )(x)
        if include_top:
            x = keras.layers.GlobalAveragePooling1D(
                data_format="channels_last", name="avg_pool"
            )(x)
            outputs = base.classifier(x, num_classes, classifier_activation)
        else:
            outputs = base.pool_features(x, pooling, spatial=False)
        self._build(inputs, outputs, config, names, name, **kwargs)
        initialization.initialize_weights(
            self, weight_init, zero_head=zero_head and include_top
        )


_IMAGENET = dict(input_shape=(224, 224, 3), patch_size=16, num_classes=1000)

register_model(
    "mixer_s16",
    MLPMixer,
    "Mixer-S/16, ImageNet",
    hidden_dim=512,
    depth=8,
    tokens_mlp_dim=256,
    channels_mlp_dim=2048,
    **_IMAGENET,
)
register_model(
    "mixer_b16",
    MLPMixer,
    "Mixer-B/16, ImageNet",
    hidden_dim=768,
    depth=12,
    tokens_mlp_dim=384,
    channels_mlp_dim=3072,
    **_IMAGENET,
)
register_model(
    "mixer_l16",
    MLPMixer,
    "Mixer-L/16, ImageNet",
    hidden_dim=1024,
    depth=24,
    tokens_mlp_dim=512,
    channels_mlp_dim=4096,
    **_IMAGENET,
)
register_model(
    "mixer_32px",
    MLPMixer,
    "A small Mixer for 32x32 images (CIFAR): patch 4, width 128, depth 8",
    input_shape=(32, 32, 3),
    patch_size=4,
    hidden_dim=128,
    depth=8,
    tokens_mlp_dim=64,
    channels_mlp_dim=512,
    num_classes=10,
)
