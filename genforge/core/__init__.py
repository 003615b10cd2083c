"""The core every modality builds on: errors, atomic io, config, the registry (models and
modalities), run directories, the Generator base, the one Trainer and shared metric helpers.

Nothing here imports a modality (images, tables, text) or the app; the import contracts in
``pyproject.toml`` enforce it.
"""
