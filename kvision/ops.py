"""Pure ``keras.ops`` functions behind kvision's layers.

They run unchanged on the TensorFlow, JAX and PyTorch backends. Layers own
weights and configuration; the tensor manipulation they share lives here, once.
"""

import keras
from keras import ops

# The order of the shifted copies follows the official SPT code so that
# weights trained there line up channel for channel.
SHIFT_DIRECTIONS = {
    # (row offset, column offset) of the crop taken from the padded image.
    "diagonal": ((-1, -1), (-1, 1), (1, -1), (1, 1)),
    "cardinal": ((0, -1), (0, 1), (-1, 0), (1, 0)),
}


def to_channels_last(images, data_format):
    """Returns NHWC images whatever ``data_format`` the caller uses."""
    if data_format == "channels_first":
        return ops.transpose(images, (0, 2, 3, 1))
    return images


def from_channels_last(images, data_format):
    """Inverse of :func:`to_channels_last`."""
    if data_format == "channels_first":
        return ops.transpose(images, (0, 3, 1, 2))
    return images


def patchify(images, patch_size):
    """Cuts NHWC images into flattened non-overlapping patches.

    Args:
        images: tensor ``(B, H, W, C)`` with static ``H``, ``W``, ``C``, both
            ``H`` and ``W`` divisible by ``patch_size``.
        patch_size: int, side of the square patches.

    Returns:
        Tensor ``(B, (H // p) * (W // p), p * p * C)``. Patches are in
        row-major grid order and each is flattened as ``(row, col, channel)``,
        the layout of einops' ``b (h p1) (w p2) c -> b (h w) (p1 p2 c)``.
    """
    _, height, width, channels = images.shape
    p = patch_size
    grid_h, grid_w = height // p, width // p
    x = ops.reshape(images, (-1, grid_h, p, grid_w, p, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, grid_h * grid_w, p * p * channels))


