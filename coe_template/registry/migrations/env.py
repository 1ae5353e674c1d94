"""Alembic environment: runs on the connection the registry hands it."""

from alembic import context

from coe_template.batch import schema as _batch_schema  # noqa: F401  (its tables)
from coe_template.ledger import label_schema as _label_schema  # noqa: F401  (its table)
from coe_template.ledger import schema as _ledger_schema  # noqa: F401  (its table)
from coe_template.registry import events as _events  # noqa: F401  (its table)
from coe_template.registry.schema import Base

connection = context.config.attributes["connection"]
if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
    # sqlite3 opens a transaction only before a row is written, so a migration that starts with DDL
    # would commit it at once, and a refused downgrade would leave the schema half way.
    connection.exec_driver_sql("BEGIN")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
