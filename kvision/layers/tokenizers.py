"""Turning images into tokens: patches, shifted patches, class and position."""

import math

import keras
from keras import ops

from kvision import _checks
from kvision import ops as kv_ops


@keras.saving.register_keras_serializable(package="kvision")
class PatchEmbedding(keras.layers.Layer):
    """Non-overlapping patches, linearly projected to tokens.

    Reference: Dosovitskiy et al., *An Image is Worth 16x16 Words*
    (arXiv:2010.11929); the token stem of MLP-Mixer (arXiv:2105.01601). A
    convolution with ``kernel_size = strides = patch_size``, then the grid is
    flattened row-major into a token sequence.

    Args:
        patch_size: int, side of the square patches. Image height and width
            must be divisible by it.
        embed_dim: int, the token width.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``
            for Keras' global setting.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: images ``(B, H, W, C)`` (or ``(B, C, H, W)``).
    Output shape: ``(B, (H // patch_size) * (W // patch_size), embed_dim)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import PatchEmbedding
    >>> layer = PatchEmbedding(patch_size=4, embed_dim=192)
    >>> tuple(layer(np.zeros((2, 32, 32, 3), "float32")).shape)
    (2, 64, 192)
    """

    def __init__(self, patch_size, embed_dim, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        self.embed_dim = _checks.positive_int("embed_dim", embed_dim)
        self.data_format = _checks.data_format(data_format)

    def _spatial(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        _checks.divisible_image(self, shape, self.patch_size)
        return shape

    def build(self, input_shape):
        shape = self._spatial(input_shape)
        self.projection = keras.layers.Conv2D(
            self.embed_dim,
            self.patch_size,
            strides=self.patch_size,
            # `call` hands the convolution NHWC whatever `self.data_format`
            # is, so it must not follow Keras' global setting.
            data_format="channels_last",
            dtype=self.dtype_policy,
            name="projection",
        )
        self.projection.build(shape)

    def call(self, inputs):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        x = self.projection(x)
        grid_h, grid_w = x.shape[1], x.shape[2]
        return ops.reshape(x, (-1, grid_h * grid_w, self.embed_dim))

    def compute_output_shape(self, input_shape):
        shape = self._spatial(input_shape)
        p = self.patch_size
        return (shape[0], (shape[1] // p) * (shape[2] // p), self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "embed_dim": self.embed_dim,
                "data_format": self.data_format,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ShiftedPatchTokenization(keras.layers.Layer):
    """Shifted Patch Tokenization (SPT), as a tokenizer and as a pooling layer.

    Reference: Lee, Lee and Song, *Vision Transformer for Small-Size
    Datasets* (arXiv:2112.13492), Section 3.1, Eq. 2-4 and 8. Following the
    official code, the input is zero-padded by ``shift_size`` and cropped at
    four diagonal offsets; the four shifted copies are concatenated with the
    original along channels (RGB: 3 -> 15 channels), cut into non-overlapping
    ``patch_size`` patches, each flattened as ``(row, col, channel)``, layer
    normalised, and linearly projected to ``embed_dim``. This widens each
    token's receptive field, which helps ViTs learn from small datasets.

    Two modes, chosen by the input rank:

    - **images** ``(B, H, W, C)``: the tokenizer at the input of the ViT.
    - **tokens** ``(B, N, D)``: the paper's pooling layer (S_pool, Eq. 8).
      The visual tokens are put back on their ``(gh, gw)`` grid, shifted and
      merged ``patch_size x patch_size`` at a time, which reduces the number
      of tokens by ``patch_size**2``. With ``has_class_token=True`` the first
      token is the class token: it is projected by its own dense layer to
      ``embed_dim`` and re-attached in front.

    Args:
        patch_size: int, the patch side (tokens mode: the merging size).
        embed_dim: int, width of the output tokens.
        shift_size: int >= 1, or ``None`` (default) for ``patch_size // 2``
            as in the paper. Must be given when ``patch_size`` is 1.
        directions: ``"diagonal"`` (default, the paper's four diagonal
            shifts) or ``"cardinal"`` (four axis-aligned shifts; with
            ``shift_size=1`` this is the one-pixel variant found in other
            implementations). The names say where the crop window moves
            (the official code's "left-up" ...); the image content moves
            the opposite way (see :func:`kvision.ops.shift_images`).
        has_class_token: bool, tokens mode only: whether the first token is a
            class token.
        token_grid: ``(gh, gw)`` or ``None``, tokens mode only: the grid of
            the visual tokens; ``None`` infers a square grid.
        norm_epsilon: float, epsilon of the layer normalisation (default
            1e-5, PyTorch's ``nn.LayerNorm`` as in the official code).
        data_format: images mode: ``"channels_last"``, ``"channels_first"``
            or ``None`` for Keras' global setting.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: images ``(B, H, W, C)`` or tokens ``(B, [1 +] gh * gw, D)``.
    Output shape: ``(B, [1 +] (H // p) * (W // p), embed_dim)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ShiftedPatchTokenization
    >>> spt = ShiftedPatchTokenization(patch_size=4, embed_dim=192)
    >>> tokens = spt(np.zeros((2, 32, 32, 3), "float32"))
    >>> tuple(tokens.shape)
    (2, 64, 192)
    >>> pool = ShiftedPatchTokenization(2, 384, has_class_token=True)
    >>> tuple(pool(np.zeros((2, 65, 192), "float32")).shape)
    (2, 17, 384)
    """

    def __init__(
        self,
        patch_size,
        embed_dim,
        shift_size=None,
        directions="diagonal",
        has_class_token=False,
        token_grid=None,
        norm_epsilon=1e-5,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.patch_size = _checks.positive_int("patch_size", patch_size)
        self.embed_dim = _checks.positive_int("embed_dim", embed_dim)
        self.shift_size = _checks.optional_positive_int(
            "shift_size", shift_size
        )
        if shift_size is None and patch_size < 2:
            raise ValueError(
                "The default shift is `patch_size // 2`, which is 0 here: "
                "pass `shift_size` explicitly. "
                f"Received: patch_size={patch_size}, shift_size=None"
            )
        self.directions = _checks.one_of(
            "directions", directions, set(kv_ops.SHIFT_DIRECTIONS)
        )
        self.has_class_token = bool(has_class_token)
        if token_grid is not None:
            token_grid = tuple(token_grid)
            if len(token_grid) != 2:
                raise ValueError(
                    "`token_grid` must be a pair (rows, columns). "
                    f"Received: token_grid={token_grid!r}"
                )
            for size in token_grid:
                _checks.positive_int("token_grid", size)
        self.token_grid = token_grid
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        self.data_format = _checks.data_format(data_format)

    def _grid(self, input_shape):
        """Returns (tokens_mode, grid_h, grid_w, channels) for an input."""
        _checks.input_rank(
            self,
            input_shape,
            (3, 4),
            "(images (B, H, W, C) or tokens (B, N, D))",
        )
        if len(input_shape) == 4:
            if self.has_class_token:
                raise ValueError(
                    "`has_class_token=True` only applies to token inputs "
                    "(B, N, D). Received: input_shape="
                    f"{tuple(input_shape)}"
                )
            shape = _checks.nhwc_shape(self, input_shape)
            _checks.static_dims(self, shape, [1, 2], "image size")
            return False, shape[1], shape[2], shape[3]
        _checks.static_dims(self, input_shape, [1, 2], "token count and width")
        visual = input_shape[1] - int(self.has_class_token)
        if self.token_grid is not None:
            grid_h, grid_w = self.token_grid
            if grid_h * grid_w != visual:
                raise ValueError(
                    f"`token_grid` {self.token_grid} holds {grid_h * grid_w} "
                    f"tokens but the input has {visual} visual tokens. "
                    f"Received: input_shape={tuple(input_shape)}"
                )
        else:
            side = math.isqrt(max(visual, 0))
            if visual < 1 or side * side != visual:
                raise ValueError(
                    f"Cannot infer a square grid from {visual} visual "
                    "tokens: pass `token_grid`. Received: input_shape="
                    f"{tuple(input_shape)}, has_class_token="
                    f"{self.has_class_token}"
                )
            grid_h = grid_w = side
        return True, grid_h, grid_w, input_shape[2]

    def build(self, input_shape):
        tokens_mode, grid_h, grid_w, channels = self._grid(input_shape)
        _checks.divisible_image(
            self,
            (None, grid_h, grid_w),
            self.patch_size,
            "token grid" if tokens_mode else "image size",
        )
        self._tokens_mode = tokens_mode
        self._grid_hw = (grid_h, grid_w)
        self._shift = self.shift_size or self.patch_size // 2
        patch_dim = self.patch_size**2 * channels * 5
        policy = self.dtype_policy
        self.norm = keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name="norm"
        )
        self.norm.build((None, None, patch_dim))
        self.projection = keras.layers.Dense(
            self.embed_dim, dtype=policy, name="projection"
        )
        self.projection.build((None, None, patch_dim))
        if self.has_class_token:
            self.class_projection = keras.layers.Dense(
                self.embed_dim, dtype=policy, name="class_projection"
            )
            self.class_projection.build((None, None, channels))

    def call(self, inputs):
        if self._tokens_mode:
            class_token = inputs[:, :1] if self.has_class_token else None
            visual = inputs[:, 1:] if self.has_class_token else inputs
            grid_h, grid_w = self._grid_hw
            images = ops.reshape(visual, (-1, grid_h, grid_w, inputs.shape[-1]))
        else:
            images = kv_ops.to_channels_last(inputs, self.data_format)
        x = kv_ops.shift_images(images, self._shift, self.directions)
        x = kv_ops.patchify(x, self.patch_size)
        x = self.projection(self.norm(x))
        if self.has_class_token:
            x = ops.concatenate([self.class_projection(class_token), x], 1)
        return x

    def compute_output_shape(self, input_shape):
        _, grid_h, grid_w, _ = self._grid(input_shape)
        p = self.patch_size
        tokens = (grid_h // p) * (grid_w // p) + int(self.has_class_token)
        return (input_shape[0], tokens, self.embed_dim)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "patch_size": self.patch_size,
                "embed_dim": self.embed_dim,
                "shift_size": self.shift_size,
                "directions": self.directions,
                "has_class_token": self.has_class_token,
                "token_grid": self.token_grid,
                "norm_epsilon": self.norm_epsilon,
                "data_format": self.data_format,
            }
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class ClassToken(keras.layers.Layer):
    """Prepends a learnable class token to a token sequence.

    Reference: Dosovitskiy et al., *An Image is Worth 16x16 Words*
    (arXiv:2010.11929); the classification token of the small-dataset ViT
    (arXiv:2112.13492).

    Args:
        initializer: initializer of the token (default: truncated normal with
            standard deviation 0.02).
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, N, D)``.
    Output shape: ``(B, N + 1, D)``, the class token first.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import ClassToken
    >>> tuple(ClassToken()(np.zeros((2, 64, 192), "float32")).shape)
    (2, 65, 192)
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        _checks.static_dims(self, input_shape, [2], "token width")
        self.token = self.add_weight(
            name="token",
            shape=(1, 1, input_shape[2]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        token = ops.cast(self.token, inputs.dtype)
        batch = ops.shape(inputs)[0]
        token = ops.broadcast_to(token, (batch, 1, inputs.shape[-1]))
        return ops.concatenate([token, inputs], axis=1)

    def compute_output_shape(self, input_shape):
        tokens = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], tokens, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(
            {"initializer": keras.initializers.serialize(self.initializer)}
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class PositionEmbedding(keras.layers.Layer):
    """Adds a learnable position embedding to a fixed-length token sequence.

    Reference: Dosovitskiy et al., *An Image is Worth 16x16 Words*
    (arXiv:2010.11929). One learned vector per position (class token
    included when present), added to the tokens.

    Args:
        initializer: initializer of the embedding (default: truncated normal
            with standard deviation 0.02).
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, N, D)`` with static ``N`` and ``D``.
    Output shape: ``(B, N, D)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import PositionEmbedding
    >>> layer = PositionEmbedding()
    >>> tuple(layer(np.zeros((2, 65, 192), "float32")).shape)
    (2, 65, 192)
    >>> tuple(layer.embedding.shape)
    (65, 192)
    """

    def __init__(self, initializer=None, **kwargs):
        super().__init__(**kwargs)
        if initializer is None:
            initializer = keras.initializers.TruncatedNormal(stddev=0.02)
        self.initializer = keras.initializers.get(initializer)

    def build(self, input_shape):
        _checks.input_rank(self, input_shape, (3,), "(batch, tokens, channels)")
        _checks.static_dims(self, input_shape, [1, 2], "token count and width")
        self.embedding = self.add_weight(
            name="embedding",
            shape=(input_shape[1], input_shape[2]),
            initializer=self.initializer,
        )

    def call(self, inputs):
        return inputs + ops.cast(self.embedding, inputs.dtype)[None]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"initializer": keras.initializers.serialize(self.initializer)}
        )
        return config
