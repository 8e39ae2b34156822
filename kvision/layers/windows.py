"""Multi-head self-attention inside (shifted) windows, as in Swin."""

import keras
import numpy as np
from keras import ops

from kvision import _checks
from kvision import ops as kv_ops
from kvision.layers.attention import build_attention_parts
from kvision.layers.attention import head_layout

ATTENTIONS = ("mhsa", "lsa")

# The official Swin code keeps tokens of different regions apart with an
# additive -100 rather than -inf: exp(-100) already vanishes next to any
# logit of ordinary size.
REGION_MASK_VALUE = -100.0


def relative_position_index(window_size):
    """Index into the relative position bias table for every token pair.

    For tokens ``i`` and ``j`` of a ``w x w`` window at rows ``h`` and
    columns ``c`` (row-major inside the window), the entry is
    ``(h_i - h_j + w - 1) * (2w - 1) + (c_i - c_j + w - 1)``: one row of the
    ``(2w - 1)**2``-row table per relative offset.

    Returns:
        int32 NumPy array ``(w * w, w * w)``.
    """
    w = window_size
    rows, cols = np.divmod(np.arange(w * w), w)
    d_rows = rows[:, None] - rows[None, :] + w - 1
    d_cols = cols[:, None] - cols[None, :] + w - 1
    return (d_rows * (2 * w - 1) + d_cols).astype("int32")


