"""Batch-norm recalibration: random weights with activations of realistic range.

A network with Keras's default initializers and untouched batch-norm statistics (mean 0,
variance 1) shrinks its activations layer by layer: MobileNetV3-Large's logits end near
1e-10. int8 cannot represent that, so the quantized model would be calibrated on noise and
its latency could reflect degenerate scales (for example, a delegate refusing ops whose
scales are out of its range) rather than the architecture.

The principled fix without trained weights is data-dependent initialisation: set every
batch-norm layer's moving statistics to the statistics of its own input on the
representative set, so each normalises its input to zero mean and unit variance as in a
trained network. One forward pass in training mode does that for every layer at once:
in training mode each batch-norm normalises with the batch's statistics (so the next
layer sees exactly what it will see at inference), and with momentum 0 the moving
statistics become those batch statistics.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batch_norm_layers(model: Any) -> list[Any]:
    return [layer for layer in model.layers if type(layer).__name__ == "BatchNormalization"]


def recalibrate_batch_norm(model: Any, images: np.ndarray) -> int:
    """Set every BatchNormalization's moving mean and variance from `images` (N, H, W, 3).

    Returns the number of layers recalibrated. Trainable weights are untouched, so a
    variant pair that differs only in how an activation is spelled (fused and naive
    h-swish) still computes the same function.
    """
    layers = batch_norm_layers(model)
    saved = [layer.momentum for layer in layers]
    try:
        for layer in layers:
            layer.momentum = 0.0
        model(images, training=True)
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum
    return len(layers)
