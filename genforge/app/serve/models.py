"""The service's tables. The run directories stay the source of truth for models; these rows index
them (who owns a run, which job trains it, its evaluations) and record who did what (audit).

The schema is created and changed only by the Alembic migrations in ``migrations/``; a change here
needs a new migration there (``tests/test_serve_db.py`` checks that the two agree).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ACTIVE = ("queued", "running", "interrupted", "cancelling")   # a job that still holds a slot
FINISHED = ("finished", "failed", "cancelled", "timed_out")   # a job that will not run again by itself


def now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def new_id() -> str:
    return uuid.uuid4().hex[:16]


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(10))                # admin | user
    hash: Mapped[str] = mapped_column(String(64), unique=True)   # sha256 of the token; the token is never stored
    prefix: Mapped[str] = mapped_column(String(12))              # its first characters, to tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    limits: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # overrides of Settings.limits


class Dataset(Base):
    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))               # as the user named it (shown, never a path)
    version: Mapped[int] = mapped_column(Integer, default=1)     # uploads of one name count up
    kind: Mapped[str] = mapped_column(String(20))                # the modality that read it
    filename: Mapped[str] = mapped_column(String(120))           # the safe name on disk
    path: Mapped[str] = mapped_column(Text)                      # server path (never shown to clients)
    size_bytes: Mapped[int] = mapped_column(Integer, default=0)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # loader options it was read with
    summary: Mapped[str] = mapped_column(Text, default="")       # what the reader said it holds
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Run(Base):
    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    model: Mapped[str] = mapped_column(String(50))
    kind: Mapped[str] = mapped_column(String(20))
    dataset_id: Mapped[str | None] = mapped_column(ForeignKey("datasets.id"), nullable=True)
    data: Mapped[str] = mapped_column(String(200))               # the dataset's name, or the built-in data's
    path: Mapped[str] = mapped_column(Text)                      # the run directory (never shown to clients)
    status: Mapped[str] = mapped_column(String(20), default="new")
    step: Mapped[int] = mapped_column(Integer, default=0)
    losses: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # the training request, for retraining
    parent_id: Mapped[str | None] = mapped_column(String(16), nullable=True)  # the run this one retrains
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_id)
    owner_id: Mapped[int] = mapped_column(ForeignKey("tokens.id"), index=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))                # train | resume | evaluate
    state: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    time_limit_s: Mapped[float] = mapped_column(Float)
    attempts: Mapped[int] = mapped_column(Integer, default=0)    # starts, counting resumes after a lost worker
    worker: Mapped[str | None] = mapped_column(String(100), nullable=True)
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    step: Mapped[int] = mapped_column(Integer, default=0)
    total_steps: Mapped[int | None] = mapped_column(Integer, nullable=True)
    steps_per_second: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    losses: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    history: Mapped[list[Any]] = mapped_column(JSON, default=list)  # [[time, state], ...]
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)


class Evaluation(Base):
    __tablename__ = "evaluations"
    id: Mapped[str] = mapped_column(String(16), primary_key=True, default=new_id)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), index=True)
    job_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # name -> {value, reference, better}
    title: Mapped[str] = mapped_column(String(300), default="")
    folder: Mapped[str] = mapped_column(Text)                    # where metrics.json and report.html are
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Worker(Base):
    __tablename__ = "workers"
    id: Mapped[str] = mapped_column(String(100), primary_key=True)  # host:pid
    started_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)
    seen_at: Mapped[dt.datetime] = mapped_column(DateTime, default=now)


class Audit(Base):
    __tablename__ = "audit"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=now, index=True)
    token_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    actor: Mapped[str] = mapped_column(String(100), default="")
    action: Mapped[str] = mapped_column(String(50))
    target: Mapped[str] = mapped_column(String(100), default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    request_id: Mapped[str] = mapped_column(String(40), default="")
