"""Argument and shape validation shared by kvision layers.

Every check raises a ``ValueError`` that names the argument and the value
received, so that a wrong call fails at construction or build time instead of
deep inside a backend kernel.
"""

import math

import keras


def positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(
            f"`{name}` must be a positive integer. Received: {name}={value!r}"
        )
    return value


def non_negative_int(name, value):
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(
            f"`{name}` must be a non-negative integer. "
            f"Received: {name}={value!r}"
        )
    return value


def positive_float(name, value):
    if non_negative_float(name, value) == 0:
        raise ValueError(
            f"`{name}` must be positive. Received: {name}={value!r}"
        )
    return float(value)


def optional_positive_int(name, value):
    return None if value is None else positive_int(name, value)


def rate(name, value):
    """A probability in [0, 1): 1 would drop everything."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a float in [0, 1). Received: {name}={value!r}"
        )
    if not 0.0 <= value < 1.0:
        raise ValueError(
            f"`{name}` must be in [0, 1). Received: {name}={value!r}"
        )
    return float(value)


def non_negative_float(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(
            f"`{name}` must be a number. Received: {name}={value!r}"
        )
    if value < 0:
        raise ValueError(
            f"`{name}` must be non-negative. Received: {name}={value!r}"
        )
    return float(value)


def one_of(name, value, allowed):
    if value not in allowed:
        raise ValueError(
            f"`{name}` must be one of {sorted(allowed, key=repr)}. "
            f"Received: {name}={value!r}"
        )
    return value


def data_format(value):
    """Resolves ``None`` to Keras' global image data format."""
    if value is None:
        value = keras.config.image_data_format()
    return one_of("data_format", value, {"channels_last", "channels_first"})


def input_rank(layer, input_shape, ranks, layout):
    rank = len(input_shape)
    if rank not in ranks:
        expected = " or ".join(str(r) for r in ranks)
        raise ValueError(
            f"{type(layer).__name__} expects inputs of rank {expected} "
            f"{layout}. Received: input_shape={tuple(input_shape)}"
        )


def static_dims(layer, input_shape, axes, what):
    """Checks that the named axes of ``input_shape`` are known ints."""
    for axis in axes:
        if input_shape[axis] is None:
            raise ValueError(
                f"{type(layer).__name__} needs a static {what}; axis {axis} "
                f"is unknown. Received: input_shape={tuple(input_shape)}"
            )


def nhwc_shape(layer, input_shape):
    """Checks an image input and returns its shape in NHWC order.

    Reads ``layer.data_format``; the channel count must be static.
    """
    input_rank(
        layer,
        input_shape,
        (4,),
        f"(images in {layer.data_format} layout)",
    )
    shape = tuple(input_shape)
    if layer.data_format == "channels_first":
        shape = (shape[0], shape[2], shape[3], shape[1])
    static_dims(layer, shape, [3], "channel dimension")
    return shape


def nhwc_to_data_format(layer, shape):
    """Inverse of :func:`nhwc_shape` for output shapes."""
    if layer.data_format == "channels_first":
        return (shape[0], shape[3], shape[1], shape[2])
    return tuple(shape)


def divisible_image(layer, shape, patch_size, what="image size"):
    """Checks that an NHWC shape's height and width divide by patch_size."""
    static_dims(layer, shape, [1, 2], what)
    height, width = shape[1], shape[2]
    if height % patch_size or width % patch_size:
        raise ValueError(
            f"{type(layer).__name__}: the {what} ({height}x{width}) must be "
            f"divisible by `patch_size`. Received: patch_size={patch_size}"
        )


def token_grid_argument(value):
    """Validates an optional ``(rows, columns)`` token grid argument."""
    if value is None:
        return None
    value = tuple(value)
    if len(value) != 2:
        raise ValueError(
            "`token_grid` must be a pair (rows, columns). "
            f"Received: token_grid={value!r}"
        )
    for size in value:
        positive_int("token_grid", size)
    return value


def token_grid(layer, input_shape, num_class_tokens, grid):
    """The ``(rows, columns)`` of the visual tokens of ``(B, N, D)`` input.

    The first ``num_class_tokens`` tokens are not on the grid. ``grid`` is
    the layer's ``token_grid`` argument; ``None`` infers a square grid.
    """
    input_rank(layer, input_shape, (3,), "(batch, tokens, channels)")
    static_dims(layer, input_shape, [1, 2], "token count and width")
    visual = input_shape[1] - num_class_tokens
    if grid is not None:
        if grid[0] * grid[1] != visual:
            raise ValueError(
                f"`token_grid` {grid} holds {grid[0] * grid[1]} tokens but "
                f"the input has {visual} visual tokens. Received: "
                f"input_shape={tuple(input_shape)}"
            )
        return grid
    side = math.isqrt(max(visual, 0))
    if visual < 1 or side * side != visual:
        raise ValueError(
            f"Cannot infer a square grid from {visual} visual tokens: pass "
            f"`token_grid`. Received: input_shape={tuple(input_shape)}, "
            f"num_class_tokens={num_class_tokens}"
        )
    return side, side
