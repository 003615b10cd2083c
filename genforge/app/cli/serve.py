"""``genforge serve``, ``genforge worker`` and ``genforge token``: the HTTP service, its workers and its tokens.

The service's modules (genforge.app.serve) import its extra's libraries, so each command imports them when
it runs; without ``genforge[serve]`` installed the commands say so in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.table import Table

from genforge.app.cli.common import app, err, out
from genforge.core.errors import ConfigError

HOME_HELP = "the service's folder: runs, uploads, logs, and by default its SQLite database and queue ($GENFORGE_SERVE_HOME)"
DB_HELP = "database URL: sqlite:///FILE (default HOME/serve.db) or postgresql://user:pass@host/db ($GENFORGE_DB)"
QUEUE_HELP = "job queue: redis://host:6379/0 for several machines (default: a SQLite file in HOME; $GENFORGE_QUEUE)"


def _serve_settings(home, db, queue, **extra):
    try:
        from genforge.app.serve.settings import load_settings
    except ImportError as e:  # pragma: no cover - the extra is not installed
        raise ConfigError(f"the service needs the serve extra ({e.name} is missing); pip install 'genforge[serve]'") from None
    return load_settings(home, db, queue, **{k: v for k, v in extra.items() if v is not None})


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="address to listen on (0.0.0.0: every interface)"),
    port: int = typer.Option(8000, help="port to listen on"),
    home: Optional[Path] = typer.Option(None, help=HOME_HELP),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    queue: Optional[str] = typer.Option(None, help=QUEUE_HELP),
    workers: int = typer.Option(1, help="job workers started beside the server (0: run 'genforge worker' elsewhere)"),
    threads: Optional[int] = typer.Option(None, help="torch threads per job and for sampling (default 1)"),
):
    """Serve the web UI (/), the API (/v1, OpenAPI at /docs) and /metrics; jobs run in worker processes."""
    settings = _serve_settings(home, db, queue, threads=threads)
    from genforge.app.serve import server

    token = server.prepare(settings)
    if token is not None:
        out.print(f"[bold]admin token[/] (shown once; keep it): {token}", highlight=False, soft_wrap=True)
        out.print("  make tokens for others with: genforge token create --name NAME --role user")
    out.print(f"genforge serve: http://{host}:{port}/  (API /v1, OpenAPI /docs; state in {settings.home})",
              highlight=False)
    server.run(settings, host, port, workers=workers)


@app.command()
def worker(
    home: Optional[Path] = typer.Option(None, help=HOME_HELP),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
    queue: Optional[str] = typer.Option(None, help=QUEUE_HELP),
    jobs: int = typer.Option(1, help="jobs this worker runs at once"),
    threads: Optional[int] = typer.Option(None, help="torch threads per job (default 1)"),
):
    """Run the service's jobs (training, evaluation) from its queue; start one per machine that trains."""
    settings = _serve_settings(home, db, queue, threads=threads)
    from genforge.app.serve.worker import run_worker

    run_worker(settings, jobs=jobs)


token_app = typer.Typer(help="API tokens of the service: create (shown once), list, revoke.", no_args_is_help=True)
app.add_typer(token_app, name="token")


@token_app.command("create")
def token_create(
    name: str = typer.Option(..., help="who holds it (shown in the audit log)"),
    role: str = typer.Option("user", help="user (sees only their own datasets and runs) or admin"),
    max_jobs: Optional[int] = typer.Option(None, help="jobs queued or running at once"),
    max_samples: Optional[int] = typer.Option(None, help="samples in one request"),
    max_upload_mb: Optional[float] = typer.Option(None, help="size of one upload, in MiB"),
    rpm: Optional[int] = typer.Option(None, help="requests per minute"),
    home: Optional[Path] = typer.Option(None, help=HOME_HELP),
    db: Optional[str] = typer.Option(None, help=DB_HELP),
):
    """Create a token and print it once (the service stores only its hash)."""
    from pydantic import ValidationError

    settings = _serve_settings(home, db, None)
    from genforge.app.serve import db as database
    from genforge.app.serve.auth import create_token

    limits = {k: v for k, v in (("max_jobs", max_jobs), ("max_samples", max_samples), ("max_upload_mb", max_upload_mb),
                                ("rpm", rpm)) if v is not None}
    database.migrate(settings.db_url)
    try:
        with database.session(settings.db_url) as s:
            token, row = create_token(s, name, role, limits)
    except ValidationError as e:
        raise ConfigError(f"invalid limit: {e.errors()[0]['loc'][0]} {e.errors()[0]['msg'].lower()}") from None
    print(token)
    err.print(f"token {row.id} for '{name}' ({role}); shown once, keep it", highlight=False)


@token_app.command("list")
def token_list(home: Optional[Path] = typer.Option(None, help=HOME_HELP),
               db: Optional[str] = typer.Option(None, help=DB_HELP)):
    """List tokens (never the tokens themselves)."""
    settings = _serve_settings(home, db, None)
    from sqlalchemy import select

    from genforge.app.serve import db as database
    from genforge.app.serve.models import Token

    database.migrate(settings.db_url)
    table = Table("id", "name", "role", "starts with", "created", "revoked")
    with database.session(settings.db_url) as s:
        for r in s.scalars(select(Token).order_by(Token.id)):
            table.add_row(str(r.id), r.name, r.role, r.prefix + "...", f"{r.created_at:%Y-%m-%d %H:%M}",
                          f"{r.revoked_at:%Y-%m-%d %H:%M}" if r.revoked_at else "")
    out.print(table)


@token_app.command("revoke")
def token_revoke(token_id: int = typer.Argument(..., help="the token's id (see 'genforge token list')"),
                 home: Optional[Path] = typer.Option(None, help=HOME_HELP),
                 db: Optional[str] = typer.Option(None, help=DB_HELP)):
    """Revoke a token: requests with it answer 401 from now on."""
    settings = _serve_settings(home, db, None)
    from genforge.app.serve import db as database
    from genforge.app.serve.models import Token, now

    database.migrate(settings.db_url)
    with database.session(settings.db_url) as s:
        row = s.get(Token, token_id)
        if row is None:
            raise ConfigError(f"no token {token_id}; see 'genforge token list'")
        row.revoked_at = row.revoked_at or now()
    out.print(f"revoked token {token_id} ('{row.name}')")
