"""The WhatsApp rules brain (dialog.whatsapp): pure, on a frozen ``now``."""
from __future__ import annotations

import datetime as dt

import pytest

from dialog import guardrails
from dialog.schedule import TZ, hours_on
from dialog.whatsapp import EN, HE, Thread, decide, is_opt_out, write_offer

NOW = dt.datetime(2026, 12, 1, 9, 0, tzinfo=TZ)  # Tuesday 09:00
MEETING = dt.datetime(2026, 12, 1, 16, 0, tzinfo=TZ)


def chat(thread: Thread, *messages: str, now: dt.datetime = NOW) -> list:
    out = []
    for text in messages:
        d = decide(text, thread, now)
        out.append(d)
        thread = d.thread
    return out


@pytest.mark.parametrize("text", ["הסר", "STOP", "stop", "Stop.", "הסירו אותי", "תסירו אותי בבקשה",
                                  "unsubscribe", "please remove me from your list", "אל תשלחו לי יותר הודעות"])
def test_opt_out_words(text: str) -> None:
    assert is_opt_out(text)
    d = decide(text, Thread(meeting_at=MEETING), NOW)
    assert d.action == "opt_out" and d.opt_out and d.final


@pytest.mark.parametrize("text", ["אפשר להזיז למחר?", "stop by at 4?", "כן", "מה הכתובת?", "לא לשלוח סיכום, רק להתקשר"])
def test_not_opt_out(text: str) -> None:
    assert not is_opt_out(text)


def test_every_fixed_line_keeps_the_phone_rules() -> None:
    w = "מחר (02.12) ב-10:00"
    for table in (HE, EN):
        for key, line in table.items():
            text = line.format(window=w, offer=f"{w} או {w}")
            broken = [v for v in guardrails.check(text) if v not in ("no_question", "not_ending_question")]
            assert not broken and text.count("?") <= 1 and (text.count("?") == 0 or text.endswith("?")), (key, broken)


def test_reschedule_to_a_named_day_offers_that_days_windows_then_books() -> None:
    offer, choose, book = chat(Thread(meeting_at=MEETING), "אפשר להזיז למחר?", "ב-13", "כן בבקשה")
    assert offer.action == "offer" and [w.hour for w in offer.thread.offered] == [10, 13, 16]
    assert all(w.date() == dt.date(2026, 12, 2) for w in offer.thread.offered)
    assert choose.action == "choose" and choose.thread.chosen == dt.datetime(2026, 12, 2, 13, 0, tzinfo=TZ)
    assert book.action == "book" and book.meeting_at == choose.thread.chosen and book.final
    assert book.thread.phase == "idle" and book.thread.offered == ()


def test_none_of_them_offers_others_and_a_second_unreadable_answer_goes_to_a_person() -> None:
    offer, again, unclear, person = chat(Thread(meeting_at=MEETING), "צריך לשנות את המועד", "אף אחד לא מתאים",
                                         "הממ", "אולי")
    assert again.action == "offer" and not set(again.thread.offered) & set(offer.thread.offered)
    assert unclear.action == "offer" and unclear.thread.misses == 1
    assert person.action == "handoff" and person.needs_person == "could not read which window"


def test_never_shabbat_or_a_holiday() -> None:
    friday = dt.datetime(2026, 12, 4, 10, 0, tzinfo=TZ)
    d = decide("אפשר להעביר את הפגישה לשבת?", Thread(meeting_at=friday + dt.timedelta(days=2)), friday)
    assert d.action == "offer" and 2 <= len(d.thread.offered) <= 3
    assert all(hours_on(w.date()) and w.hour in hours_on(w.date()) for w in d.thread.offered)
    assert all(w.weekday() != 5 for w in d.thread.offered)


def test_english_lead_gets_english() -> None:
    offer, choose, book = chat(Thread(meeting_at=MEETING), "Can we reschedule to Thursday?", "the 1pm one", "yes")
    assert offer.reply.startswith("No problem. Would Thursday (03.12) at 10:00") and not offer.hebrew
    assert choose.reply == "So Thursday (03.12) at 13:00, shall I book it?"
    assert book.reply == "Booked Thursday (03.12) at 13:00. See you then!"


def test_cancel_then_set_another_time() -> None:
    cancel, offer = chat(Thread(meeting_at=MEETING), "אני צריך לבטל", "כן")
    assert cancel.action == "cancel" and cancel.meeting_at is None and cancel.thread.phase == "cancelled"
    assert offer.action == "offer" and len(offer.thread.offered) == 3


def test_confirm_thanks_and_what_the_rules_cannot_read() -> None:
    assert decide("כן, מגיעה", Thread(meeting_at=MEETING), NOW).action == "confirm"
    thanks = decide("תודה רבה!", Thread(meeting_at=MEETING), NOW)
    assert thanks.action == "ignore" and thanks.reply is None
    other = decide("יש חניה ליד?", Thread(meeting_at=MEETING), NOW)
    assert other.action == "handoff" and other.needs_person
    assert decide("", Thread(), NOW, num_media=1).needs_person == "media without text"
    assert decide("כן", Thread(), NOW).action == "handoff"  # a yes to nothing


def test_an_offer_writes_each_day_once() -> None:
    d = [dt.datetime(2026, 12, 2, h, 0, tzinfo=TZ) for h in (10, 13)] + [dt.datetime(2026, 12, 3, 16, 0, tzinfo=TZ)]
    assert write_offer(d, NOW, True) == "מחר (02.12) ב-10:00, ב-13:00 או ביום חמישי (03.12) ב-16:00"


from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

WORDS = ["כן", "לא", "מחר", "בעשר", "הראשון", "לבטל", "להזיז", "תודה", "אפשר", "ביום", "חמישי", "שבת", "הסר",
         "yes", "no", "cancel", "reschedule", "tomorrow", "at", "4", "?", "!", "🙂", "STOP", "אף", "אחד"]
WINDOWS = [dt.datetime(2026, 12, d, h, 0, tzinfo=TZ) for d in (1, 2, 3) for h in (10, 13, 16)]


@settings(max_examples=300, deadline=None, database=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(words=st.lists(st.sampled_from(WORDS), max_size=8), junk=st.text(max_size=30),
       phase=st.sampled_from(["idle", "offer", "confirm", "cancelled"]), meeting=st.sampled_from([None, MEETING]),
       offered=st.lists(st.sampled_from(WINDOWS), min_size=0, max_size=3, unique=True), misses=st.integers(0, 2))
def test_any_message_in_any_state_gets_a_reply_that_keeps_the_rules(words, junk, phase, meeting, offered,
                                                                    misses) -> None:
    if phase in ("offer", "confirm") and not offered:
        offered = WINDOWS[3:5]  # the states the brain reaches: an offer always names windows
    chosen = offered[0] if phase == "confirm" else None
    thread = Thread(meeting_at=meeting, phase=phase, offered=tuple(offered), chosen=chosen, misses=misses)
    d = decide(" ".join(words) + junk, thread, NOW)
    assert d.violations == ()
    if d.reply is not None:
        assert d.reply.count("?") <= 1 and (d.final is False or "?" not in d.reply)
    assert all(w >= NOW for w in d.thread.offered) and 0 <= len(d.thread.offered) <= 3
    assert d.thread.phase in ("idle", "offer", "confirm", "cancelled")
    if d.thread.phase == "offer":
        assert len(d.thread.offered) >= 1
