"""YAML config -> validated, typed settings: one module per section, and the reader (load.py).

`from audit.config import Config, load_config, ModelConfig, ...` works for the public names."""

from audit.config.concepts import ConceptConfig, ConceptsConfig
from audit.config.discover import DiscoverConfig
from audit.config.execution import ExecutionConfig
from audit.config.gate import CausalLevel, GateConfig, GateLevel
from audit.config.load import Config, load_config
from audit.config.model import ModelConfig
from audit.config.report import GalleryConfig, ReportConfig
from audit.config.visualize import DreamSettings, TransformSettings, VisualizeConfig

__all__ = ["CausalLevel", "ConceptConfig", "ConceptsConfig", "Config", "DiscoverConfig", "DreamSettings",
           "ExecutionConfig", "GalleryConfig", "GateConfig", "GateLevel", "ModelConfig", "ReportConfig",
           "TransformSettings", "VisualizeConfig", "load_config"]
