"""MetaFormer: one block skeleton with a pluggable token mixer (PoolFormer)."""

import functools

import keras
import numpy as np
from keras import ops

from kvision import _checks
from kvision import _seeds
from kvision import activations
from kvision import ops as kv_ops
from kvision.layers.attention import MultiHeadSelfAttention
from kvision.layers.attention import attend
from kvision.layers.convolution import DepthwiseConv2D
from kvision.layers.mlp import MLP
from kvision.layers.residual import add_residual
from kvision.layers.residual import build_residual_parts

TOKEN_MIXERS = (
    "pooling",
    "attention",
    "spatial_mlp",
    "depthwise_conv",
    "identity",
)
NORMS = ("group", "layer")


def _odd_pool_size(pool_size):
    _checks.positive_int("pool_size", pool_size)
    if pool_size % 2 == 0:
        raise ValueError(
            "`pool_size` must be odd (the window is centred on each "
            f"position). Received: pool_size={pool_size}"
        )
    return pool_size


@functools.lru_cache(maxsize=64)
def _window_counts(height, width, radius):
    """How many window positions lie inside the image, per row and in all.

    Returns:
        ``(rows, counts)``: float32 NumPy arrays ``(H, 1, 1)``, the window's
        rows inside the image at each row, and ``(H, W, 1)``, its positions
        inside the image (the centre included). Cached, so computed once per
        image size; never modify them.
    """

    def inside(size):
        index = np.arange(size)
        return np.minimum(index, radius) + np.minimum(size - 1 - index, radius)

    rows = 1.0 + inside(height).astype("float32")
    cols = 1.0 + inside(width).astype("float32")
    return rows[:, None, None], np.outer(rows, cols)[:, :, None]


def _along(x, axis, start, stop):
    index = [slice(None)] * 4
    index[axis] = slice(start, stop)
    return x[tuple(index)]


def _pad_along(x, axis, before, after):
    widths = [[0, 0]] * 4
    widths[axis] = [before, after]
    return ops.pad(x, widths)


def _differences(x, axis, radius):
    """``sum over 0 < |d| <= radius of x[i + d] - x[i]`` along ``axis``,
    counting only neighbours inside the image.

    Each difference is taken between two real pixels, so it is exactly 0
    where they are equal; neighbours outside contribute nothing.
    """
    total = None
    for d in range(1, min(radius, x.shape[axis] - 1) + 1):
        ahead = _along(x, axis, d, None) - _along(x, axis, 0, -d)
        # x[i + d] - x[i] where i + d is inside, then x[i - d] - x[i].
        term = _pad_along(ahead, axis, 0, d) - _pad_along(ahead, axis, d, 0)
        total = term if total is None else total + term
    if total is None:
        # A 1-pixel axis has no neighbours: exactly 0, yet still computed
        # from x, so that the layers before get a (zero) gradient rather
        # than none, which optimizers warn about.
        return x - x
    return total


def _window_sum(x, axis, radius):
    """``sum over |d| <= radius of x[i + d]`` along ``axis``, zero outside."""
    total = x
    for d in range(1, min(radius, x.shape[axis] - 1) + 1):
        total = total + _pad_along(_along(x, axis, d, None), axis, 0, d)
        total = total + _pad_along(_along(x, axis, 0, -d), axis, d, 0)
    return total


