"""The one Keras builder: an ArchSpec (arch.py) becomes a keras.Model.

The structure mirrors keras.applications' own mobilenet_v3.py and mobilenet_v2.py layer for
layer (same layer types, names, BN epsilon, padding, SE block and classifier), so that the
paper's default Large and Small and the MobileNetV2 baselines have exactly Keras's
parameter count and convert to the same TFLite ops, and a weights file saved from a
keras.applications MobileNetV3 or MobileNetV2 loads into them. Every family ends in its
logits and a separate softmax layer named "predictions" (MobileNetV2's Dense gives up its
built-in softmax for it), so the logits are found the same way for every network.

h-swish comes in two spellings that compute the same function:
- fused: Keras's own `Activation("hard_swish")`, x * (relu6(x + 3) / 6), which the TFLite
  converter rewrites into one HARD_SWISH op;
- naive: (x * (1/6)) * relu6(x + 3), an order the converter's pattern does not match, so
  it stays ADD (with RELU6 fused), MUL, MUL: the paper's "no-opt" h-swish.
The SE gate keeps Keras's hard-sigmoid in both.

TensorFlow/Keras are imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from mnv3bench.arch import (
    HSWISH,
    RELU,
    RELU6,
    SWISH,
    ArchSpec,
    Bottleneck,
    Conv,
    Dense,
    Depthwise,
    Dropout,
    GlobalPool,
    arch_spec,
)
from mnv3bench.errors import UsageError

if TYPE_CHECKING:
    import keras

    from mnv3bench.variants import Variant

BN_EPSILON = 1e-3
BN_MOMENTUM = 0.999


def build_keras_model(variant: Variant, weights: Path | None = None, seed: int = 0) -> keras.Model:
    """Build the network a variant names, with seeded random weights or the user's weights.

    The same seed gives the same weights for every variant of the same shape (fused and
    naive h-swish in particular), because the spelling of an activation creates no weights.
    """
    spec = arch_spec(variant)  # validates the variant before TensorFlow is imported
    if weights is not None:
        weights = Path(weights)
        if not weights.is_file():
            raise UsageError(
                f"weights file '{weights}' does not exist or is not a file.",
                "Give the path of a Keras weights file saved with model.save_weights(...).",
            )

    import keras

    keras.utils.set_random_seed(seed)
    model = _build(spec, name=keras_model_name(variant))
    if weights is not None:
        _load_weights(model, weights, variant)
    return model


def keras_model_name(variant: Variant) -> str:
    """The Keras model's name; it scopes every tensor name of the converted .tflite."""
    # Keras layer/model names allow no '@' or '.'.
    return "mnv3bench_" + variant.name.replace("@", "_at_").replace(".", "_").replace("-", "_")


