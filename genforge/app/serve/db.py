"""The database: an engine per URL (SQLite file by default, PostgreSQL by URL), sessions, and the
schema brought to the newest Alembic migration at start-up (``genforge serve --db URL`` migrates)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from genforge.core.errors import ConfigError

MIGRATIONS = Path(__file__).parent / "migrations"


def shown(url: str) -> str:
    """The URL as it may be shown (password hidden)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unreadable URL>"


_ENGINES: dict[str, Engine] = {}


def forget_engines() -> None:
    """In a forked child: drop the parent's engines without closing its connections (they stay the parent's)."""
    for eng in _ENGINES.values():
        eng.dispose(close=False)
    _ENGINES.clear()


def engine(url: str) -> Engine:
    """One engine per URL and process; SQLite files use WAL and wait for locks (server, workers and
    jobs write the same file)."""
    if url in _ENGINES:
        return _ENGINES[url]
    try:
        kind = make_url(url).get_backend_name()
    except ArgumentError:
        raise ConfigError(f"--db '{url}' is not a database URL; give e.g. sqlite:///serve.db or "
                          f"postgresql://user:pass@host/db") from None
    args = {"connect_args": {"timeout": 30, "check_same_thread": False}} if kind == "sqlite" else {"pool_pre_ping": True}
    try:
        eng = create_engine(url, **args)
    except (ArgumentError, ImportError, SQLAlchemyError) as err:
        raise ConfigError(f"cannot use database {shown(url)} ({str(err).splitlines()[0]}); install its driver "
                          f"(e.g. pip install psycopg) or check the URL") from None
    if kind == "sqlite":
        @event.listens_for(eng, "connect")
        def _pragmas(conn, _record):
            cur = conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()
    _ENGINES[url] = eng
    return eng


def sessions(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine(url), expire_on_commit=False)


@contextlib.contextmanager
def session(url: str) -> Iterator[Session]:
    """A session that commits when the block ends without error."""
    with sessions(url)() as s:
        try:
            yield s
            s.commit()
        except BaseException:
            s.rollback()
            raise


def alembic_config(url: str):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def migrate(url: str) -> None:
    """Bring the schema to the newest migration (creating it on an empty database)."""
    from alembic import command

    try:
        with engine(url).begin() as conn:
            cfg = alembic_config(url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
    except OperationalError as err:
        raise ConfigError(f"cannot reach database {shown(url)} ({' '.join(str(err.orig).split())[:200]}); check "
                          f"--db and that the server is running") from None


def current_revision(url: str) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine(url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


def ping(url: str) -> None:
    with engine(url).connect() as conn:
        conn.execute(text("SELECT 1"))
