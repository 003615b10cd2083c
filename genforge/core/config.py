"""The one config system: pydantic models that validate values and explain bad ones.

Model families declare their hyper-parameters as a subclass of :class:`ModelConfig`;
training budgets and logging cadence live in :class:`TrainConfig`. Both are written to
a run directory's ``config.yaml`` exactly as resolved, so a run can be re-created.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from genforge.core.errors import ConfigError

C = TypeVar("C", bound=BaseModel)


class ModelConfig(BaseModel):
    """Base of every model family's hyper-parameters (unknown keys are rejected)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


MAX_SEED = 2**63 - 1  # what torch's and numpy's generators take


def check_seed(seed, what: str = "--seed") -> None:
    """Refuse a seed the random generators cannot take (one line, before any work)."""
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"{what} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")


class TrainConfig(BaseModel):
    """Budgets and cadence of one training run.

    ``steps`` and ``minutes`` are totals for the run (a resumed run counts what it
    already did); training stops at whichever comes first. With neither, 1000 steps.
    """

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    steps: int | None = Field(None, gt=0, description="stop after this many optimisation steps")
    minutes: float | None = Field(None, gt=0, description="stop after this much wall-clock time")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="seed for weights, noise and data order")
    log_every: int = Field(50, gt=0, description="append losses to metrics.jsonl every N steps")
    sample_every: int = Field(500, gt=0, description="write a sample grid every N steps")
    checkpoint_every: int = Field(1000, gt=0, description="write a checkpoint every N steps")
    threads: int | None = Field(None, gt=0, description="torch CPU threads (default: all cores)")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N or mps (auto picks a GPU when there is one)")
    precision: str = Field("fp32", description="fp32, or bf16 (autocast; weights and checkpoints stay fp32)")
    progress: bool = Field(True, description="show a progress bar")
    dp: dict[str, Any] | None = Field(None, description="differential privacy: the budget (epsilon, delta, clip, "
                                      "accountant) and, once planned, the noise chosen for it (core.train.private)")

    @model_validator(mode="after")
    def _default_budget(self) -> "TrainConfig":
        if self.steps is None and self.minutes is None:
            object.__setattr__(self, "steps", 1000)
        return self


def _explain(err: ValidationError, what: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or what
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown option '{loc}'")
        else:
            parts.append(f"invalid value for '{loc}': {e['msg'].lower()} (got {e.get('input')!r})")
    return f"{what}: " + "; ".join(parts)


def validate(cls: type[C], params: dict[str, Any], what: str | None = None) -> C:
    """Build ``cls(**params)``, turning a pydantic error into a one-line :class:`ConfigError`."""
    try:
        return cls(**params)
    except ValidationError as err:
        fields = ", ".join(cls.model_fields)
        raise ConfigError(_explain(err, what or cls.__name__) + f"; valid options: {fields}") from None


def parse_assignments(items: list[str] | None) -> dict[str, Any]:
    """Parse CLI ``key=value`` strings; values are read as YAML scalars (``1e-4``, ``true``, ``[1, 28, 28]``)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}' (e.g. --set lr=1e-4)")
        key, value = item.split("=", 1)
        key = key.strip().replace("-", "_")
        try:
            out[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            out[key] = value
    return out
