"""Alembic migrations: env.py and versions/; they use only outbox_contract."""
