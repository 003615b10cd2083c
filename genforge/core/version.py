"""The package version, importable without loading any modality."""

__version__ = "0.1.0"
