"""A call whose identifiers the store rejects still runs to its end: the session's recorder
writes fail with ERROR lines naming the field, and the caller hears the whole conversation.
The real session and the real SQLite store, against the in-memory Twilio emulator."""
from __future__ import annotations

import sqlalchemy as sa
import trio

from leads import schema
from leads.store import SqlRecorder, Store
from tests.server.fakes import ScriptedBrain, ScriptedRecognizer
from tests.server.harness import Scenario, run_scenario
from tests.server.twilio_emulator import TwilioEmulator


async def _call(store: Store, **emulator_kw: object):  # type: ignore[no-untyped-def]
    sc = Scenario(
        recognizer=ScriptedRecognizer(["area Haifa", "bye"]),
        brain=ScriptedBrain([["Haifa, great.", "What kind of place?"], ["Goodbye."]]),
        recorder=SqlRecorder(store, lead_webhook=False),  # type: ignore[arg-type]
    )

    async def script(emu: TwilioEmulator) -> None:
        for n in (1, 2):
            await emu.wait_marks(".end", n)
            await trio.sleep(0.5)
            emu.say(1.2)
        await emu.wait_marks(".end", 3)
        await trio.sleep(0.5)
        await emu.stop()

    # Real time, not tests/server's virtual clock: the store's writes run in worker threads,
    # and a clock that jumps while they run would time them out.
    with trio.fail_after(60):
        return await run_scenario(sc, script, **emulator_kw)


async def test_a_call_with_an_invalid_call_sid_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        out = await _call(store, call_sid="CA0001", stream_sid="MZ0001")
        said = [e["text"] for e in out.events("TTS_START")]
        assert said[1:] == ["Haifa, great.", "Goodbye."]  # the caller heard every turn
        assert out.events("CALL_END")[0]["reason"] == "twilio_stop"
        errors = [e for e in out.events("ERROR") if e["where"].startswith("store.")]
        assert errors and all("invalid call_sid" in e["error"] for e in errors)
        with store.engine.connect() as conn:
            assert conn.execute(sa.select(sa.func.count()).select_from(schema.calls)).scalar() == 0
    finally:
        store.close()


async def test_a_call_from_an_unreadable_number_is_stored_without_it(tmp_path) -> None:  # type: ignore[no-untyped-def]
    store = Store.open(f"sqlite:///{tmp_path / 'a.db'}")
    try:
        sid = "CA" + "e" * 32
        out = await _call(store, call_sid=sid, stream_sid="MZ" + "e" * 32, from_number="+972" + "5" * 4000)
        assert [e["text"] for e in out.events("TTS_START")][1:] == ["Haifa, great.", "Goodbye."]
        errors = [e for e in out.events("ERROR")]
        assert {e["where"] for e in errors} <= {"store.call_started", "store.lead_updated", "store.call_ended"}
        assert all("from_number" in e["error"] or "invalid phone" in e["error"] for e in errors)
        with store.engine.connect() as conn:
            [call] = conn.execute(sa.select(schema.calls)).mappings().all()
            leads = conn.execute(sa.select(sa.func.count()).select_from(schema.leads)).scalar()
        assert (call["call_sid"], call["from_number"], call["close_reason"]) == (sid, "", "twilio_stop")
        assert leads == 0
    finally:
        store.close()