def _load_weights(model: keras.Model, path: Path, variant: Variant) -> None:
    import warnings

    fix = (
        f"Give a Keras weights file for exactly this network ({variant.name}): one saved with "
        "model.save_weights('x.weights.h5') from the same variant, or from "
        "keras.applications.MobileNetV3Large/Small or MobileNetV2 for the default variants."
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.load_weights(str(path))
        except Exception as exc:  # Keras raises ValueError, OSError, KeyError... for bad files
            raise UsageError(f"cannot load weights from '{path}': {_first_line(exc)}", fix) from exc
    # Keras only warns when a file covers some layers but not others; that is a wrong file.
    for warning in caught:
        text = str(warning.message)
        if "could not be loaded" in text or "Skipping" in text or "mismatch" in text:
            raise UsageError(f"weights file '{path}' does not match {variant.name}: {text}", fix)


def _first_line(exc: Exception, limit: int = 300) -> str:
    # Keras's loading errors list every failed layer; the first line says what is wrong.
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _build(spec: ArchSpec, name: str) -> keras.Model:
    from keras import layers

    inputs = layers.Input(shape=(spec.resolution, spec.resolution, 3))
    x = layers.Rescaling(scale=1.0 / 127.5, offset=-1.0)(inputs) if spec.rescale_input else inputs
    x = _conv(x, spec.stem, spec, stride=spec.stem.stride)

    for block in spec.blocks:
        x = _bottleneck(x, block, spec)

    for layer in spec.head:
        if isinstance(layer, Conv):
            x = _conv(x, layer, spec)
        elif isinstance(layer, Depthwise):
            x = layers.DepthwiseConv2D(layer.kernel, padding="same", use_bias=False, name=layer.name)(x)
            x = _batch_norm(x, spec.naming.bn.format(layer.name))
            x = _activation(x, layer.activation, spec.hswish_impl)
        elif isinstance(layer, GlobalPool):
            x = layers.GlobalAveragePooling2D(keepdims=layer.keepdims)(x)
        elif isinstance(layer, Dropout):
            x = layers.Dropout(layer.rate)(x)
        elif isinstance(layer, Dense):
            x = layers.Dense(layer.units, name=layer.name)(x)
        else:
            raise TypeError(f"no Keras layer for head layer {layer!r}")
    if len(x.shape) > 2:  # V3's logits are a 1x1 conv's output
        x = layers.Flatten()(x)
    outputs = layers.Activation("softmax", name="predictions")(x)

    import keras

    return keras.Model(inputs, outputs, name=name)


def _batch_norm(x: Any, name: str) -> Any:
    from keras import layers

    return layers.BatchNormalization(axis=-1, epsilon=BN_EPSILON, momentum=BN_MOMENTUM, name=name)(x)


def _conv(x: Any, conv: Conv, spec: ArchSpec, stride: int = 1) -> Any:
    """A stem or head conv: Conv2D, [BN], [activation], named as the family names them."""
    from keras import layers

    x = layers.Conv2D(
        conv.filters, conv.kernel, strides=stride, padding="same", use_bias=conv.bias, name=conv.name
    )(x)
    if conv.batch_norm:
        x = _batch_norm(x, conv.bn_name or f"{conv.name}_bn")
    return _activation(x, conv.activation, spec.hswish_impl, conv.activation_name)


def _bottleneck(x: Any, block: Bottleneck, spec: ArchSpec) -> Any:
    from keras import layers
    from keras.src.applications.imagenet_utils import correct_pad

    naming, hswish_impl = spec.naming, spec.hswish_impl
    act_name = (lambda conv: naming.activation.format(conv)) if naming.activation else (lambda conv: None)
    shortcut = x
    prefix = naming.prefix(block.index)
    if block.has_expansion:
        x = layers.Conv2D(block.expanded, 1, padding="same", use_bias=False, name=f"{prefix}expand")(x)
        x = _batch_norm(x, naming.bn.format(f"{prefix}expand"))
        x = _activation(x, block.activation, hswish_impl, act_name(f"{prefix}expand"))
    if block.stride == 2:
        x = layers.ZeroPadding2D(padding=correct_pad(x, block.kernel), name=naming.pad.format(prefix))(x)
    x = layers.DepthwiseConv2D(
        block.kernel,
        strides=block.stride,
        padding="same" if block.stride == 1 else "valid",
        use_bias=False,
        name=f"{prefix}depthwise",
    )(x)
    x = _batch_norm(x, naming.bn.format(f"{prefix}depthwise"))
    x = _activation(x, block.activation, hswish_impl, act_name(f"{prefix}depthwise"))
    if block.se_channels:
        x = _squeeze_excite(x, block, prefix)
    x = layers.Conv2D(block.out, 1, padding="same", use_bias=False, name=f"{prefix}project")(x)
    x = _batch_norm(x, naming.bn.format(f"{prefix}project"))
    if block.residual:
        x = layers.Add(name=f"{prefix}add")([shortcut, x])
    return x


def _squeeze_excite(inputs: Any, block: Bottleneck, prefix: str) -> Any:
    from keras import layers

    x = layers.GlobalAveragePooling2D(keepdims=True, name=f"{prefix}squeeze_excite_avg_pool")(inputs)
    x = layers.Conv2D(block.se_channels, 1, padding="same", name=f"{prefix}squeeze_excite_conv")(x)
    x = layers.ReLU(name=f"{prefix}squeeze_excite_relu")(x)
    x = layers.Conv2D(block.expanded, 1, padding="same", name=f"{prefix}squeeze_excite_conv_1")(x)
    x = layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)  # Keras's hard-sigmoid, verbatim
    return layers.Multiply(name=f"{prefix}squeeze_excite_mul")([inputs, x])


def _activation(x: Any, activation: str | None, hswish_impl: str, name: str | None = None) -> Any:
    from keras import layers

    if activation is None:
        return x
    if activation == RELU:
        return layers.ReLU(name=name)(x)
    if activation == RELU6:
        return layers.ReLU(6.0, name=name)(x)
    if activation == SWISH:
        return layers.Activation("swish")(x)
    if activation == HSWISH:
        if hswish_impl == "fused":
            return layers.Activation("hard_swish")(x)
        if hswish_impl == "naive":
            # Same function, but the 1/6 multiplies x first: the converter's HARD_SWISH
            # patterns need it applied to relu6(x + 3), so this stays ADD, MUL, MUL.
            return layers.Multiply()([x * (1.0 / 6.0), layers.ReLU(6.0)(x + 3.0)])
    raise ValueError(f"no Keras layer for activation {activation!r} (h-swish impl {hswish_impl!r})")
