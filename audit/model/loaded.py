"""The model stage's value: a classifier ready for gradient ascent (`LoadedModel`), and how many
images of it fit one call within a memory budget. Built by load.py, read by every later stage."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable


@dataclass
class LoadedModel:
    """A classifier ready for gradient ascent: pixels in [0, 1] -> (features, logits)."""

    name: str
    path: Path
    sha256: str
    input_shape: tuple[int, int, int]   # H, W, C
    classes: tuple[str, ...]
    logits_source: str                  # how the logits were obtained (shown in the report)
    feature_layer: str
    forward: Callable                   # tf: pixels01 (N,H,W,C) -> (features (N,D...), logits (N,K))
    keras_model: object | None          # the Keras network whose layers are read: the loaded model, or the
                                        # trained network nested in it (None for a bare SavedModel)
    activation_bytes_per_image: int     # rough forward+backward memory, for chunking
    to_model_space: Callable            # tf: pixels in [0, 1] -> `keras_model`'s input values
    input_range: tuple[float, float] | None = None  # as declared or read from the model (None: preprocessing)
    binary_head: bool = False           # one output unit z, audited as two classes with logits (-z/2, +z/2)
    # `forward` compiled into one graph, for stages that need no gradient (None: use `forward`)
    infer: Callable | None = field(default=None, repr=False)
    # where the scores are in `keras_model` (model/head.py; None for a bare SavedModel)
    head: object | None = field(default=None, repr=False)
    # tf: the file's own input values -> `keras_model`'s input (the wrapper's layers; None: not nested)
    enter: Callable | None = field(default=None, repr=False)

    def predict(self, pixels):
        """(features, logits) for a batch, without gradients: the compiled graph frees each layer's
        output as soon as the next layer has read it, where an eager call keeps every one of them
        (EfficientNet-Lite0: about 9 vs 80 MiB per image)."""
        return (self.infer or self.forward)(pixels)

    def predict_model_input(self, values, batch_size: int = 32):
        """Class scores of values in the model file's own input range, `batch_size` per call
        (the pixel-range check tries the other standard ranges with it). A Keras model only."""
        km = self.keras_model
        if self.enter is None:
            return km.predict(values, batch_size=batch_size, verbose=0)
        import numpy as np

        return np.concatenate([km.predict(self.enter(values[i:i + batch_size]), verbose=0)
                               for i in range(0, len(values), batch_size)])


# Forward-only stages (concept embedding, causal pastes) used this many images per call before
# their batches were sized from the memory budget: a larger batch is no faster on a CPU.
MAX_FORWARD_BATCH = 64


def forward_batch_size(model: LoadedModel, budget_mb: int) -> int:
    """Images per forward-only call that fit `budget_mb`. `activation_bytes_per_image` counts each
    layer's output three times (values and gradients, for gradient ascent); a forward pass holds
    each at most once, even uncompiled (measured on EfficientNet-Lite0: 80 MiB per image, this
    estimate 77), so a third of it bounds one image."""
    per_image = max(1, model.activation_bytes_per_image // 3)
    return int(max(1, min(MAX_FORWARD_BATCH, budget_mb * 2**20 // per_image)))


def gradient_batch_size(model: LoadedModel, budget_mb: int) -> int:
    """Images per forward-and-backward call that fit `budget_mb` (visualization, DeepDream tiles)."""
    return int(max(1, budget_mb * 2**20 // max(model.activation_bytes_per_image, 1)))
