"""A small versioned migration runner: each step runs once; all pending steps in one transaction.

The applied versions are rows of ``schema_version``. A step is never edited once released;
a schema change is a new step appended to :data:`MIGRATIONS` (and the matching change in
:mod:`leads.schema`, guarded so that a fresh database built from the new metadata by step 1
skips it: see :func:`_add_column_if_missing`).
"""
from __future__ import annotations

import datetime as dt
import uuid
from typing import Callable

import sqlalchemy as sa

from leads import schema

Step = Callable[[sa.Connection], None]


def _initial(conn: sa.Connection) -> None:
    schema.metadata.create_all(
        conn,
        tables=[schema.calls, schema.leads, schema.transcripts, schema.timeline, schema.outbox],
        checkfirst=True,
    )


def _add_column_if_missing(conn: sa.Connection, table: sa.Table, column: sa.Column) -> None:
    """For later steps: ALTER TABLE ADD COLUMN unless step 1 already created it."""
    existing = {c["name"] for c in sa.inspect(conn).get_columns(table.name)}
    if column.name not in existing:
        ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {ddl}"))


def _turns_to_meeting(conn: sa.Connection) -> None:
    _add_column_if_missing(conn, schema.calls, schema.calls.c.turns_to_meeting)


def _lead_deal(conn: sa.Connection) -> None:
    _add_column_if_missing(conn, schema.leads, schema.leads.c.deal)


def _instances(conn: sa.Connection) -> None:
    _add_column_if_missing(conn, schema.calls, schema.calls.c.owner)
    _add_column_if_missing(conn, schema.outbox, schema.outbox.c.claimed_by)
    schema.metadata.create_all(
        conn, tables=[schema.instances, schema.journal_applied, schema.store_meta], checkfirst=True
    )
    for index in schema.calls.indexes:
        if index.name == "ix_calls_open_owner":
            index.create(conn, checkfirst=True)
    have = conn.execute(
        sa.select(schema.store_meta.c.value).where(schema.store_meta.c.key == "database_id")
    ).first()
    if have is None:
        conn.execute(schema.store_meta.insert().values(key="database_id", value=uuid.uuid4().hex))


def _inflow(conn: sa.Connection) -> None:
    _add_column_if_missing(conn, schema.leads, schema.leads.c.source)
    _add_column_if_missing(conn, schema.leads, schema.leads.c.notes)
    schema.metadata.create_all(
        conn, tables=[schema.lead_intake, schema.dial_jobs, schema.do_not_call], checkfirst=True
    )


def _whatsapp(conn: sa.Connection) -> None:
    _add_column_if_missing(conn, schema.leads, schema.leads.c.needs_person)
    _add_column_if_missing(conn, schema.leads, schema.leads.c.needs_person_at)
    _add_column_if_missing(conn, schema.outbox, schema.outbox.c.sent_as)
    schema.metadata.create_all(conn, tables=[schema.whatsapp_messages, schema.whatsapp_threads], checkfirst=True)


def _meetings(conn: sa.Connection) -> None:
    schema.metadata.create_all(conn, tables=[schema.meetings], checkfirst=True)


MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "calls, leads, transcripts, timeline, outbox", _initial),
    (2, "calls.turns_to_meeting", _turns_to_meeting),
    (3, "leads.deal", _lead_deal),
    (4, "instances (leases), calls.owner, outbox.claimed_by, journal_applied, store_meta", _instances),
    (5, "leads.source/notes, lead_intake, dial_jobs, do_not_call", _inflow),
    (6, "two-way WhatsApp: whatsapp_messages, whatsapp_threads, leads.needs_person(_at), outbox.sent_as", _whatsapp),
    (7, "meetings (the realtor's calendar events)", _meetings),
]


def applied_versions(engine: sa.Engine) -> set[int]:
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(schema.schema_version.name):
            return set()
        return set(conn.execute(sa.select(schema.schema_version.c.version)).scalars())


def migrate(engine: sa.Engine) -> list[int]:
    """Apply the missing steps in order; returns the versions applied now."""
    done: list[int] = []
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two servers starting at once on one database: the second waits, then finds it done.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(741001)"))
        schema.schema_version.create(conn, checkfirst=True)
        have = set(conn.execute(sa.select(schema.schema_version.c.version)).scalars())
        for version, _description, step in MIGRATIONS:
            if version in have:
                continue
            step(conn)
            conn.execute(
                schema.schema_version.insert().values(
                    version=version, applied_at=dt.datetime.now(dt.timezone.utc)
                )
            )
            done.append(version)
    return done
