"""audit: find spurious concepts in Keras image classifiers before release."""

__version__ = "0.1.0"
