"""The application layer: workflows (the jobs as plain functions) and the typer CLI.

It reaches a modality only through :mod:`genforge.core.registry`.
"""
