"""The service's schema comes only from its Alembic migrations, and they build exactly what the models
describe; migrating again changes nothing; a bad database URL is one line."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from genforge.app.serve import db
from genforge.app.serve.models import Base
from genforge.core.errors import ConfigError


def test_migrations_build_what_the_models_describe(tmp_path):
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    db.migrate(url)
    with db.engine(url).connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], diff
    assert db.current_revision(url) == db.head_revision()
    db.migrate(url)  # at the head already: nothing to do
    assert db.current_revision(url) == db.head_revision()


def test_bad_database_urls_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not a database URL"):
        db.engine("not a url")
    with pytest.raises(ConfigError, match="cannot reach database"):
        db.migrate(f"sqlite:///{tmp_path / 'missing' / 'folder' / 'x.db'}")
    assert "secret" not in db.shown("postgresql://user:secret@host/db")
