"""The API's request and response bodies (they are the OpenAPI schema at /docs).

Model options, loader options and sampling controls are open dictionaries: which keys apply comes from
the registry (``GET /v1/models``: each family's option schema and its modality's ``data_options`` and
``sample_options``), so a new family or modality needs no change here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from genforge.core.config import MAX_SEED

Scalar = Union[str, int, float, bool, None]
OptionValue = Union[Scalar, list[Union[str, int, float]], dict[str, Union[str, int, float, bool]]]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TrainRequest(Strict):
    model: str = Field(..., max_length=50, description="a family from GET /v1/models")
    dataset_id: str | None = Field(None, max_length=16, description="an uploaded dataset; none: the model's built-in demo data")
    options: dict[str, OptionValue] = Field(default_factory=dict, description="the family's hyper-parameters")
    data_options: dict[str, Scalar] = Field(default_factory=dict, description="loader options of the modality")
    steps: int | None = Field(None, gt=0, le=10_000_000)
    minutes: float | None = Field(None, gt=0, le=100_000)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    checkpoint_every: int | None = Field(None, gt=0, le=10_000_000)
    sample_every: int | None = Field(None, gt=0, le=10_000_000)
    time_limit_minutes: float | None = Field(None, gt=0, le=100_000, description="wall-clock limit of the job")
    evaluate: bool = Field(False, description="evaluate the run when training ends")


class RetrainRequest(Strict):
    dataset_id: str | None = Field(None, max_length=16, description="the new data (default: the newest version of "
                                                                    "the run's dataset)")
    steps: int | None = Field(None, gt=0, le=10_000_000)
    minutes: float | None = Field(None, gt=0, le=100_000)


class ResumeRequest(Strict):
    steps: int | None = Field(None, gt=0, le=10_000_000, description="new total steps")
    minutes: float | None = Field(None, gt=0, le=100_000)


class EvaluateRequest(Strict):
    n: int | None = Field(None, ge=2, le=1_000_000, description="samples to generate (default: the modality's)")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    target: str | None = Field(None, max_length=200, description="tables: the column a downstream model predicts")
    real_dataset_id: str | None = Field(None, max_length=16, description="real holdout data to compare with")


class SampleRequest(Strict):
    n: int | None = Field(None, ge=1, le=10_000_000, description="samples (default: the modality's)")
    format: str = Field(..., pattern=r"^[a-z0-9]{1,10}$", description="one of the run's formats (GET /v1/runs/{id})")
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    options: dict[str, OptionValue] = Field(default_factory=dict, description="sampling controls of the modality")


class StreamRequest(Strict):
    seed: int | None = Field(None, ge=0, le=MAX_SEED)
    options: dict[str, OptionValue] = Field(default_factory=dict)


class TokenRequest(Strict):
    name: str = Field(..., min_length=1, max_length=100)
    role: str = Field("user", pattern="^(admin|user)$")
    limits: dict[str, float] = Field(default_factory=dict)


class ErrorBody(BaseModel):
    type: str
    message: str


class Error(BaseModel):
    error: ErrorBody


class DatasetOut(BaseModel):
    id: str
    name: str
    version: int
    kind: str
    size_bytes: int
    options: dict[str, Any]
    summary: str
    created_at: dt.datetime


class JobOut(BaseModel):
    id: str
    run_id: str
    kind: str
    state: str
    step: int
    total_steps: int | None
    steps_per_second: float | None
    eta_s: float | None
    losses: dict[str, Any]
    error: str | None
    attempts: int
    cancel_requested: bool
    time_limit_s: float
    history: list[Any]
    result: dict[str, Any]
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None


class EvaluationOut(BaseModel):
    id: str
    run_id: str
    title: str
    metrics: dict[str, Any]
    created_at: dt.datetime


class RunOut(BaseModel):
    id: str
    model: str
    kind: str
    data: str
    dataset_id: str | None
    status: str
    step: int
    losses: dict[str, Any]
    parent_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    job: JobOut | None = None
    formats: list[str] = []
    sample_options: list[str] = []
    choices: dict[str, Any] = {}
    evaluations: list[EvaluationOut] = []
    comparison: dict[str, Any] | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    limits: dict[str, Any]
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    token: str | None = Field(None, description="the token itself: shown once, when it is created")
