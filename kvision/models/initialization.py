"""Drawing a built model's weights as each paper's official code does.

Keras initialises a ``Dense`` or convolution kernel Glorot-uniform; the
official codes of the papers here use other rules, which change how fast a
small model starts to learn. :func:`initialize_weights` re-draws the kernels
(and biases) of a built model by one of these schemes:

- ``"xavier_normal"``: the SPT/LSA repository (SL-ViT): every kernel, all
  of them ``nn.Linear`` there, from a normal of standard deviation
  ``sqrt(2 / (fan_in + fan_out))``; zero biases.
- ``"trunc_normal"``: ConvNeXt and timm's ViTs: ``trunc_normal_(std=.02)``
  for every convolution and linear kernel, zero biases. timm's truncation
  bounds are absolute (+-2), a hundred standard deviations here, so this is
  a normal of standard deviation 0.02.
- ``"lecun_normal"``: the official (Flax) MLP-Mixer: a normal truncated at
  two standard deviations with variance ``1 / fan_in``; zero biases.
- ``"torch"``: PyTorch's defaults (the official ConvMixer code sets none):
  kernels and biases uniform in ``+-1 / sqrt(fan_in)``, where a depthwise
  kernel's fan-in is its window (one input channel per group).
- ``"keras"``: leave Keras' initialisation alone.

Fans treat a kernel as the matrix it multiplies with: ``fan_in`` is the
product of all its axes but the last (inputs times window), ``fan_out`` the
last; a depthwise kernel ``(kh, kw, C, m)`` has ``fan_in = kh * kw``. Norm
parameters, LayerScale, LSA temperatures, class tokens and position
embeddings are left to their layers (models pass those initializers when
they build them).
"""

import math

import keras

from kvision import _checks

WEIGHT_INITS = (
    "keras",
    "xavier_normal",
    "trunc_normal",
    "lecun_normal",
    "torch",
)

# The standard deviation of a unit normal truncated at +-2.
_TRUNCATED_STD = 0.87962566103423978


def _fans(layer):
    shape = tuple(layer.kernel.shape)
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        window = shape[0] * shape[1]
        return window, window * shape[-1]
    return math.prod(shape[:-1]), shape[-1]


def _kernel_initializer(scheme, fan_in, fan_out):
    if scheme == "xavier_normal":
        std = math.sqrt(2.0 / (fan_in + fan_out))
        return keras.initializers.RandomNormal(stddev=std)
    if scheme == "trunc_normal":
        return keras.initializers.RandomNormal(stddev=0.02)
    if scheme == "lecun_normal":
        std = math.sqrt(1.0 / fan_in) / _TRUNCATED_STD
        return keras.initializers.TruncatedNormal(stddev=std)
    bound = 1.0 / math.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


def _redraw(variable, initializer):
    """Gives ``variable`` a value drawn by ``initializer``.

    A weight created inside ``keras.StatelessScope(initialize_variables=
    False)`` has no value yet (an assignment there would only be recorded
    by the scope): it takes ``initializer`` in place of the one it was
    created with, so the scheme holds when Keras initialises it later, and
    a shapes-only build draws nothing (ConvNeXt-XLarge: 0.5 s, not 4-15 s).
    """
    if getattr(variable, "_value", True) is None:
        variable._initializer = initializer
    else:
        variable.assign(initializer(variable.shape, dtype=variable.dtype))


def initialize_weights(model, scheme, zero_head=False):
    """Re-draws the kernels and biases of a built model.

    Args:
        model: a built Keras model.
        scheme: one of :data:`WEIGHT_INITS` (see the module docs).
        zero_head: bool; zero the kernel and bias of the layer named
            ``"head"``, as the official MLP-Mixer and Google ViT code do.

    Returns:
        ``model``.

    Example:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)])
    >>> model = initialize_weights(model, "trunc_normal")
    >>> kernel = keras.ops.convert_to_numpy(model.layers[0].kernel)
    >>> abs(float(kernel.std()) - 0.02) < 0.02
    True
    """
    _checks.one_of("weight_init", scheme, set(WEIGHT_INITS))
    if scheme != "keras":
        # Sublayers are reached through Keras' own traversal; every kvision
        # kernel lives in a Dense, Conv2D or DepthwiseConv2D.
        for layer in model._flatten_layers(include_self=False):
            kinds = (keras.layers.Dense, keras.layers.Conv2D)
            if not isinstance(layer, kinds + (keras.layers.DepthwiseConv2D,)):
                continue
            fan_in, fan_out = _fans(layer)
            draw = _kernel_initializer(scheme, fan_in, fan_out)
            _redraw(layer.kernel, draw)
            bias = getattr(layer, "bias", None)
            if bias is not None:
                if scheme != "torch":
                    draw = keras.initializers.Zeros()
                _redraw(bias, draw)
    if zero_head:
        for variable in model.get_layer("head").weights:
            _redraw(variable, keras.initializers.Zeros())
    return model
