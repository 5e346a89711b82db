"""The contract with server.wiring: it finds the store, the outbox task, the dialer and the
dashboard (with the inflow routes)."""
from __future__ import annotations

import logging

from leads.store import SqlRecorder
from leads.timeline import TimelineTap
from server.dashboard import dashboard_bp
from server.inflow import inflow_bp
from server.settings import Settings
from server.whatsapp import whatsapp_bp
from server.wiring import build_recorder


def test_the_app_wiring_picks_up_store_outbox_and_dashboard(sqlite_url: str) -> None:
    notes: list[str] = []
    recorder, background, blueprints = build_recorder(Settings.from_env({"DATABASE_URL": sqlite_url}), notes)
    assert isinstance(recorder, SqlRecorder)
    assert recorder.store.backend == "sqlite"
    assert len(background) == 2 and all(callable(task) for task in background)  # the outbox, the dialer
    assert blueprints == [dashboard_bp, inflow_bp, whatsapp_bp]
    assert recorder.store.dialer is not None and not recorder.store.dialer.cfg.enabled  # no Twilio settings
    assert notes == [f"store: {sqlite_url}"]
    logger = logging.getLogger("agentlocator")
    taps = [h for h in logger.handlers if isinstance(h, TimelineTap) and h.recorder is recorder]
    assert len(taps) == 1  # the timeline is fed from the log
    logger.removeHandler(taps[0])
    recorder.store.close()


def test_instance_id_names_each_worker_apart(sqlite_url: str) -> None:
    """INSTANCE_ID set once for a server with workers: each worker holds its own lease."""
    logger = logging.getLogger("agentlocator")
    ids = []
    for extra in ({}, {"AGENTLOCATOR_WORKER": "1"}):
        env = {"DATABASE_URL": sqlite_url, "INSTANCE_ID": "edge-a", **extra}
        recorder, _, _ = build_recorder(Settings.from_env(env), [])
        ids.append(recorder.store.instance_id)
        for tap in [h for h in logger.handlers if isinstance(h, TimelineTap) and h.recorder is recorder]:
            logger.removeHandler(tap)
        recorder.store.close()
    assert ids == ["edge-a", "edge-a-w1"]