def shifted_window_mask(height, width, window_size, shift_size):
    """Additive mask that keeps regions brought together by the roll apart.

    After a cyclic roll by ``-shift_size``, windows on the bottom and right
    edges hold tokens that were far apart in the image. The map is labelled
    with nine regions (slices ``[0, -w)``, ``[-w, -s)``, ``[-s, end)`` per
    axis, in rolled coordinates); a pair of tokens in the same window but
    different regions gets ``-100`` added to its logit.

    Returns:
        float32 NumPy array ``(num_windows, w * w, w * w)``, windows in
        row-major order, values 0 or -100.
    """
    w, s = window_size, shift_size
    labels = np.zeros((height, width), "int32")
    bands = (slice(0, -w), slice(-w, -s), slice(-s, None))
    for i, rows in enumerate(bands):
        for j, cols in enumerate(bands):
            labels[rows, cols] = 3 * i + j
    windows = labels.reshape(height // w, w, width // w, w)
    windows = windows.transpose(0, 2, 1, 3).reshape(-1, w * w)
    apart = windows[:, :, None] != windows[:, None, :]
    return np.where(apart, REGION_MASK_VALUE, 0.0).astype("float32")


def check_window_arguments(window_size, shift_size, attention):
    """Validates a windowed attention's shift and attention choice."""
    if (
        isinstance(shift_size, bool)
        or not isinstance(shift_size, int)
        or not 0 <= shift_size < window_size
    ):
        raise ValueError(
            "`shift_size` must be an integer in [0, window_size). "
            f"Received: shift_size={shift_size!r} for "
            f"window_size={window_size}"
        )
    _checks.one_of("attention", attention, ATTENTIONS)
    if attention == "lsa" and window_size < 2:
        raise ValueError(
            "LSA masks each token's attention to itself, so a window "
            "needs at least 2 tokens. Received: window_size="
            f"{window_size}, attention='lsa'"
        )


def window_attention_spec(layer, inputs, grid, return_attention_scores):
    """Symbolic outputs of a layer built on windowed attention.

    ``layer`` has ``num_heads`` and ``window_size``; ``grid`` is the
    (padded) ``(height, width)`` the windows tile.
    """
    outputs = keras.KerasTensor(inputs.shape, dtype=layer.compute_dtype)
    if not return_attention_scores:
        return outputs
    w = layer.window_size
    windows = (grid[0] // w) * (grid[1] // w)
    scores = keras.KerasTensor(
        (inputs.shape[0], windows, layer.num_heads, w * w, w * w),
        dtype=layer.compute_dtype,
    )
    return outputs, scores


@keras.saving.register_keras_serializable(package="kvision")
class WindowAttention(keras.layers.Layer):
    """Multi-head self-attention inside non-overlapping (shifted) windows.

    Reference: Liu et al., *Swin Transformer: Hierarchical Vision
    Transformer using Shifted Windows* (arXiv:2103.14030), Section 3.2 and
    the official code; the LSA mode follows the SL-Swin of Lee, Lee and
    Song, *Vision Transformer for Small-Size Datasets* (arXiv:2112.13492);
    ``pad_to_window`` is DaViT's spatial attention (arXiv:2204.03645).

    The map is cut into ``window_size x window_size`` windows and every
    window attends within itself, so the cost grows linearly with the image
    area. Per window and head the weights are

    ``softmax(Q Kᵀ · scale + B + M)``, computed by
    :func:`kvision.ops.attention_probabilities`, where

    - ``B`` is Swin's learned **relative position bias**: a table of
      ``(2w - 1)**2`` rows (one per relative offset) by ``num_heads``,
      truncated-normal initialised (std 0.02) and gathered with an index
      computed once with NumPy (a constant, not a weight);
    - ``M`` is the **shifted-window mask** when ``shift_size > 0``: the map
      is rolled by ``-shift_size`` before the windows are cut (and rolled
      back after), so windows straddle the previous layer's window borders;
      pairs that the roll brought together from different image regions get
      ``-100``;
    - ``attention="lsa"``: ``scale`` is a learnable per-head temperature
      (initialised to ``head_dim**-0.5``) and each token's attention to
      itself is masked after ``B`` and ``M`` are added, as in the official
      SL-Swin code.

    Queries, keys and values come from one fused projection; an output
    projection maps back to the input width.

    Args:
        num_heads: int, number of attention heads.
        window_size: int, side of the square windows.
        shift_size: int in ``[0, window_size)``, the cyclic shift (Swin uses
            ``window_size // 2`` in every other block).
        head_dim: int or ``None`` (default) for ``channels // num_heads``.
        qkv_bias: bool, bias on the query/key/value projection (default
            True, as in Swin).
        relative_position_bias: bool, whether to learn the relative position
            bias table (default True; DaViT has none).
        attention: ``"mhsa"`` (fixed scale ``head_dim**-0.5``) or ``"lsa"``.
        pad_to_window: bool; if True, maps whose height or width is not a
            multiple of ``window_size`` are zero-padded at the bottom and
            right (before the roll) and cropped back after; if False
            (default) such maps raise a ``ValueError``.
        attention_dropout: float in [0, 1), dropout on attention weights.
        dropout: float in [0, 1), dropout after the output projection.
        seed: optional int seed for the dropout layers.
        **kwargs: base ``keras.layers.Layer`` arguments.

    Call arguments:
        inputs: channels-last maps ``(B, H, W, C)`` with static ``H``, ``W``
            and ``C``.
        training: bool, enables dropout.
        return_attention_scores: bool; if True the layer returns
            ``(outputs, scores)``, ``scores`` of shape
            ``(B, num_windows, num_heads, window_size**2, window_size**2)``:
            the softmax weights before dropout. Windows are in row-major
            order over the (padded) ``(H // w, W // w)`` grid **of the
            rolled map** when ``shift_size > 0``, the tokens of a window in
            row-major order inside it; flattening ``(B, num_windows)`` gives
            the official code's batch-major ``B * num_windows`` axis.

    Output shape: ``(B, H, W, C)``.

    Example:

    >>> import numpy as np
    >>> from kvision.layers import WindowAttention
    >>> layer = WindowAttention(num_heads=3, window_size=4, shift_size=2)
    >>> y, scores = layer(
    ...     np.zeros((2, 8, 8, 96), "float32"), return_attention_scores=True
    ... )
    >>> tuple(y.shape), tuple(scores.shape)
    ((2, 8, 8, 96), (2, 4, 3, 16, 16))
    """

    def __init__(
        self,
        num_heads,
        window_size,
        shift_size=0,
        head_dim=None,
        qkv_bias=True,
        relative_position_bias=True,
        attention="mhsa",
        pad_to_window=False,
        attention_dropout=0.0,
        dropout=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_heads = _checks.positive_int("num_heads", num_heads)
        self.window_size = _checks.positive_int("window_size", window_size)
        self.shift_size = shift_size
        self.head_dim = _checks.optional_positive_int("head_dim", head_dim)
        self.qkv_bias = bool(qkv_bias)
        self.relative_position_bias = bool(relative_position_bias)
        self.attention = attention
        check_window_arguments(window_size, shift_size, attention)
        self.pad_to_window = bool(pad_to_window)
        self.attention_dropout = _checks.rate(
            "attention_dropout", attention_dropout
        )
        self.dropout = _checks.rate("dropout", dropout)
        self.seed = seed

    def _padded_size(self, input_shape):
        """(H, W, padded H, padded W) of a map; validates its shape."""
        _checks.input_rank(
            self, input_shape, (4,), "(batch, height, width, channels)"
        )
        _checks.static_dims(self, input_shape, [1, 2, 3], "map size")
        height, width = input_shape[1], input_shape[2]
        w = self.window_size
        if not self.pad_to_window and (height % w or width % w):
            raise ValueError(
                f"WindowAttention: the map ({height}x{width}) must be "
                "divisible by `window_size` (or pass pad_to_window=True). "
                f"Received: window_size={w}"
            )
        return height, width, -(-height // w) * w, -(-width // w) * w

    def build(self, input_shape):
        _, _, padded_h, padded_w = self._padded_size(input_shape)
        channels = input_shape[-1]
        self._head_dim, inner_dim = head_layout(
            self, channels, what="The channel count"
        )
        build_attention_parts(self, channels, inner_dim)
        if self.attention == "lsa":
            self.temperature = self.add_weight(
                name="temperature",
                shape=(self.num_heads,),
                initializer=keras.initializers.Constant(self._head_dim**-0.5),
            )
        if self.relative_position_bias:
            self.relative_position_bias_table = self.add_weight(
                name="relative_position_bias_table",
                shape=((2 * self.window_size - 1) ** 2, self.num_heads),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            )
            # Constants, rebuilt from the config: not saved as weights.
            self._relative_index = relative_position_index(
                self.window_size
            ).reshape(-1)
        self._region_mask = None
        if self.shift_size:
            self._region_mask = shifted_window_mask(
                padded_h, padded_w, self.window_size, self.shift_size
            )

    def _bias(self):
        """``B + M`` broadcastable to ``(B, windows, heads, N, N)``."""
        bias = None
        if self.relative_position_bias:
            tokens = self.window_size**2
            table = ops.cast(self.relative_position_bias_table, "float32")
            bias = ops.take(
                table, ops.convert_to_tensor(self._relative_index), 0
            )
            bias = ops.reshape(bias, (tokens, tokens, self.num_heads))
            bias = ops.transpose(bias, (2, 0, 1))
        if self._region_mask is not None:
            mask = ops.convert_to_tensor(self._region_mask)[:, None]
            bias = mask if bias is None else bias + mask
        return bias

    def call(self, inputs, training=None, return_attention_scores=False):
        height, width, padded_h, padded_w = self._padded_size(inputs.shape)
        w, s = self.window_size, self.shift_size
        x = inputs
        if (padded_h, padded_w) != (height, width):
            x = ops.pad(
                x,
                ((0, 0), (0, padded_h - height), (0, padded_w - width), (0, 0)),
            )
        if s:
            x = ops.roll(x, shift=(-s, -s), axis=(1, 2))
        windows = kv_ops.window_partition(x, w)
        num_windows, tokens = windows.shape[1], windows.shape[2]
        qkv = self.qkv(windows)
        # (B, nW, N, 3, heads, d) -> (3, B, nW, heads, N, d)
        qkv = ops.reshape(
            qkv, (-1, num_windows, tokens, 3, self.num_heads, self._head_dim)
        )
        qkv = ops.transpose(qkv, (3, 0, 1, 4, 2, 5))
        query, key, value = qkv[0], qkv[1], qkv[2]
        lsa = self.attention == "lsa"
        scores = kv_ops.attention_probabilities(
            query,
            key,
            self.temperature if lsa else self._head_dim**-0.5,
            mask_diagonal=lsa,
            bias=self._bias(),
        )
        weights = self.attention_drop(scores, training=training)
        y = ops.einsum("bwhqk,bwhkd->bwqhd", weights, value)
        y = ops.reshape(
            y, (-1, num_windows, tokens, self.num_heads * self._head_dim)
        )
        y = self.output_drop(self.projection(y), training=training)
        y = kv_ops.window_reverse(y, w, padded_h, padded_w)
        if s:
            y = ops.roll(y, shift=(s, s), axis=(1, 2))
        if (padded_h, padded_w) != (height, width):
            y = y[:, :height, :width, :]
        if return_attention_scores:
            return y, scores
        return y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape)

    def compute_output_spec(
        self, inputs, training=None, return_attention_scores=False
    ):
        _, _, padded_h, padded_w = self._padded_size(inputs.shape)
        return window_attention_spec(
            self, inputs, (padded_h, padded_w), return_attention_scores
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_heads": self.num_heads,
                "window_size": self.window_size,
                "shift_size": self.shift_size,
                "head_dim": self.head_dim,
                "qkv_bias": self.qkv_bias,
                "relative_position_bias": self.relative_position_bias,
                "attention": self.attention,
                "pad_to_window": self.pad_to_window,
                "attention_dropout": self.attention_dropout,
                "dropout": self.dropout,
                "seed": self.seed,
            }
        )
        return config
