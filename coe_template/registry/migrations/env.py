"""Alembic environment: runs on the connection the registry hands it."""

from alembic import context

from coe_template.batch import schema as _batch_schema  # noqa: F401  (its tables)
from coe_template.registry.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