@keras.saving.register_keras_serializable(package="kvision")
class PoolingMixer(keras.layers.Layer):
    """PoolFormer's token mixer: average pooling minus the input.

    Reference: Yu et al., *MetaFormer Is Actually What You Need for Vision*
    (arXiv:2111.11418), Eq. 4. A ``pool_size`` × ``pool_size`` window, stride
    1, averages each position's neighbours **without counting the padding**
    (PyTorch's ``count_include_pad=False`` in the official code), so a corner
    of a 3×3 window averages 4 values, an edge 6, the interior 9. The input
    is subtracted because the MetaFormer block adds it back through its
    residual connection; the official code's authors describe the result as
    a Laplacian-like filter. The layer has no weights.

    Written as ``sum over the window of (neighbour - centre)``, divided by
    the number of window positions inside the image: the same value as
    ``average - input``, but every difference of a constant input is
    exactly 0, so a constant input gives exactly 0 (summing the window
    first and subtracting afterwards leaves rounding residues of 1 ulp).
    The window sum is separable: vertical differences summed along each
    row, plus the horizontal differences once per row of the window, a few
    slices and adds per axis. The count map is computed once per image
    size, from the static shape. Keras' ``AveragePooling2D`` is not used:
    its ``"same"`` padding has counted the padded zeros on some backends.

    Args:
        pool_size: odd int, the window side (default 3).
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``
            for Keras' global setting.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Input shape: ``(B, H, W, C)`` (or channels first) with static ``H`` and
    ``W``.
    Output shape: the same as the input.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import PoolingMixer
    >>> mixer = PoolingMixer()
    >>> y = mixer(np.full((1, 4, 5, 2), 3.7, "float32"))
    >>> bool((keras.ops.convert_to_numpy(y) == 0).all())
    True
    >>> x = np.arange(9, dtype="float32").reshape(1, 3, 3, 1)
    >>> keras.ops.convert_to_numpy(mixer(x))[0, :, :, 0]
    array([[ 2. ,  1.5,  1. ],
           [ 0.5,  0. , -0.5],
           [-1. , -1.5, -2. ]], dtype=float32)
    """

    def __init__(self, pool_size=3, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.pool_size = _odd_pool_size(pool_size)
        self.data_format = _checks.data_format(data_format)

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        _checks.static_dims(self, shape, [1, 2], "image size")

    def call(self, inputs):
        x = kv_ops.to_channels_last(inputs, self.data_format)
        radius = self.pool_size // 2
        rows, counts = _window_counts(x.shape[1], x.shape[2], radius)
        # The window's sum of (neighbour - centre), split by rows: for each
        # column offset, the vertical differences (summed along the row),
        # plus as many copies of the horizontal differences as the window
        # has rows inside the image.
        vertical = _window_sum(_differences(x, 1, radius), 2, radius)
        horizontal = _differences(x, 2, radius)
        total = vertical + ops.convert_to_tensor(rows, x.dtype) * horizontal
        outputs = total / ops.convert_to_tensor(counts, x.dtype)
        return kv_ops.from_channels_last(outputs, self.data_format)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            {"pool_size": self.pool_size, "data_format": self.data_format}
        )
        return config


