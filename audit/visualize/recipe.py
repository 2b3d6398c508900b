"""The `visualize:` config -> what the loop needs: a parameterization, transforms, penalties."""

from __future__ import annotations

from dataclasses import dataclass

from audit.config.visualize import TransformSettings, VisualizeConfig
from audit.visualize import transforms as tr
from audit.visualize.param import Parameterization, make
from audit.visualize.penalties import Penalties


@dataclass(frozen=True)
class Recipe:
    param: Parameterization
    transforms: tr.Transforms
    penalties: Penalties

    @property
    def is_raw(self) -> bool:
        return self.param.name == "pixels" and not self.transforms.steps and not self.penalties.total_variation

    def describe(self) -> dict:
        """Plain data for audit.json (the penalty weights are in its `regularization`)."""
        return {"parameterization": self.param.name, "transforms": self.transforms.names}


def from_config(cfg: VisualizeConfig, image_shape: tuple[int, int, int]) -> Recipe:
    spec = cfg.transforms
    if isinstance(spec, TransformSettings):
        settings = {"jitter": spec.jitter, "scale": spec.scale, "rotate": spec.rotate}
    else:
        settings = tr.preset(spec, min(image_shape[:2]))
    if cfg.jitter:  # the older `jitter` key sets the jitter of whatever transforms are chosen
        settings = {**settings, "jitter": cfg.jitter}
    return Recipe(make(cfg.parameterization, image_shape), tr.build(settings), Penalties(cfg.total_variation))


def raw(image_shape: tuple[int, int, int]) -> Recipe:
    """The seed's unregularized mode: pixels, no transforms, no penalty."""
    return Recipe(make("pixels", image_shape), tr.Transforms(()), Penalties(0.0))