def shift_images(images, shift, directions="diagonal"):
    """Concatenates NHWC images with four shifted copies along channels.

    The image is zero-padded by ``shift`` on every side and cropped back to its
    size at four offsets, as in Shifted Patch Tokenization (Lee et al., 2021,
    arXiv:2112.13492).

    Args:
        images: tensor ``(B, H, W, C)`` with static ``H`` and ``W``.
        shift: int >= 1, the displacement in pixels.
        directions: ``"diagonal"`` (the paper's default) or
            ``"cardinal"``. The crop window moves up-left, up-right,
            down-left and down-right of the original (cardinal: left,
            right, up, down), the names of the official code, so the image
            content moves the opposite way: in the first diagonal copy it
            sits ``shift`` pixels lower and further right, with zeros along
            the top and left edges.

    Returns:
        Tensor ``(B, H, W, 5 * C)``: the original first, then the four copies.
    """
    _, height, width, _ = images.shape
    padded = ops.pad(images, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
    views = [images]
    for dy, dx in SHIFT_DIRECTIONS[directions]:
        top, left = (dy + 1) * shift, (dx + 1) * shift
        views.append(padded[:, top : top + height, left : left + width, :])
    return ops.concatenate(views, axis=-1)


def drop_path(inputs, rate, seed_generator):
    """Zeroes whole samples with probability ``rate`` and rescales the rest.

    Stochastic depth (Huang et al., 2016): the mask has one draw per sample,
    broadcast over every other axis, so a residual branch is either kept (and
    scaled by ``1 / (1 - rate)``) or removed for that sample.
    """
    if rate == 0.0:
        return inputs
    keep = 1.0 - rate
    shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
    noise = keras.random.uniform(shape, seed=seed_generator, dtype="float32")
    mask = ops.cast(ops.floor(keep + noise), inputs.dtype)
    return inputs * mask / ops.cast(keep, inputs.dtype)


def attention_logits(query, key, scale):
    """Scaled attention logits ``Q Kᵀ · scale`` in float32, per head.

    Args:
        query: ``(..., heads, N, head_dim)``; any leading axes (batch,
            windows, ...) are carried through.
        key: ``(..., heads, M, head_dim)``.
        scale: a Python float, or a ``(heads,)`` tensor (a per-head
            temperature, as in Locality Self-Attention).

    Returns:
        float32 ``(..., heads, N, M)``.
    """
    logits = ops.einsum(
        "...qd,...kd->...qk",
        ops.cast(query, "float32"),
        ops.cast(key, "float32"),
    )
    if isinstance(scale, (int, float)):
        return logits * scale
    return logits * ops.reshape(ops.cast(scale, "float32"), (-1, 1, 1))


def attention_probabilities(
    query, key, scale, mask_diagonal=False, bias=None, logits_transform=None
):
    """Softmax attention weights ``softmax(Q Kᵀ · scale + bias)``, per head.

    The one place kvision computes attention weights: every attention layer
    (global, windowed, class, talking-heads, channel-group) calls it. Logits
    and softmax are computed in float32 whatever the inputs' dtype, so
    ``mixed_float16`` does not overflow; the result is cast back to the
    query's dtype.

    Args:
        query: ``(..., heads, N, head_dim)``; leading axes are carried
            through (``(B, heads, N, d)`` for global attention,
            ``(B, windows, heads, N, d)`` for windowed attention).
        key: ``(..., heads, M, head_dim)``.
        scale: a Python float, or a ``(heads,)`` tensor (per-head
            temperature, as in Locality Self-Attention).
        mask_diagonal: if True (requires ``N == M``), every token's attention
            to itself is removed before the softmax, so its probability is
            exactly zero (LSA's diagonal masking).
        bias: optional tensor added to the float32 logits before the
            softmax, broadcastable to ``(..., heads, N, M)``: Swin's relative
            position bias, or an additive mask (large negative values keep
            pairs apart).
        logits_transform: optional callable applied to the float32 logits
            (after ``bias``, before the diagonal mask and the softmax), e.g.
            CaiT's talking-heads mixing across the head axis.

    Returns:
        ``(..., heads, N, M)`` probabilities summing to one over the last
        axis.
    """
    logits = attention_logits(query, key, scale)
    if bias is not None:
        logits = logits + ops.cast(bias, "float32")
    if logits_transform is not None:
        logits = ops.cast(logits_transform(logits), "float32")
    if mask_diagonal:
        size = logits.shape[-1]
        diagonal = ops.eye(size, dtype="bool")
        # A finite minimum keeps softmax well defined; exp() of it underflows
        # to exactly zero in float32.
        logits = ops.where(diagonal, ops.cast(-1e30, "float32"), logits)
    probabilities = ops.softmax(logits, axis=-1)
    return ops.cast(probabilities, query.dtype)


def fused_attention(query, key, value, scale, mask_diagonal=False):
    """``softmax(Q Kᵀ · scale) V`` without returning the weights, through
    ``keras.ops.dot_product_attention``: each backend's fused kernel
    (PyTorch's ``scaled_dot_product_attention``, JAX's
    ``dot_product_attention``), which need not materialise the
    ``(B, heads, N, M)`` probabilities. The same math as
    :func:`attention_probabilities` followed by the weighted sum; layers
    take this path when nobody asks for the weights and no attention
    dropout is active.

    Args:
        query: ``(B, N, heads, head_dim)`` (the fused kernels' layout).
        key: ``(B, M, heads, head_dim)``.
        value: ``(B, M, heads, value_dim)``.
        scale: a Python float, or a ``(heads,)`` tensor: a per-head
            temperature (Locality Self-Attention) is folded into the query,
            since the kernels take one scalar scale.
        mask_diagonal: if True (requires ``N == M``), every token's
            attention to itself is masked out (LSA).

    Returns:
        ``(B, N, heads, value_dim)`` in the query's dtype.
    """
    if not isinstance(scale, (int, float)):
        per_head = ops.reshape(ops.cast(scale, query.dtype), (1, 1, -1, 1))
        query = query * per_head
        scale = 1.0
    mask = None
    if mask_diagonal:
        size = query.shape[1]
        mask = ops.logical_not(ops.eye(size, dtype="bool"))[None, None]
    return ops.dot_product_attention(
        query, key, value, mask=mask, scale=float(scale)
    )


def depthwise_conv_shifted(images, kernel, padding="same", strides=1):
    """Depthwise convolution as ``k * k`` shifted multiply-adds.

    Numerically the same as ``keras.ops.depthwise_conv`` with unit dilation,
    any strides and depth multiplier. XLA on CPU runs the grouped
    convolution behind ``DepthwiseConv2D`` several times slower than
    TensorFlow or PyTorch do; written as slices and elementwise products it
    fuses into a few loops instead (see ``benchmarks/depthwise.py``). On JAX
    the stride-1 gradient is written by hand the same way: the input
    gradient as shifted multiply-adds with the flipped kernel, the kernel
    gradient summed over cache-sized batch blocks in a loop (ConvMixer-256/8
    trained at 23, then 33-43 images/s; ``benchmarks/results/throughput.md``).
    Strided slices (PiT's pooling: stride 2, depth multiplier 2) keep the
    automatic gradient: XLA's grouped convolution took 5.1-5.3 s for the
    gradient of one of PiT-32px's poolings at batch 64, the shifted form
    83-134 ms.

    Args:
        images: NHWC tensor ``(B, H, W, C)``.
        kernel: ``(kh, kw, C, M)``, the layout of ``DepthwiseConv2D.kernel``
            (``M``: the depth multiplier; output channel ``c * M + m`` is
            input channel ``c`` through ``kernel[..., c, m]``, as in Keras).
        padding: ``"same"`` (zero padding as Keras pads: the extra row or
            column after the image) or ``"valid"``.
        strides: int or pair.

    Returns:
        ``(B, H', W', C * M)``: ``H' = ceil(H / s)`` for ``"same"``,
        ``(H - kh) // s + 1`` for ``"valid"``.

    Example:

    >>> x = keras.random.normal((2, 8, 8, 3), seed=0)
    >>> w = keras.random.normal((3, 3, 3, 1), seed=1)
    >>> reference = keras.ops.depthwise_conv(x, w, 1, padding="same")
    >>> float(ops.max(ops.abs(depthwise_conv_shifted(x, w) - reference))) < 1e-5
    True
    """
    images = ops.convert_to_tensor(images)
    kernel = ops.convert_to_tensor(kernel, dtype=images.dtype)
    kernel_h, kernel_w, channels, multiplier = kernel.shape
    stride_h, stride_w = (
        (strides, strides) if isinstance(strides, int) else strides
    )
    if padding == "same":
        pads = [[0, 0]]
        for size, k, s in (
            (images.shape[1], kernel_h, stride_h),
            (images.shape[2], kernel_w, stride_w),
        ):
            total = max((-(-size // s) - 1) * s + k - size, 0)
            pads.append([total // 2, total - total // 2])
        images = ops.pad(images, pads + [[0, 0]])
    if multiplier > 1:
        images = ops.repeat(images, multiplier, axis=-1)
    kernel = ops.reshape(kernel, (kernel_h, kernel_w, channels * multiplier))
    if (stride_h, stride_w) != (1, 1):
        return _valid_shifted(images, kernel, (stride_h, stride_w))
    if keras.backend.backend() == "jax":
        return _valid_shifted_with_blocked_gradient(images, kernel)
    return _valid_shifted(images, kernel)


def _valid_shifted(images, kernel, strides=(1, 1)):
    """Valid depthwise correlation of NHWC ``images`` with ``(kh, kw, C)``."""
    kernel_h, kernel_w = kernel.shape[0], kernel.shape[1]
    stride_h, stride_w = strides
    out_h = (images.shape[1] - kernel_h) // stride_h + 1
    out_w = (images.shape[2] - kernel_w) // stride_w + 1
    # The last row and column each kernel tap reads, plus one.
    span_h, span_w = (out_h - 1) * stride_h + 1, (out_w - 1) * stride_w + 1
    outputs = None
    for i in range(kernel_h):
        for j in range(kernel_w):
            window = images[
                :, i : i + span_h : stride_h, j : j + span_w : stride_w, :
            ]
            term = window * kernel[i, j]
            outputs = term if outputs is None else outputs + term
    return outputs


# Bytes of images and upstream gradient per batch block of the kernel
# gradient: small enough to stay in a CPU's L2/L3 cache across its k * k
# passes (2 images of ConvMixer-256/8, 16 of a 32-channel ConvNeXt stage).
KERNEL_GRADIENT_BLOCK_BYTES = 2**20


def _kernel_gradient(images, upstream, kernel_shape):
    """``d out / d kernel`` of :func:`_valid_shifted`, block by block.

    Each kernel tap is a product-and-sum over the whole batch; XLA on CPU
    runs the k * k of them as separate passes over memory (about 5 ms each
    for a ConvMixer-256/8 layer at batch 64). Looping over small batch
    blocks keeps every pass in cache: 3-5x faster on that layer.
    """
    kernel_h, kernel_w = kernel_shape[0], kernel_shape[1]
    batch, out_h, out_w, channels = upstream.shape
    per_image = 2 * out_h * out_w * channels * upstream.dtype.itemsize
    block = max(1, min(batch, KERNEL_GRADIENT_BLOCK_BYTES // per_image))
    blocks = -(-batch // block)
    padding = blocks * block - batch  # zero images add nothing to the sums
    if padding:
        images = ops.pad(images, [[0, padding], [0, 0], [0, 0], [0, 0]])
        upstream = ops.pad(upstream, [[0, padding], [0, 0], [0, 0], [0, 0]])
    images = ops.reshape(images, (blocks, block, *images.shape[1:]))
    upstream = ops.reshape(upstream, (blocks, block, out_h, out_w, channels))

    def add_block(index, total):
        x, g = images[index], upstream[index]
        taps = [
            ops.sum(x[:, i : i + out_h, j : j + out_w, :] * g, axis=(0, 1, 2))
            for i in range(kernel_h)
            for j in range(kernel_w)
        ]
        return total + ops.reshape(ops.stack(taps), kernel_shape)

    start = ops.zeros(kernel_shape, dtype=upstream.dtype)
    return ops.fori_loop(0, blocks, add_block, start)


@ops.custom_gradient
def _valid_shifted_with_blocked_gradient(images, kernel):
    """:func:`_valid_shifted` with a gradient that XLA runs fast on CPU."""

    def gradient(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        kernel_h, kernel_w = kernel.shape[0], kernel.shape[1]
        # The input gradient is the full correlation with the flipped
        # kernel: shifted multiply-adds again.
        padded = ops.pad(
            upstream,
            [[0, 0], [kernel_h - 1] * 2, [kernel_w - 1] * 2, [0, 0]],
        )
        flipped = ops.flip(ops.flip(kernel, axis=0), axis=1)
        return (
            _valid_shifted(padded, flipped),
            _kernel_gradient(images, upstream, kernel.shape),
        )

    return _valid_shifted(images, kernel), gradient


def window_partition(images, window_size):
    """Cuts NHWC maps into non-overlapping square windows of tokens.

    The windowing of the Swin Transformer (Liu et al., 2021,
    arXiv:2103.14030): the same cut as :func:`patchify`, keeping each
    window's tokens apart instead of flattening them into one vector.

    Args:
        images: tensor ``(B, H, W, C)`` with static ``H``, ``W``, ``C``, both
            ``H`` and ``W`` divisible by ``window_size``.
        window_size: int, side of the square windows.

    Returns:
        Tensor ``(B, num_windows, window_size**2, C)``. Windows are in
        row-major order over the ``(H // w, W // w)`` grid and the tokens of
        a window in row-major order inside it; flattening the first two axes
        gives the official code's batch-major ``(B * num_windows, ...)``.

    Example:

    >>> x = keras.ops.reshape(keras.ops.arange(16.0), (1, 4, 4, 1))
    >>> w = window_partition(x, 2)
    >>> tuple(w.shape), keras.ops.convert_to_numpy(w[0, 1, :, 0]).tolist()
    ((1, 4, 4, 1), [2.0, 3.0, 6.0, 7.0])
    """
    _, height, width, channels = images.shape
    windows = (height // window_size) * (width // window_size)
    x = patchify(images, window_size)
    return ops.reshape(x, (-1, windows, window_size**2, channels))


def window_reverse(windows, window_size, height, width):
    """Inverse of :func:`window_partition`: windows back to NHWC maps.

    Args:
        windows: tensor ``(B, num_windows, window_size**2, C)`` laid out as
            :func:`window_partition` returns it.
        window_size: int, side of the square windows.
        height: int, height of the map (a multiple of ``window_size``).
        width: int, width of the map (a multiple of ``window_size``).

    Returns:
        Tensor ``(B, height, width, C)``.
    """
    channels = windows.shape[-1]
    w = window_size
    x = ops.reshape(windows, (-1, height // w, width // w, w, w, channels))
    x = ops.transpose(x, (0, 1, 3, 2, 4, 5))
    return ops.reshape(x, (-1, height, width, channels))


def unfold(images, kernel_size, strides, padding):
    """Overlapping square patches of NHWC images, flattened to tokens.

    The "soft split" of Tokens-to-Token ViT (Yuan et al., 2021,
    arXiv:2101.11986): PyTorch's ``nn.Unfold`` (zero padding, then every
    ``kernel_size`` window ``strides`` apart), written as padding and strided
    slices so that it runs the same on every backend.

    Args:
        images: tensor ``(B, H, W, C)`` with static ``H``, ``W``, ``C``.
        kernel_size: int, side of the square windows.
        strides: int, step between windows.
        padding: int, zeros added on every side first.

    Returns:
        Tensor ``(B, out_h * out_w, kernel_size**2 * C)`` with
        ``out_h = (H + 2 * padding - kernel_size) // strides + 1`` (same for
        the width). Windows are in row-major order and each is flattened as
        ``(row, col, channel)`` like :func:`patchify`; ``nn.Unfold`` orders
        it ``(channel, row, col)``, which only matters when porting weights.

    Example:

    >>> x = keras.ops.reshape(keras.ops.arange(16.0), (1, 4, 4, 1))
    >>> tokens = unfold(x, kernel_size=3, strides=2, padding=1)
    >>> tuple(tokens.shape)
    (1, 4, 9)
    >>> keras.ops.convert_to_numpy(tokens[0, 0]).tolist()
    [0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 4.0, 5.0]
    """
    _, height, width, channels = images.shape
    k, s, p = kernel_size, strides, padding
    out_h = (height + 2 * p - k) // s + 1
    out_w = (width + 2 * p - k) // s + 1
    x = ops.pad(images, ((0, 0), (p, p), (p, p), (0, 0)))
    taps = [
        x[:, i : i + s * (out_h - 1) + 1 : s, j : j + s * (out_w - 1) + 1 : s]
        for i in range(k)
        for j in range(k)
    ]
    x = ops.stack(taps, axis=3)  # (B, out_h, out_w, k * k, C)
    return ops.reshape(x, (-1, out_h * out_w, k * k * channels))


def sinusoidal_positions(length, dim, dtype="float32"):
    """The fixed sine/cosine position table of Vaswani et al. (2017).

    ``table[pos, j] = sin(pos / 10000^(2 * (j // 2) / dim))`` for even
    ``j`` and the cosine of the same angle for odd ``j``, as in the
    Tokens-to-Token ViT code (arXiv:2101.11986).

    Args:
        length: int, number of positions.
        dim: int, width of each position's vector.
        dtype: dtype of the result.

    Returns:
        Tensor ``(length, dim)``.

    Example:

    >>> table = keras.ops.convert_to_numpy(sinusoidal_positions(3, 4))
    >>> table[0].tolist(), round(float(table[1, 0]), 4)
    ([0.0, 1.0, 0.0, 1.0], 0.8415)
    """
    positions = ops.arange(length, dtype="float32")[:, None]
    index = ops.arange(dim, dtype="int32")
    exponent = ops.cast(2 * (index // 2), "float32") / float(dim)
    angles = positions / ops.power(10000.0, exponent)[None, :]
    even = ops.equal(index % 2, 0)[None, :]
    table = ops.where(even, ops.sin(angles), ops.cos(angles))
    return ops.cast(table, dtype)
