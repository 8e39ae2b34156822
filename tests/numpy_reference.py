"""Plain NumPy (float64) references for the parity tests.

Each function is written from the papers' official code or from the
definition of the operation, never from kvision's implementation, so that a
parity test compares two independent computations. Images are NHWC.
"""

import math

import numpy as np

_erf = np.vectorize(math.erf, otypes=[np.float64])

# The value the official SPT/LSA code writes on the diagonal of the logits.
_OFFICIAL_MASK_VALUE = -987654321.0


def as64(x):
    return np.asarray(x, dtype=np.float64)


def layer_norm(x, gamma, beta, epsilon):
    """Normalises over the last axis with the biased variance."""
    x = as64(x)
    mean = x.mean(axis=-1, keepdims=True)
    variance = x.var(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def gelu(x):
    """Exact GELU, ``x * Phi(x)``, as PyTorch's ``nn.GELU()``."""
    x = as64(x)
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    """The tanh approximation of GELU (``jax.nn.gelu``'s default)."""
    x = as64(x)
    inner = math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)
    return 0.5 * x * (1.0 + np.tanh(inner))


def relu(x):
    return np.maximum(as64(x), 0.0)


def dense(x, kernel, bias=None):
    """Keras' Dense: ``kernel`` is ``(in, out)``."""
    y = as64(x) @ as64(kernel)
    return y if bias is None else y + bias


