"""Where the service keeps its state and the limits it applies, from flags or environment variables.

``home`` holds everything on disk (runs/, uploads/, tmp/, logs/, and by default the SQLite database
``serve.db`` and the huey queue ``queue.db``). Several machines share one service by pointing every
server and worker at the same ``--db`` (PostgreSQL) and ``--queue`` (Redis) and the same ``home`` on a
shared file system (the run directories must be readable where the API samples from them).
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, Field

from genforge.core.errors import ConfigError

ENV_HOME, ENV_DB, ENV_QUEUE = "GENFORGE_SERVE_HOME", "GENFORGE_DB", "GENFORGE_QUEUE"
DEFAULT_HOME = "genforge-serve"


class Limits(BaseModel):
    """Per-token limits; a token may carry its own values, else these defaults apply."""

    max_jobs: int = Field(2, ge=1, description="jobs queued or running at once")
    max_samples: int = Field(10_000, ge=1, description="samples in one generate request")
    max_upload_mb: float = Field(200.0, gt=0, description="size of one uploaded dataset, in MiB")
    rpm: int = Field(600, ge=1, description="requests per minute")


class Settings(BaseModel):
    home: Path = Path(DEFAULT_HOME)
    db: str | None = None              # SQLAlchemy URL; default sqlite:///HOME/serve.db
    queue: str | None = None           # redis://host:port/db, or a SQLite file; default HOME/queue.db
    limits: Limits = Field(default_factory=Limits)
    threads: int = Field(1, ge=1, description="torch threads per job and for sampling in the server")
    job_hours: float = Field(12.0, gt=0, description="default wall-clock limit of one job")
    stale_after: float = Field(30.0, gt=0, description="seconds without a heartbeat before a job counts as interrupted")
    zip_max_files: int = 50_000
    zip_max_ratio: float = 200.0       # unpacked / packed bytes of one upload
    zip_max_unpacked_mb: float = 2048.0

    @property
    def db_url(self) -> str:
        return self.db or f"sqlite:///{(self.home / 'serve.db').resolve()}"

    @property
    def queue_url(self) -> str:
        return self.queue or str((self.home / "queue.db").resolve())

    @property
    def runs_dir(self) -> Path:
        return self.home / "runs"

    @property
    def uploads_dir(self) -> Path:
        return self.home / "uploads"

    @property
    def tmp_dir(self) -> Path:
        return self.home / "tmp"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    def env(self) -> dict[str, str]:
        """The environment variables that give a child process (worker, job) these settings."""
        return {ENV_HOME: str(self.home), ENV_DB: self.db_url, ENV_QUEUE: self.queue_url,
                "GENFORGE_SERVE_SETTINGS": self.model_dump_json()}


def load_settings(home: str | Path | None = None, db: str | None = None, queue: str | None = None,
                  **extra) -> Settings:
    """Settings from the arguments, else ``$GENFORGE_SERVE_SETTINGS`` / ``$GENFORGE_SERVE_HOME`` /
    ``$GENFORGE_DB`` / ``$GENFORGE_QUEUE``, else the defaults; the home folders are created."""
    base = {}
    if os.environ.get("GENFORGE_SERVE_SETTINGS"):
        base = Settings.model_validate_json(os.environ["GENFORGE_SERVE_SETTINGS"]).model_dump()
    given = {"home": home or os.environ.get(ENV_HOME), "db": db or os.environ.get(ENV_DB),
             "queue": queue or os.environ.get(ENV_QUEUE), **extra}
    base.update({k: v for k, v in given.items() if v is not None})
    settings = Settings.model_validate(base)
    settings.home = settings.home.resolve()
    if settings.queue and not settings.queue.startswith(("redis://", "rediss://", "unix://")) and "://" in settings.queue:
        raise ConfigError(f"--queue '{settings.queue}' is neither a redis:// URL nor a file for the embedded "
                          f"SQLite queue; give e.g. redis://host:6379/0")
    from genforge.core.io import ensure_dir

    for folder in (settings.home, settings.runs_dir, settings.uploads_dir, settings.tmp_dir, settings.logs_dir):
        ensure_dir(folder)
    return settings
