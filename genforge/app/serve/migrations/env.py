"""Alembic environment: migrations run on the connection genforge hands over (``db.migrate``), or on
``sqlalchemy.url`` when run by the ``alembic`` command."""

from alembic import context
from sqlalchemy import create_engine

from genforge.app.serve.models import Base

target_metadata = Base.metadata
config = context.config


def run() -> None:
    conn = config.attributes.get("connection")
    if conn is not None:
        context.configure(connection=conn, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        return
    with create_engine(config.get_main_option("sqlalchemy.url")).connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()


run()