def softmax(x, axis=-1):
    x = as64(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def mlp(x, fc1_kernel, fc1_bias, fc2_kernel, fc2_bias, activation=gelu):
    return dense(
        activation(dense(x, fc1_kernel, fc1_bias)), fc2_kernel, fc2_bias
    )


def patchify(images, patch_size):
    """``b (h p1) (w p2) c -> b (h w) (p1 p2 c)``, element by element."""
    images = as64(images)
    batch, height, width, channels = images.shape
    p = patch_size
    grid_h, grid_w = height // p, width // p
    out = np.zeros((batch, grid_h * grid_w, p * p * channels))
    for i in range(grid_h):
        for j in range(grid_w):
            token = i * grid_w + j
            for p1 in range(p):
                for p2 in range(p):
                    start = (p1 * p + p2) * channels
                    out[:, token, start : start + channels] = images[
                        :, i * p + p1, j * p + p2, :
                    ]
    return out


def shift_patches(images, shift, directions="diagonal"):
    """PatchShifting of the official SPT code, transcribed to NHWC.

    The official code works on NCHW and concatenates on axis 1; here the
    crops are the same slices of the height and width axes and the
    concatenation is on the channel axis, the original first.
    """
    x = as64(images)
    s = shift
    x_pad = np.pad(x, ((0, 0), (s, s), (s, s), (0, 0)))
    if directions == "diagonal":
        crops = [
            x_pad[:, : -2 * s, : -2 * s],  # left-up
            x_pad[:, : -2 * s, 2 * s :],  # right-up
            x_pad[:, 2 * s :, : -2 * s],  # left-bottom
            x_pad[:, 2 * s :, 2 * s :],  # right-bottom
        ]
    elif directions == "cardinal":
        crops = [
            x_pad[:, s:-s, : -2 * s],  # left
            x_pad[:, s:-s, 2 * s :],  # right
            x_pad[:, : -2 * s, s:-s],  # top
            x_pad[:, 2 * s :, s:-s],  # bottom
        ]
    else:
        raise ValueError(directions)
    return np.concatenate([x, *crops], axis=-1)


def shifted_patch_tokens(images, shift, patch_size, norm, projection, **kw):
    """SPT on images: shift, patchify, LayerNorm, Dense.

    ``norm`` is ``(gamma, beta, epsilon)``, ``projection`` ``(kernel, bias)``.
    """
    x = shift_patches(images, shift, **kw)
    x = patchify(x, patch_size)
    return dense(layer_norm(x, *norm), *projection)


def patch_conv2d(images, kernel, bias):
    """Convolution with ``kernel_size == strides``, "valid" padding.

    ``kernel`` is Keras' ``(p, p, C_in, C_out)``; trailing rows and columns
    that do not fill a whole window are dropped.
    """
    x = as64(images)
    p = kernel.shape[0]
    grid_h, grid_w = x.shape[1] // p, x.shape[2] // p
    out = np.zeros((x.shape[0], grid_h, grid_w, kernel.shape[-1]))
    for dy in range(p):
        for dx in range(p):
            window = x[:, dy : grid_h * p : p, dx : grid_w * p : p, :]
            out += window @ as64(kernel[dy, dx])
    return out + bias


def depthwise_conv2d_same(images, kernel, bias):
    """Depthwise cross-correlation, stride 1, TensorFlow's "same" padding.

    ``kernel`` is Keras' ``(k, k, C, 1)``. For an even ``k`` the extra row
    and column of padding go after the image, as in TF and PyTorch.
    """
    x = as64(images)
    k = kernel.shape[0]
    before = (k - 1) // 2
    after = k - 1 - before
    x_pad = np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    height, width = x.shape[1], x.shape[2]
    out = np.zeros_like(x)
    for dy in range(k):
        for dx in range(k):
            window = x_pad[:, dy : dy + height, dx : dx + width, :]
            out += window * as64(kernel[dy, dx, :, 0])
    return out + bias


def batch_norm_inference(x, mean, variance, gamma, beta, epsilon):
    """BatchNorm with moving statistics (channels last)."""
    return (as64(x) - mean) / np.sqrt(as64(variance) + epsilon) * gamma + beta


def attention_probabilities(query, key, scale, mask_diagonal=False):
    """``softmax(Q Kᵀ · scale)`` over ``(B, heads, N, head_dim)`` inputs.

    ``scale`` is a number or one temperature per head; with
    ``mask_diagonal`` the logits of each token to itself get the official
    LSA code's large negative value.
    """
    logits = np.einsum("bhid,bhjd->bhij", as64(query), as64(key))
    scale = as64(scale)
    if scale.ndim == 1:
        scale = scale[None, :, None, None]
    logits = logits * scale
    if mask_diagonal:
        n = logits.shape[-1]
        logits[:, :, np.arange(n), np.arange(n)] = _OFFICIAL_MASK_VALUE
    return softmax(logits, axis=-1)


def self_attention(
    x,
    qkv_kernel,
    qkv_bias,
    out_kernel,
    out_bias,
    num_heads,
    scale,
    mask_diagonal=False,
):
    """Multi-head self-attention as in the official ViT/LSA PyTorch code.

    ``to_qkv(x).chunk(3, dim=-1)``, then ``b n (h d) -> b h n d`` for each of
    q, k, v; the heads are merged back with ``b h n d -> b n (h d)``.
    Returns ``(outputs, probabilities)``.
    """
    qkv = dense(x, qkv_kernel, qkv_bias)
    batch, tokens, width = qkv.shape
    head_dim = width // (3 * num_heads)

    def split_heads(t):
        return t.reshape(batch, tokens, num_heads, head_dim).transpose(
            0, 2, 1, 3
        )

    q, k, v = (split_heads(t) for t in np.split(qkv, 3, axis=-1))
    probabilities = attention_probabilities(q, k, scale, mask_diagonal)
    out = np.einsum("bhij,bhjd->bhid", probabilities, v)
    out = out.transpose(0, 2, 1, 3).reshape(batch, tokens, -1)
    return dense(out, out_kernel, out_bias), probabilities


def randomize_weights(layer, seed, scale=0.5):
    """Gives every variable of a built layer a random value.

    Initial values (ones, zeros, 1e-6, unit variances) hide swapped or
    missing parameters; random ones do not. Variances stay positive. The
    layer is only touched through ``weights`` and ``assign``.
    """
    rng = np.random.default_rng(seed)
    for variable in layer.weights:
        shape = tuple(variable.shape)
        if "variance" in variable.path:
            value = rng.uniform(0.5, 2.0, size=shape)
        else:
            value = rng.normal(scale=scale, size=shape)
        variable.assign(value.astype("float32"))
