"""The store's tables (SQLAlchemy Core), portable between SQLite and PostgreSQL.

Times are stored as aware UTC datetimes; SQLite hands them back naive, so readers go
through :func:`utc` before using them.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata,
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

calls = sa.Table(
    "calls", metadata,
    sa.Column("call_sid", sa.String(64), primary_key=True),
    sa.Column("stream_sid", sa.String(64), nullable=False, server_default=""),
    sa.Column("from_number", sa.String(64), nullable=False, server_default=""),
    sa.Column("to_number", sa.String(64), nullable=False, server_default=""),
    sa.Column("phone", sa.String(64)),  # the lead this call belongs to, once known
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("duration_s", sa.Float),
    sa.Column("close_reason", sa.String(64)),
    sa.Column("outcome", sa.String(64)),
    sa.Column("turns", sa.Integer, nullable=False, server_default="0"),
    # caller turns when the lead first became meeting_booked (migration 2)
    sa.Column("turns_to_meeting", sa.Integer),
    sa.Column("metrics", sa.JSON),  # leads.base.CallMetrics as a dict, written at the end
    # The latest WhatsApp summary the session handed us mid-call: what a crash recovery sends.
    sa.Column("pending_summary", sa.Text),
    # The server instance (instances.id) running the call (migration 3): a crash recovery
    # closes only calls whose owner's lease is gone. NULL: written before migration 3.
    sa.Column("owner", sa.String(64)),
)
sa.Index("ix_calls_started_at", calls.c.started_at)
# Small: only live calls (and crashed ones not yet recovered) are in it.
sa.Index("ix_calls_open_owner", calls.c.owner,
         sqlite_where=calls.c.ended_at.is_(None), postgresql_where=calls.c.ended_at.is_(None))

leads = sa.Table(
    "leads", metadata,
    sa.Column("phone", sa.String(64), primary_key=True),
    sa.Column("name", sa.Text),
    sa.Column("area", sa.Text),
    sa.Column("property_type", sa.Text),
    sa.Column("rooms", sa.Float),
    sa.Column("budget_ils", sa.BigInteger),
    sa.Column("timeframe", sa.Text),
    sa.Column("deal", sa.String(8)),  # "buy" | "rent"; budget_ils is per month for a rent (migration 3)
    sa.Column("phone_confirmed", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("status", sa.String(32), nullable=False, server_default="new"),
    sa.Column("meeting_at", sa.DateTime(timezone=True)),
    sa.Column("last_call_sid", sa.String(64)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Where the lead first came from ("call", "web_form", "facebook" ...) and the notes left on
    # an intake form (migration 5). Every intake is also a row of lead_intake.
    sa.Column("source", sa.String(64)),
    sa.Column("notes", sa.Text),
    # A person must take this lead's WhatsApp thread (the brain could not answer it): why, and
    # since when (migration 6). Cleared by an operator (leads.whatsapp.clear_needs_person).
    sa.Column("needs_person", sa.Text),
    sa.Column("needs_person_at", sa.DateTime(timezone=True)),
)

transcripts = sa.Table(
    "transcripts", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.String(64), sa.ForeignKey("calls.call_sid"), nullable=False),
    sa.Column("speaker", sa.String(16), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("t_start_ms", sa.Integer, nullable=False),
    sa.Column("t_end_ms", sa.Integer, nullable=False),
    sa.Column("heard_fully", sa.Boolean, nullable=False),
)
sa.Index("ix_transcripts_call", transcripts.c.call_sid, transcripts.c.id)

timeline = sa.Table(
    "timeline", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("call_sid", sa.String(64), sa.ForeignKey("calls.call_sid"), nullable=False),
    sa.Column("t_ms", sa.Integer, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("detail", sa.JSON),
)
sa.Index("ix_timeline_call", timeline.c.call_sid, timeline.c.id)

outbox = sa.Table(
    "outbox", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    # One item per call and channel ("whatsapp:<call_sid>"): what makes delivery idempotent.
    sa.Column("key", sa.String(128), nullable=False, unique=True),
    sa.Column("call_sid", sa.String(64), nullable=False),
    sa.Column("phone", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(16), nullable=False),  # whatsapp | webhook
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("provider_id", sa.String(64)),  # Twilio MessageSid
    sa.Column("claimed_by", sa.String(64)),  # the instance sending it (state 'sending'; migration 3)
    # How a WhatsApp item went out (migration 6): "text" inside the lead's 24-hour customer
    # service window, "template" (TWILIO_WHATSAPP_TEMPLATE_SID) outside it.
    sa.Column("sent_as", sa.String(16)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_outbox_due", outbox.c.state, outbox.c.next_attempt_at)
sa.Index("ix_outbox_provider_id", outbox.c.provider_id)

# One row per running server instance (migration 3): its lease, renewed every few seconds.
# A call whose owner's lease expired (or whose row is gone) belongs to a dead instance.
instances = sa.Table(
    "instances", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("host", sa.String(255), nullable=False),  # hostname | boot id | pid namespace
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("proc_start", sa.String(32), nullable=False, server_default=""),  # /proc/<pid>/stat starttime
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("renewed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Journal records (leads.journal) already applied: a replay after a crash between the
# database commit and the journal's own "done" mark applies nothing twice (migration 3).
journal_applied = sa.Table(
    "journal_applied", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
)

# Facts about this database (migration 3): "database_id", a random id that names the local
# journals written for it, so a journal is never replayed into another database.
store_meta = sa.Table(
    "store_meta", metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(255), nullable=False),
)

# Meetings booked by calls (migration 7): which realtor, when, and where the event lives in
# their calendar (leads.meetings). ``uid`` is the iCalendar UID, also the signed .ics link's
# key; ``href`` the CalDAV object URL (NULL: no calendar, or it was down at booking time).
meetings = sa.Table(
    "meetings", metadata,
    sa.Column("uid", sa.String(64), primary_key=True),
    sa.Column("realtor", sa.String(128), nullable=False, server_default=""),
    sa.Column("phone", sa.String(64), nullable=False),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # booked | cancelled
    sa.Column("href", sa.Text),
    sa.Column("details", sa.JSON),  # name, area, property, budget, deal: what the event says
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_meetings_phone", meetings.c.phone, meetings.c.starts_at)


# -- lead intake, the speed-to-lead dialer, opt-outs (migration 5) ----------------------------

# Every lead that flowed in (a web form, Facebook Lead Ads, the API): what was sent and where
# from. ``idempotency_key`` (the sender's Idempotency-Key, or the Facebook leadgen id) makes a
# retried delivery return the first answer instead of creating anything twice.
lead_intake = sa.Table(
    "lead_intake", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("idempotency_key", sa.String(160), unique=True),
    sa.Column("phone", sa.String(64), nullable=False),
    sa.Column("source", sa.String(64), nullable=False),
    sa.Column("payload", sa.JSON),
    sa.Column("created_lead", sa.Boolean, nullable=False),
    sa.Column("dial_job_id", sa.Integer),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_lead_intake_phone", lead_intake.c.phone, lead_intake.c.id)

# One outbound call to make (leads.dialer). A job lives through its retries: ``attempts``
# counts the calls placed; a callback the lead asked for is a new job. States:
# pending (due at ``due_at``) -> dialing (claimed by ``claimed_by``, calls.create in flight)
# -> calling (Twilio has it: ``call_sid``) -> pending again (no answer: a retry) | done |
# failed (retries spent) | cancelled (opted out, or superseded).
dial_jobs = sa.Table(
    "dial_jobs", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("phone", sa.String(64), nullable=False),
    sa.Column("reason", sa.String(16), nullable=False),  # intake | operator | callback
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("due_at", sa.DateTime(timezone=True)),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("call_sid", sa.String(64)),
    sa.Column("outcome", sa.String(32)),  # the last attempt's: completed | no-answer | busy | failed | machine
    sa.Column("last_error", sa.Text),
    sa.Column("note", sa.Text),  # a callback's context ("asked to be called at 18:00")
    sa.Column("origin_call_sid", sa.String(64)),  # the call in which the lead asked for this callback
    sa.Column("history", sa.JSON),  # [{"at", "call_sid", "outcome"}] one per attempt
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)
sa.Index("ix_dial_jobs_due", dial_jobs.c.state, dial_jobs.c.due_at)
sa.Index("ix_dial_jobs_phone", dial_jobs.c.phone, dial_jobs.c.id)
sa.Index("ix_dial_jobs_call_sid", dial_jobs.c.call_sid)

# The do-not-call list: a number here is never called nor messaged again (leads.optout).
do_not_call = sa.Table(
    "do_not_call", metadata,
    sa.Column("phone", sa.String(64), primary_key=True),
    sa.Column("source", sa.String(64), nullable=False),  # whatsapp | operator | call | api ...
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


# -- two-way WhatsApp (migration 6) -------------------------------------------------------------

# Every message a lead sent us on WhatsApp (Twilio's Messaging webhook, /whatsapp_inbound).
# Ours to them are outbox items (channel whatsapp: the call follow-ups, key "whatsapp:<CallSid>",
# and the replies, key "wa-reply:<MessageSid>" of the message answered), with their delivery
# states; leads.whatsapp.thread reads both as one thread.
whatsapp_messages = sa.Table(
    "whatsapp_messages", metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_sid", sa.String(64), nullable=False, unique=True),  # Twilio retries: stored once
    sa.Column("phone", sa.String(64), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("num_media", sa.Integer, nullable=False, server_default="0"),
    sa.Column("profile_name", sa.Text),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    # What the brain made of it: opt_out | confirm | offer | choose | book | cancel | handoff | ...
    sa.Column("action", sa.String(16)),
    sa.Column("brain", sa.String(16)),  # rules | openai
    sa.Column("reply_key", sa.String(128)),  # the outbox item answering it
)
sa.Index("ix_whatsapp_messages_phone", whatsapp_messages.c.phone, whatsapp_messages.c.id)

# The conversation state of a lead's thread: when they last wrote (the 24-hour window) and
# where a reschedule stands (the windows offered, the one chosen and awaiting a yes).
whatsapp_threads = sa.Table(
    "whatsapp_threads", metadata,
    sa.Column("phone", sa.String(64), primary_key=True),
    sa.Column("last_inbound_at", sa.DateTime(timezone=True)),
    sa.Column("phase", sa.String(16), nullable=False, server_default="idle"),
    sa.Column("offered", sa.JSON),  # ISO datetimes
    sa.Column("chosen", sa.DateTime(timezone=True)),
    sa.Column("misses", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)


def utc(value: dt.datetime | None) -> dt.datetime | None:
    """A stored time as aware UTC (SQLite drops the zone; we only ever write UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(dt.timezone.utc)
