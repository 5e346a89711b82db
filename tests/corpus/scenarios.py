"""The corpus: what callers do on the phone, Hebrew and English, espeak-ng and synthetic voices,
at 30 / 20 / 10 dB SNR, with and without echo and inbound bursts.

Every scenario is a list of caller steps (what is said, what it is meant as, when) and what
the caller expects at the end; the roles carry most of the expectation (judge.py's rules):
answer / interrupt / repeat -> answered within 2 s; backchannel / noise over the agent -> the
agent goes on (resumes <= 600 ms, from the word it was cut at); noise while the agent is
silent -> no reply; cont -> one merged turn, never talked over.
"""
from __future__ import annotations

from .caller import After, AfterPrev, Expect, Into, OnAsr, Scenario, Step
from .line import Echo
from .voices import Voice

# -- building blocks ---------------------------------------------------------------------------


def he(text: str, voice: str = "espeak", seed: int = 1) -> Voice:
    return Voice("speech", text, "he", voice, seed)


def en(text: str, voice: str = "espeak", seed: int = 1) -> Voice:
    return Voice("speech", text, "en", voice, seed)


def knock(seed: int = 1) -> Voice:
    return Voice("knock", seed=seed)


def cough(seed: int = 1) -> Voice:
    return Voice("cough", seed=seed)


def hum(lang: str, ms: int = 450, seed: int = 1) -> Voice:
    return Voice("hum", "אממ" if lang == "he" else "umm", lang, "synth", seed, ms)


def answer(v: Voice, when: object = None, confidence: float = 0.9) -> Step:
    return Step(v, when or After(0.6), "answer", confidence)  # type: ignore[arg-type]


def cont(v: Voice, when: object) -> Step:
    return Step(v, when, "cont", 0.6 if v.kind == "hum" else 0.9)  # type: ignore[arg-type]


def interrupt(v: Voice, offset: float = 1.2) -> Step:
    return Step(v, Into(offset), "interrupt")


def backchannel(v: Voice, offset: float = 1.0) -> Step:
    return Step(v, Into(offset), "backchannel")


def noise(v: Voice, when: object, asr_text: str = "", confidence: float | None = None) -> Step:
    conf = confidence if confidence is not None else (0.4 if asr_text else (0.6 if v.kind == "hum" else 0.0))
    return Step(v, when, "noise", conf, asr_text)  # type: ignore[arg-type]


def repeat(v: Voice) -> Step:
    return Step(v, After(0.6), "repeat")


def slots(**kw: object) -> tuple[tuple[str, object], ...]:
    return tuple(kw.items())


def bursts(every: float = 2.0, hold: float = 0.24, start: float = 1.0, until: float = 120.0) -> tuple[tuple[float, float], ...]:
    """Inbound frames held ``hold`` s every ``every`` s, then delivered in one lump."""
    out = []
    t = start
    while t < until:
        out.append((round(t, 2), hold))
        t += every
    return tuple(out)


BURSTS = bursts()
BURSTS_300 = bursts(every=1.7, hold=0.3, start=0.9)

# Hebrew and English building phrases ---------------------------------------------------------
HE_TLV = "בתל אביב"
HE_FLAT4 = "דירת ארבעה חדרים"
EN_HAIFA = "in Haifa"
EN_FLAT3 = "an apartment with three rooms"


def _s(name: str, group: str, lang: str, steps: list[Step], story: str, **kw: object) -> Scenario:
    return Scenario(name=name, group=group, lang=lang, steps=tuple(steps), story=story, **kw)  # type: ignore[arg-type]


