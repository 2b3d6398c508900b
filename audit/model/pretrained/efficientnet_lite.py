"""EfficientNet-Lite as a Keras 3 model, built from a PyTorch state dict (numpy arrays).

EfficientNet-Lite (Google, 2020) is EfficientNet made for mobile accelerators: ReLU6 instead of
swish, no squeeze-and-excitation, and the stem (32 channels) and head (1280) fixed in every size.
The state dicts here were converted from Google's TensorFlow checkpoints, so the convolutions
use TensorFlow's SAME padding (a stride-2 convolution puts its extra row and column at the
bottom and right), which Keras' `padding="same"` reproduces. BatchNorm epsilon is 1e-3.

The blocks are read from the state dict (kernel sizes, channels, whether a block expands), so
one builder serves every Lite size; strides follow the stage, as in EfficientNet-B0.

Layer names follow keras.applications' EfficientNet (`block2a_expand_relu6`, `block2a_dw_relu6`,
`top_relu6`...),
so the concept layer `auto` lands on `top_relu6` (the last feature map) and the layer gallery
can pick the ReLU6 outputs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

BN_EPSILON = 1e-3
STAGE_STRIDES = (1, 2, 2, 2, 1, 2, 1)  # the first block of each of EfficientNet's 7 stages
RGB_OFFSET, RGB_SCALE = 127.0, 128.0    # the original preprocessing: (x - 127) / 128 on 0..255 RGB


@dataclass(frozen=True)
class BlockSpec:
    index: int        # position in the state dict (`_blocks.<index>`)
    name: str         # Keras prefix, e.g. "block2a_"
    in_channels: int
    expands: bool     # has a 1x1 expansion convolution (all but the first block)
    expanded: int     # channels the depthwise convolution sees
    out_channels: int
    kernel: int
    stride: int

    @property
    def residual(self) -> bool:
        return self.stride == 1 and self.in_channels == self.out_channels


def block_specs(state: dict[str, np.ndarray]) -> list[BlockSpec]:
    """The inverted-residual blocks, as the state dict describes them. A new stage starts where
    the channel count changes (true of every EfficientNet size)."""
    count = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"_blocks\.(\d+)\.", k)))
    specs, stage, letter, channels = [], -1, 0, int(state["_conv_stem.weight"].shape[0])
    for i in range(count):
        key = f"_blocks.{i}."
        depthwise = state[key + "_depthwise_conv.weight"]           # (C, 1, k, k)
        project = state[key + "_project_conv.weight"]               # (out, C, 1, 1)
        expanded, kernel, out = int(depthwise.shape[0]), int(depthwise.shape[-1]), int(project.shape[0])
        first_of_stage = i == 0 or channels != out
        stage, letter = (stage + 1, 0) if first_of_stage else (stage, letter + 1)
        if stage >= len(STAGE_STRIDES):
            raise ValueError(f"state dict has more than {len(STAGE_STRIDES)} stages: not an EfficientNet")
        stride = STAGE_STRIDES[stage] if first_of_stage else 1
        specs.append(BlockSpec(i, f"block{stage + 1}{chr(ord('a') + letter)}_", channels,
                               key + "_expand_conv.weight" in state, expanded, out, kernel, stride))
        channels = out
    return specs


def _conv(weight: np.ndarray) -> np.ndarray:
    """PyTorch (out, in, kh, kw) -> Keras (kh, kw, in, out)."""
    return weight.transpose(2, 3, 1, 0)


def _depthwise(weight: np.ndarray) -> np.ndarray:
    """PyTorch (channels, 1, kh, kw) -> Keras DepthwiseConv2D (kh, kw, channels, 1)."""
    return weight.transpose(2, 3, 0, 1)


def build_model(state: dict[str, np.ndarray], image_size: int, name: str):
    """A Keras model taking 0..255 RGB images (its first layer does the original preprocessing)
    and returning class probabilities through a separate Softmax layer (logits: `logits`)."""
    import keras
    from keras import layers

    weights: dict[str, list[np.ndarray]] = {}  # layer name -> its weights, set once the graph exists
    used: set[str] = set()

    def take(key: str) -> np.ndarray:
        used.add(key)
        return state[key]

    def conv_bn_relu(x, filters, kernel, stride, prefix, conv_key, bn_key, relu=True, depthwise=False):
        """Convolution, BatchNorm and (unless relu=False) ReLU6, named prefix + conv/bn/relu6."""
        if depthwise:
            x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=prefix + "conv")(x)
            weights[prefix + "conv"] = [_depthwise(take(conv_key))]
        else:
            x = layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=prefix + "conv")(x)
            weights[prefix + "conv"] = [_conv(take(conv_key))]
        x = layers.BatchNormalization(epsilon=BN_EPSILON, name=prefix + "bn")(x)
        weights[prefix + "bn"] = [take(bn_key + s) for s in ("weight", "bias", "running_mean", "running_var")]
        return layers.ReLU(max_value=6.0, name=prefix + "relu6")(x) if relu else x

    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = layers.Rescaling(1.0 / RGB_SCALE, offset=-RGB_OFFSET / RGB_SCALE, name="rescaling")(inputs)
    x = conv_bn_relu(x, int(state["_conv_stem.weight"].shape[0]), 3, 2, "stem_", "_conv_stem.weight", "_bn0.")
    for b in block_specs(state):
        key, block_input = f"_blocks.{b.index}.", x
        if b.expands:
            x = conv_bn_relu(x, b.expanded, 1, 1, b.name + "expand_", key + "_expand_conv.weight", key + "_bn0.")
        x = conv_bn_relu(x, b.expanded, b.kernel, b.stride, b.name + "dw_", key + "_depthwise_conv.weight",
                         key + "_bn1.", depthwise=True)
        x = conv_bn_relu(x, b.out_channels, 1, 1, b.name + "project_", key + "_project_conv.weight", key + "_bn2.",
                         relu=False)
        if b.residual:
            x = layers.Add(name=b.name + "add")([x, block_input])
    x = conv_bn_relu(x, int(state["_conv_head.weight"].shape[0]), 1, 1, "top_", "_conv_head.weight", "_bn1.")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    classes = int(state["_fc.weight"].shape[0])
    logits = layers.Dense(classes, name="logits")(x)
    weights["logits"] = [take("_fc.weight").T, take("_fc.bias")]
    outputs = layers.Softmax(name="probabilities")(logits)
    model = keras.Model(inputs, outputs, name=name)

    left = {k for k in state if not k.endswith("num_batches_tracked")} - used
    if left:
        raise ValueError(f"{len(left)} state dict entries have no place in the model, e.g. {sorted(left)[:3]}")
    for layer_name, values in weights.items():
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.get_weights()]
        if expected != [v.shape for v in values]:
            raise ValueError(f"layer {layer_name}: weights {[v.shape for v in values]} do not fit {expected}")
        layer.set_weights([np.asarray(v, np.float32) for v in values])
    return model