@keras.saving.register_keras_serializable(package="kvision")
class MetaFormerBlock(keras.layers.Layer):
    """MetaFormer block: norm, token mixer, residual; norm, MLP, residual.

    Reference: Yu et al., *MetaFormer Is Actually What You Need for Vision*
    (arXiv:2111.11418), Eq. 1-3, following the official PoolFormer code::

        x = x + DropPath(LayerScale(TokenMixer(Norm(x))))
        x = x + DropPath(LayerScale(MLP(Norm(x))))

    on ``(B, H, W, C)`` feature maps. The paper's point is that this
    skeleton, more than attention, makes a transformer work; the token
    mixer is a plug-in, taken from the library's existing layers:

    - ``"pooling"``: :class:`PoolingMixer` (PoolFormer);
    - ``"attention"``: :class:`MultiHeadSelfAttention` over the ``H * W``
      flattened tokens (ViT); no qkv bias and 32-wide heads by default, as
      in the official MetaFormer baselines;
    - ``"spatial_mlp"``: MLP-Mixer's token-mixing :class:`MLP`, applied to
      the transposed tokens ``(B, C, H * W)`` as :class:`MixerBlock` does;
    - ``"depthwise_conv"``: ConvMixer's and ConvNeXt's spatial mixing, a
      :class:`DepthwiseConv2D` with ``"same"`` padding;
    - ``"identity"``: no token mixing at all (the paper's sanity baseline;
      the branch is then ``LayerScale(Norm(x))``);
    - any Keras layer that maps ``(B, H, W, C)`` to the same shape (or its
      serialized config, as ``get_config`` returns it), called on the
      channels-last normalised map.

    The norm is ``GroupNormalization(groups=1)`` by default: it normalises
    each sample over ``H``, ``W`` and ``C`` jointly, with a per-channel
    scale and shift (the official code's ``GroupNorm(1, C)``).
    ``norm="layer"`` normalises over channels only, at each position (the
    official ``LayerNormChannel``, which the authors found worse for
    PoolFormer). The MLP is the one :class:`MLP` on the channel axis (the
    official 1×1 convolutions); both branches share one :class:`DropPath`
    and have their own :class:`LayerScale`.

    :class:`TransformerBlock` (attention on tokens, LayerNorm),
    :class:`MixerBlock` (token MLP, LayerNorm) and, up to where its norm
    sits and that it has one residual instead of two,
    :class:`ConvNeXtBlock` are instances of this skeleton.

    Args:
        token_mixer: one of ``"pooling"`` (default), ``"attention"``,
            ``"spatial_mlp"``, ``"depthwise_conv"``, ``"identity"``, or a
            Keras layer (or its serialized config).
        mlp_ratio: int, the MLP's hidden width in multiples of ``C``
            (default 4).
        pool_size: odd int, the pooling window (``"pooling"``).
        kernel_size: int, the depthwise kernel (``"depthwise_conv"``;
            default 3, the pooling window's size).
        num_heads: int, or ``None`` for one head per 32 channels (at least
            one; ``"attention"``). ``C`` must divide by it.
        tokens_mlp_dim: int, or ``None`` for ``H * W``: the hidden width of
            the token MLP (``"spatial_mlp"``).
        norm: ``"group"`` (default) or ``"layer"``, see above.
        norm_epsilon: float, the norms' epsilon (default 1e-5, PyTorch's).
        layer_scale_init_value: float, the initial LayerScale (1e-5 in
            PoolFormer-S12/S24, 1e-6 in the deeper ones); ``None`` or 0
            disables LayerScale.
        drop_path_rate: float in [0, 1), stochastic depth rate.
        dropout: float in [0, 1), dropout inside the MLPs.
        activation: the MLPs' activation (default ``"gelu"``).
        seed: optional int seed for dropout and stochastic depth.
        data_format: ``"channels_last"``, ``"channels_first"`` or ``None``.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: ``(B, H, W, C)`` (or channels first) with static ``H``,
            ``W`` (except for ``"depthwise_conv"`` and ``"identity"``) and
            ``C``.
        training: bool, enables dropout and stochastic depth.
        return_attention_scores: bool, only with ``"attention"``: also
            return the softmax weights ``(B, num_heads, H * W, H * W)``.

    Output shape: the same as the input.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import MetaFormerBlock
    >>> x = np.zeros((2, 8, 8, 64), "float32")
    >>> tuple(MetaFormerBlock()(x).shape)
    (2, 8, 8, 64)
    >>> y, scores = MetaFormerBlock("attention")(
    ...     x, return_attention_scores=True
    ... )
    >>> tuple(scores.shape)
    (2, 2, 64, 64)
    """

    def __init__(
        self,
        token_mixer="pooling",
        mlp_ratio=4,
        pool_size=3,
        kernel_size=3,
        num_heads=None,
        tokens_mlp_dim=None,
        norm="group",
        norm_epsilon=1e-5,
        layer_scale_init_value=1e-5,
        drop_path_rate=0.0,
        dropout=0.0,
        activation="gelu",
        seed=None,
        data_format=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(token_mixer, dict):
            token_mixer = keras.saving.deserialize_keras_object(token_mixer)
        if not isinstance(token_mixer, keras.layers.Layer):
            _checks.one_of("token_mixer", token_mixer, set(TOKEN_MIXERS))
        self.token_mixer = token_mixer
        self.mlp_ratio = _checks.positive_int("mlp_ratio", mlp_ratio)
        self.pool_size = _odd_pool_size(pool_size)
        self.kernel_size = _checks.positive_int("kernel_size", kernel_size)
        self.num_heads = _checks.optional_positive_int("num_heads", num_heads)
        self.tokens_mlp_dim = _checks.optional_positive_int(
            "tokens_mlp_dim", tokens_mlp_dim
        )
        self.norm = _checks.one_of("norm", norm, set(NORMS))
        self.norm_epsilon = _checks.non_negative_float(
            "norm_epsilon", norm_epsilon
        )
        if layer_scale_init_value is not None:
            layer_scale_init_value = _checks.non_negative_float(
                "layer_scale_init_value", layer_scale_init_value
            )
        self.layer_scale_init_value = layer_scale_init_value
        self.drop_path_rate = _checks.rate("drop_path_rate", drop_path_rate)
        self.dropout = _checks.rate("dropout", dropout)
        self.activation = activations.get(activation)
        self.seed = seed
        self.data_format = _checks.data_format(data_format)

    def _heads(self, channels):
        return self.num_heads or max(1, channels // 32)

    def _make_norm(self, name):
        policy = self.dtype_policy
        if self.norm == "group":
            return keras.layers.GroupNormalization(
                groups=1, epsilon=self.norm_epsilon, dtype=policy, name=name
            )
        return keras.layers.LayerNormalization(
            epsilon=self.norm_epsilon, dtype=policy, name=name
        )

    def _make_mixer(self, shape):
        """The token mixer, built for the NHWC ``shape``."""
        if isinstance(self.token_mixer, keras.layers.Layer):
            mixer = self.token_mixer
            if not mixer.built:
                mixer.build(shape)
            got = tuple(mixer.compute_output_shape(shape))
            if got[1:] != tuple(shape[1:]):
                raise ValueError(
                    "A token mixer must keep the shape of its input "
                    f"{tuple(shape)}; it returns {got}. Received: "
                    f"token_mixer={type(mixer).__name__}"
                )
            return mixer
        kind, policy = self.token_mixer, self.dtype_policy
        _, height, width, channels = shape
        if kind in ("pooling", "attention", "spatial_mlp"):
            _checks.static_dims(self, shape, [1, 2], "image size")
        common = dict(dtype=policy, name="token_mixer")
        seed = _seeds.child_seed(self.seed, "token_mixer")
        if kind == "pooling":
            mixer = PoolingMixer(
                self.pool_size, data_format="channels_last", **common
            )
            mixer.build(shape)
        elif kind == "attention":
            mixer = MultiHeadSelfAttention(
                self._heads(channels), qkv_bias=False, seed=seed, **common
            )
            mixer.build((shape[0], height * width, channels))
        elif kind == "spatial_mlp":
            tokens = height * width
            mixer = MLP(
                self.tokens_mlp_dim or tokens,
                activation=self.activation,
                dropout=self.dropout,
                seed=seed,
                **common,
            )
            mixer.build((shape[0], channels, tokens))
        elif kind == "depthwise_conv":
            mixer = DepthwiseConv2D(
                self.kernel_size,
                padding="same",
                data_format="channels_last",
                **common,
            )
            mixer.build(shape)
        else:
            mixer = keras.layers.Identity(**common)
        return mixer

    def build(self, input_shape):
        shape = _checks.nhwc_shape(self, input_shape)
        self.norm1 = self._make_norm("norm1")
        self.mixer = self._make_mixer(shape)
        self.norm2 = self._make_norm("norm2")
        # 0 or None: no LayerScale, as the official code's flag.
        build_residual_parts(
            self,
            self.mlp_ratio * shape[-1],
            self.layer_scale_init_value or None,
        )
        for layer in (self.norm1, self.norm2, self.mlp, *self.scales):
            layer.build(shape)

    def _mix(self, x, training, return_attention_scores):
        """The token mixer on NHWC ``x``: ``(mixed, scores or None)``."""
        if isinstance(self.token_mixer, keras.layers.Layer):
            # A user's layer keeps its own dtype policy; the residual stream
            # stays in the block's.
            mixed = self.mixer(x, training=training)
            return ops.cast(mixed, x.dtype), None
        if self.token_mixer in ("attention", "spatial_mlp"):
            height, width, channels = x.shape[1], x.shape[2], x.shape[3]
            tokens = ops.reshape(x, (-1, height * width, channels))
            scores = None
            if self.token_mixer == "attention":
                tokens, scores = attend(
                    self.mixer, tokens, training, return_attention_scores
                )
            else:
                tokens = ops.transpose(tokens, (0, 2, 1))
                tokens = self.mixer(tokens, training=training)
                tokens = ops.transpose(tokens, (0, 2, 1))
            return ops.reshape(tokens, (-1, height, width, channels)), scores
        return self.mixer(x), None

    def _residual(self, x, branch, index, training):
        return add_residual(self, x, branch, index, training)

    @property
    def has_attention_scores(self):
        """Whether ``return_attention_scores=True`` is allowed: only with
        the attention token mixer."""
        return isinstance(self.token_mixer, str) and (
            self.token_mixer == "attention"
        )

    def _check_scores_request(self, return_attention_scores):
        if return_attention_scores and not self.has_attention_scores:
            raise ValueError(
                "Only the attention token mixer has attention scores. "
                "Received: return_attention_scores=True with "
                f"token_mixer={self.token_mixer!r}"
            )

    def call(self, inputs, training=None, return_attention_scores=False):
        self._check_scores_request(return_attention_scores)
        x = kv_ops.to_channels_last(inputs, self.data_format)
        y, scores = self._mix(self.norm1(x), training, return_attention_scores)
        x = self._residual(x, y, 0, training)
        y = self.mlp(self.norm2(x), training=training)
        x = kv_ops.from_channels_last(
            self._residual(x, y, 1, training), self.data_format
        )
        if return_attention_scores:
            return x, scores
        return x

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        self._check_scores_request(return_attention_scores)
        outputs = keras.KerasTensor(inputs.shape, dtype=self.compute_dtype)
        if not return_attention_scores:
            return outputs
        shape = _checks.nhwc_shape(self, inputs.shape)
        tokens = shape[1] * shape[2]
        heads = self._heads(shape[3])
        scores = keras.KerasTensor(
            (shape[0], heads, tokens, tokens), dtype=self.compute_dtype
        )
        return outputs, scores

    def get_config(self):
        config = super().get_config()
        token_mixer = self.token_mixer
        if isinstance(token_mixer, keras.layers.Layer):
            token_mixer = keras.saving.serialize_keras_object(token_mixer)
            # The block builds its mixer for whatever input it gets.
            token_mixer.pop("build_config", None)
        config.update(
            {
                "token_mixer": token_mixer,
                "mlp_ratio": self.mlp_ratio,
                "pool_size": self.pool_size,
                "kernel_size": self.kernel_size,
                "num_heads": self.num_heads,
                "tokens_mlp_dim": self.tokens_mlp_dim,
                "norm": self.norm,
                "norm_epsilon": self.norm_epsilon,
                "layer_scale_init_value": self.layer_scale_init_value,
                "drop_path_rate": self.drop_path_rate,
                "dropout": self.dropout,
                "activation": activations.serialize(self.activation),
                "seed": self.seed,
                "data_format": self.data_format,
            }
        )
        return config