SCENARIOS: list[Scenario] = [
    # -- backchannels over the agent: it goes on ----------------------------------------------
    _s("bc_he_ken", "backchannel", "he", [
        answer(he(HE_TLV)), backchannel(he("כן")), answer(he(HE_FLAT4)),
    ], "'כן' while the agent asks the next question: the agent goes on", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה", rooms=4.0))),
    _s("bc_he_aha_synth", "backchannel", "he", [
        answer(he(HE_TLV, "synth")), backchannel(he("אהה", "synth"), 1.1), answer(he(HE_FLAT4, "synth")),
    ], "synthetic 'אהה' mid-sentence at 20 dB", snr_db=20,
        expect=Expect(slots(area="תל אביב", property_type="דירה", rooms=4.0))),
    _s("bc_he_nachon_echo", "backchannel", "he", [
        answer(he(HE_TLV)), backchannel(he("נכון"), 0.9), answer(he(HE_FLAT4)),
    ], "'נכון' over the agent on a speakerphone (echo -20 dB, 120 ms)", snr_db=20, echo=Echo(-20, 120),
        expect=Expect(slots(area="תל אביב", property_type="דירה"))),
    _s("bc_he_twice", "backchannel", "he", [
        answer(he(HE_TLV)), backchannel(he("כן"), 0.7), backchannel(he("אהה", "synth"), 0.9), answer(he(HE_FLAT4)),
    ], "two backchannels in one agent turn", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה"))),
    _s("bc_en_okay", "backchannel", "en", [
        answer(en(EN_HAIFA)), backchannel(en("okay")), answer(en(EN_FLAT3)),
    ], "'okay' while the agent talks", snr_db=30,
        expect=Expect(slots(area="Haifa", property_type="apartment", rooms=3.0))),
    _s("bc_en_uhhuh_synth", "backchannel", "en", [
        answer(en(EN_HAIFA, "synth")), backchannel(en("uh-huh", "synth"), 1.2), answer(en(EN_FLAT3, "synth")),
    ], "synthetic 'uh-huh' at 10 dB SNR, synthetic agent", snr_db=10, agent="synth",
        expect=Expect(slots(area="Haifa", property_type="apartment", rooms=3.0))),
    _s("bc_en_mm_bursts", "backchannel", "en", [
        answer(en(EN_HAIFA)), backchannel(en("mm", "synth"), 1.0), answer(en(EN_FLAT3)),
    ], "'mm' over the agent, uplink delivering in 240 ms lumps", snr_db=20, bursts=BURSTS,
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    # -- real interruptions: the agent stops and answers -----------------------------------
    _s("int_he_rega", "interrupt", "he", [
        answer(he(HE_TLV)), interrupt(he("רגע רגע"), 1.2), answer(he(HE_FLAT4)),
    ], "'רגע' over the agent: it stops, says go ahead, listens", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה", rooms=4.0))),
    _s("int_en_wait", "interrupt", "en", [
        answer(en("Tel Aviv")), interrupt(en("wait"), 1.2), answer(en(EN_FLAT3)),
    ], "'wait' over the agent", snr_db=20,
        expect=Expect(slots(area="Tel Aviv", property_type="apartment", rooms=3.0))),
    _s("int_he_content", "interrupt", "he", [
        answer(he(HE_TLV)), interrupt(he("רגע, בעצם אני מחפש בחיפה"), 1.0),
    ], "a correction said over the agent: it stops and takes it", snr_db=20,
        expect=Expect(slots(area="חיפה"))),
    _s("int_en_content_synth", "interrupt", "en", [
        answer(en("Tel Aviv", "synth")), interrupt(en("sorry, make that Haifa", "synth"), 1.3),
    ], "synthetic correction over the synthetic agent at 10 dB", snr_db=10, agent="synth",
        expect=Expect(slots(area="Haifa"))),
    _s("int_en_content_bursts", "interrupt", "en", [
        answer(en("Haifa")), interrupt(en("hold on, I need a house not an apartment"), 1.1),
    ], "content interruption while the uplink comes in 300 ms lumps", snr_db=20, bursts=BURSTS_300,
        expect=Expect(slots(area="Haifa", property_type="house"))),
    # -- one-word answers: answered, no dead air --------------------------------------------
    _s("ow_he_words", "one_word", "he", [
        answer(he("חיפה")), answer(he("דירה")), answer(he("כן")),
    ], "'חיפה', 'דירה', 'כן': each a whole turn", snr_db=30,
        expect=Expect(slots(area="חיפה", property_type="דירה"))),
    _s("ow_he_ken_synth", "one_word", "he", [
        answer(he("חיפה", "synth")), answer(he("כן", "synth")), answer(he("לא", "synth")),
    ], "synthetic one-word answers at 10 dB", snr_db=10, agent="synth",
        expect=Expect(slots(area="חיפה"))),
    _s("ow_en_yes", "one_word", "en", [
        answer(en("Haifa")), answer(en("yes")), answer(en("no")),
    ], "'Haifa', 'yes', 'no'", snr_db=20, expect=Expect(slots(area="Haifa"))),
    _s("ow_en_synth_bursts", "one_word", "en", [
        answer(en("Haifa", "synth")), answer(en("yes", "synth")), answer(en("no", "synth")),
    ], "synthetic one-word answers over a bursty uplink", snr_db=20, bursts=BURSTS,
        expect=Expect(slots(area="Haifa"))),
    # -- pauses inside one answer: one turn, never talked over ---------------------------------
    _s("pause_he_comma", "pause", "he", [
        answer(he("בתל אביב,")), cont(he(HE_FLAT4), AfterPrev(0.3)),
    ], "a 300 ms comma pause inside the answer", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה", rooms=4.0))),
    _s("pause_he_hum", "pause", "he", [
        answer(he("בחיפה")), cont(hum("he", 500), AfterPrev(0.25)), cont(he("דירה"), AfterPrev(0.25)),
    ], "'בחיפה... אממ... דירה' as one answer", snr_db=20,
        expect=Expect(slots(area="חיפה", property_type="דירה"))),
    _s("pause_en_comma", "pause", "en", [
        answer(en("in Haifa,")), cont(en(EN_FLAT3), AfterPrev(0.4)),
    ], "a 400 ms pause after 'in Haifa,'", snr_db=30,
        expect=Expect(slots(area="Haifa", property_type="apartment", rooms=3.0))),
    _s("pause_en_umm_synth", "pause", "en", [
        answer(en("we are looking in", "synth")), cont(hum("en", 450), AfterPrev(0.3)),
        cont(en("Haifa", "synth"), AfterPrev(0.3)),
    ], "'we are looking in... umm... Haifa' (synthetic, 20 dB)", snr_db=20, agent="synth",
        expect=Expect(slots(area="Haifa"))),
    _s("pause_he_600_synth", "pause", "he", [
        answer(he("בית פרטי", "synth")), cont(he("בחיפה", "synth"), AfterPrev(0.6)),
    ], "a 600 ms pause at 10 dB", snr_db=10, agent="synth",
        expect=Expect(slots(area="חיפה", property_type="בית פרטי"))),
    _s("pause_en_echo", "pause", "en", [
        answer(en("a house,")), cont(en("with five rooms"), AfterPrev(0.35)),
    ], "comma pause on a speakerphone (echo -18 dB, 90 ms)", snr_db=20, echo=Echo(-18, 90),
        expect=Expect(slots(property_type="house", rooms=5.0))),
    # -- the caller adds more while the ASR works: one merged turn --------------------------
    _s("proc_en_budget", "processing", "en", [
        answer(en("a three room apartment in Haifa")), cont(en("up to two million"), OnAsr(0.15)),
    ], "adds 'up to two million' while the first part is being recognised", snr_db=30,
        expect=Expect(slots(area="Haifa", property_type="apartment", rooms=3.0, budget_ils=2_000_000))),
    _s("proc_he_budget", "processing", "he", [
        answer(he("דירת ארבעה חדרים בחיפה")), cont(he("עד שני מיליון"), OnAsr(0.2)),
    ], "adds 'עד שני מיליון' during PROCESSING", snr_db=20,
        expect=Expect(slots(area="חיפה", property_type="דירה", rooms=4.0, budget_ils=2_000_000))),
    _s("proc_he_synth", "processing", "he", [
        answer(he("דירת ארבעה חדרים בחיפה", "synth")), cont(he("עד שני מיליון", "synth"), OnAsr(0.1)),
    ], "synthetic, 10 dB, slow ASR (0.6 s)", snr_db=10, agent="synth", asr_latency_s=0.6,
        expect=Expect(slots(area="חיפה", budget_ils=2_000_000))),
    _s("proc_en_bursts", "processing", "en", [
        answer(en("a three room apartment in Haifa")), cont(en("up to two million"), OnAsr(0.1)),
    ], "during PROCESSING over a bursty uplink", snr_db=20, bursts=BURSTS, asr_latency_s=0.5,
        expect=Expect(slots(area="Haifa", budget_ils=2_000_000))),
    # -- caller and agent start together: the agent yields within 100 ms ------------------------
    _s("tog_he_add", "together", "he", [
        answer(he(HE_TLV)), answer(he(HE_FLAT4), Into(0.0)),
    ], "the caller adds the flat just as the agent starts its reply", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה", rooms=4.0))),
    _s("tog_en_hello", "together", "en", [
        answer(en("Hello?"), Into(0.04)), answer(en("Haifa")),
    ], "'Hello?' right as the greeting starts", snr_db=30, expect=Expect(slots(area="Haifa"))),
    _s("tog_en_synth", "together", "en", [
        answer(en(EN_HAIFA, "synth")), answer(en(EN_FLAT3, "synth"), Into(0.02)),
    ], "synthetic, 20 dB: both start together", snr_db=20, agent="synth",
        expect=Expect(slots(area="Haifa", property_type="apartment", rooms=3.0))),
    _s("tog_he_echo", "together", "he", [
        answer(he("חיפה")), answer(he("בית פרטי"), Into(0.05)),
    ], "together, on a speakerphone (echo -22 dB, 150 ms)", snr_db=20, echo=Echo(-22, 150),
        expect=Expect(slots(area="חיפה", property_type="בית פרטי"))),
    # -- knocks, coughs, hums while the agent listens: no reply --------------------------------
    _s("noise_he_knock", "noise", "he", [
        answer(he(HE_TLV)), noise(knock(), After(1.0)), answer(he(HE_FLAT4), AfterPrev(2.6)),
    ], "a knock while the agent waits for the answer", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה"))),
    _s("noise_he_knock_10", "noise", "he", [
        answer(he("חיפה", "synth")), noise(knock(4), After(0.7)), answer(he("דירה", "synth"), AfterPrev(2.6)),
    ], "a knock on a noisy line (10 dB), synthetic voices", snr_db=10, agent="synth",
        expect=Expect(slots(area="חיפה", property_type="דירה"))),
    _s("noise_en_cough", "noise", "en", [
        answer(en(EN_HAIFA)), noise(cough(), After(0.9)), answer(en(EN_FLAT3), AfterPrev(2.6)),
    ], "a cough while listening (20 dB)", snr_db=20,
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    _s("noise_en_umm", "noise", "en", [
        answer(en(EN_HAIFA)), noise(hum("en", 400), After(0.8)), answer(en(EN_FLAT3), AfterPrev(2.6)),
    ], "a lone 'umm' (ASR: 'umm', confidence 0.6), then the answer", snr_db=20,
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    _s("noise_en_knock_halluc", "noise", "en", [
        answer(en(EN_HAIFA)), noise(knock(2), After(0.8), asr_text="Thank you."), answer(en(EN_FLAT3), AfterPrev(2.6)),
    ], "a knock the ASR hallucinates as 'Thank you.' (confidence 0.4)", snr_db=30,
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    _s("noise_he_cough_halluc", "noise", "he", [
        answer(he(HE_TLV, "synth")), noise(cough(3), After(0.8), asr_text="תודה רבה."),
        answer(he(HE_FLAT4, "synth"), AfterPrev(2.6)),
    ], "a cough the ASR hallucinates as 'תודה רבה.' (synthetic voice, 20 dB)", snr_db=20, agent="synth",
        expect=Expect(slots(area="תל אביב", property_type="דירה"))),
    # -- a cough / knock over the agent: it goes on --------------------------------------------
    _s("cov_he_cough", "cough_over", "he", [
        answer(he(HE_TLV)), noise(cough(), Into(1.0)), answer(he(HE_FLAT4)),
    ], "a cough over the agent's question", snr_db=20,
        expect=Expect(slots(area="תל אביב", property_type="דירה"))),
    _s("cov_en_knock", "cough_over", "en", [
        answer(en(EN_HAIFA)), noise(knock(), Into(1.2)), answer(en(EN_FLAT3)),
    ], "a knock over the agent", snr_db=30,
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    _s("cov_en_cough_echo", "cough_over", "en", [
        answer(en(EN_HAIFA)), noise(cough(2), Into(1.0)), answer(en(EN_FLAT3)),
    ], "a cough over the agent on a speakerphone (echo -15 dB, 200 ms)", snr_db=20, echo=Echo(-15, 200),
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    # -- a monologue past MAX_UTT: answered after it, not talked over ------------------------
    _s("mono_he", "monologue", "he", [
        answer(he("אנחנו מחפשים דירה בתל אביב ארבעה חדרים עם מרפסת וחניה קרוב לים ולבית ספר טוב")),
    ], "a 6 s answer without a pause", snr_db=30,
        expect=Expect(slots(area="תל אביב", property_type="דירה", rooms=4.0))),
    _s("mono_en_synth", "monologue", "en", [
        answer(en("we are looking for an apartment in Tel Aviv with four rooms and a balcony "
                  "near the beach and close to a good school for the kids", "synth")),
    ], "a 7 s synthetic monologue at 20 dB", snr_db=20, agent="synth",
        expect=Expect(slots(area="Tel Aviv", property_type="apartment", rooms=4.0))),
    # -- interrupting the goodbye: heard and answered, not hung up on --------------------------
    _s("bye_he", "goodbye", "he", [
        answer(he("לא מעוניין")), interrupt(he("רגע, בעצם אני כן מחפש בחיפה"), 0.8),
    ], "the caller takes back 'not interested' over the goodbye", snr_db=30,
        expect=Expect(slots(area="חיפה"))),
    _s("bye_en", "goodbye", "en", [
        answer(en("I'm not interested")), interrupt(en("wait, actually I am looking in Haifa"), 0.9),
    ], "'wait, actually...' over the goodbye (20 dB)", snr_db=20, expect=Expect(slots(area="Haifa"))),
    # -- "what?": the last question again ------------------------------------------------------
    _s("rep_he_ma", "repeat", "he", [
        repeat(he("מה?")), answer(he("בחיפה")),
    ], "'מה?' after the greeting", snr_db=30, expect=Expect(slots(area="חיפה"))),
    _s("rep_en_what", "repeat", "en", [
        repeat(en("sorry, what?")), answer(en("Haifa")),
    ], "'sorry, what?' after the greeting", snr_db=20, expect=Expect(slots(area="Haifa"))),
    _s("rep_en_synth", "repeat", "en", [
        answer(en("Haifa", "synth")), repeat(en("sorry, what?", "synth")), answer(en(EN_FLAT3, "synth")),
    ], "'sorry, what?' after the second question (synthetic, 20 dB)", snr_db=20, agent="synth",
        expect=Expect(slots(area="Haifa", property_type="apartment"))),
    # -- speakerphone echo, caller silent while the agent talks: no barge-in at all ------------
    _s("echo_he_15", "echo_only", "he", [
        answer(he(HE_TLV), After(0.8)), answer(he(HE_FLAT4), After(0.8)),
    ], "echo -15 dB after 60 ms; the caller only talks in the agent's silences", snr_db=30, echo=Echo(-15, 60),
        expect=Expect(slots(area="תל אביב", property_type="דירה"), no_cut=True)),
    _s("echo_en_20", "echo_only", "en", [
        answer(en(EN_HAIFA), After(0.8)), answer(en(EN_FLAT3), After(0.8)),
    ], "echo -20 dB after 150 ms, 20 dB SNR", snr_db=20, echo=Echo(-20, 150),
        expect=Expect(slots(area="Haifa", property_type="apartment"), no_cut=True)),
    _s("echo_he_30_synth", "echo_only", "he", [
        answer(he(HE_TLV, "synth"), After(0.8)), answer(he(HE_FLAT4, "synth"), After(0.8)),
    ], "echo -30 dB after 250 ms, synthetic agent", snr_db=20, echo=Echo(-30, 250), agent="synth",
        expect=Expect(slots(area="תל אביב", property_type="דירה"), no_cut=True)),
    _s("echo_en_15_bursts", "echo_only", "en", [
        answer(en(EN_HAIFA), After(0.8)), answer(en(EN_FLAT3), After(0.8)),
    ], "echo -15 dB after 100 ms over a bursty uplink", snr_db=30, echo=Echo(-15, 100), bursts=BURSTS,
        expect=Expect(slots(area="Haifa", property_type="apartment"), no_cut=True)),
    # -- a real interruption over echo: halted <= 220 ms -----------------------------------------
    _s("ie_en_15", "interrupt_echo", "en", [
        answer(en("Tel Aviv")), interrupt(en("wait, I meant Haifa"), 1.2),
    ], "a correction over the agent, echo -15 dB after 80 ms", snr_db=30, echo=Echo(-15, 80),
        expect=Expect(slots(area="Haifa"))),
    _s("ie_he_20", "interrupt_echo", "he", [
        answer(he(HE_TLV)), interrupt(he("רגע, בעצם אני מחפש בחיפה"), 1.1),
    ], "Hebrew correction over echo -20 dB after 180 ms", snr_db=20, echo=Echo(-20, 180),
        expect=Expect(slots(area="חיפה"))),
    _s("ie_en_bursts", "interrupt_echo", "en", [
        answer(en("Tel Aviv")), interrupt(en("sorry, make that Haifa"), 1.0),
    ], "correction over echo -18 dB, bursty uplink", snr_db=20, echo=Echo(-18, 120), bursts=BURSTS,
        expect=Expect(slots(area="Haifa"))),
    # -- whole calls ---------------------------------------------------------------------------
    _s("full_he", "full_call", "he", [
        answer(he("דירת ארבעה חדרים בחיפה עד שני מיליון")), answer(he("תוך כמה חודשים")),
        answer(he("קוראים לי דנה כהן")), answer(he("כן")), answer(he("מחר בעשר")), answer(he("כן")),
        answer(he("לא, תודה")),
    ], "a whole Hebrew call to a booked meeting (20 dB, echo -25 dB)", snr_db=20, echo=Echo(-25, 100),
        expect=Expect(slots(area="חיפה", property_type="דירה", rooms=4.0, budget_ils=2_000_000,
                            name="דנה כהן", phone_confirmed=True), status="meeting_booked")),
    _s("full_en", "full_call", "en", [
        answer(en("a three room apartment in Haifa up to two million")), answer(en("within a few months")),
        answer(en("my name is Dana")), answer(en("yes")), answer(en("tomorrow at ten")), answer(en("yes")),
        answer(en("no, thanks")),
    ], "a whole English call to a booked meeting (30 dB)", snr_db=30,
        expect=Expect(slots(area="Haifa", property_type="apartment", rooms=3.0, budget_ils=2_000_000,
                            name="Dana", phone_confirmed=True), status="meeting_booked")),
]

BY_NAME = {sc.name: sc for sc in SCENARIOS}
assert len(BY_NAME) == len(SCENARIOS), "scenario names must be unique"


def all_voices() -> list[Voice]:
    return [v for sc in SCENARIOS for v in sc.voices]
