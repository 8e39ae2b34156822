"""A depthwise convolution that is fast on every backend."""

import keras

from kvision import _checks
from kvision import ops as kv_ops
from kvision._devices import default_platform
from kvision._tracing import compiling_on_jax

IMPLEMENTATIONS = ("auto", "native", "shifted")

# Where benchmarks/depthwise.py measured the compiled shifted path beating
# the native convolution, as (backend, device type). "auto" takes it there
# only: on a device nobody has measured, the backend's own kernel stays.
SHIFTED_MEASURED_FASTER = frozenset({("jax", "cpu")})


@keras.saving.register_keras_serializable(package="kvision")
class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """``keras.layers.DepthwiseConv2D`` with a shifted multiply-add path.

    The depthwise convolution of MobileNets (Howard et al., 2017,
    arXiv:1704.04861) that mixes space in ConvMixer (arXiv:2201.09792) and
    ConvNeXt (arXiv:2201.03545).

    Same arguments, weights and results as the Keras layer (checkpoints are
    interchangeable), plus ``implementation``:

    - ``"native"``: the Keras convolution.
    - ``"shifted"``: :func:`kvision.ops.depthwise_conv_shifted`, ``k * k``
      shifted multiply-adds (strided slices for strides above 1); needs
      unit dilation and channels-last images.
    - ``"auto"`` (default): shifted where it was measured to win, native
      elsewhere. XLA's CPU grouped convolution is JAX's slow path, and the
      shifted form fuses into a few loops once compiled, so ``"auto"``
      takes it when JAX is tracing the call for compilation
      (``fit``/``predict`` with the default ``jit_compile``) on a CPU and
      the layer's settings allow it. Run eagerly, its ``k * k`` small ops
      cost more than one convolution, TensorFlow's and PyTorch's own
      kernels are fast, and on accelerators it has not been measured, so
      everything else stays native (``benchmarks/depthwise.py``;
      :data:`SHIFTED_MEASURED_FASTER` lists where it wins).

    Used by :class:`kvision.layers.ConvMixerBlock`,
    :class:`kvision.layers.ConvNeXtBlock` and
    :class:`kvision.layers.PiTPooling` (stride 2, depth multiplier 2).

    Args:
        kernel_size: int or pair, the window size.
        implementation: ``"auto"``, ``"native"`` or ``"shifted"``.
        **kwargs: the arguments of ``keras.layers.DepthwiseConv2D``.

    Input shape: ``(B, H, W, C)`` (or ``(B, C, H, W)``, native path only).
    Output shape: ``(B, H', W', C * depth_multiplier)``.

    Example:

    >>> layer = DepthwiseConv2D(7, padding="same", implementation="shifted")
    >>> tuple(layer(keras.ops.ones((2, 14, 14, 8))).shape)
    (2, 14, 14, 8)
    """

    def __init__(self, kernel_size, implementation="auto", **kwargs):
        super().__init__(kernel_size, **kwargs)
        self.implementation = _checks.one_of(
            "implementation", implementation, IMPLEMENTATIONS
        )
        if implementation == "shifted" and not self._shifted_applies():
            raise ValueError(
                "implementation='shifted' needs dilation_rate=1 and "
                "channels_last data. Received: "
                f"implementation={implementation!r}, "
                f"dilation_rate={self.dilation_rate}, "
                f"data_format={self.data_format!r}"
            )

    def _shifted_applies(self):
        return (
            tuple(self.dilation_rate) == (1, 1)
            and self.data_format == "channels_last"
        )

    @property
    def uses_shifted(self):
        """Whether a call made now takes the shifted multiply-add path."""
        if self.implementation == "auto":
            return (
                self._shifted_applies()
                and compiling_on_jax()
                and ("jax", default_platform()) in SHIFTED_MEASURED_FASTER
            )
        return self.implementation == "shifted"

    def call(self, inputs):
        if not self.uses_shifted:
            return super().call(inputs)
        outputs = kv_ops.depthwise_conv_shifted(
            inputs, self.kernel, padding=self.padding, strides=self.strides
        )
        if self.use_bias:
            outputs = outputs + self.bias
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def get_config(self):
        return {**super().get_config(), "implementation": self.implementation}
