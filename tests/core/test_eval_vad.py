"""A small run of scripts/eval_vad.py on real (espeak-ng) Hebrew and English speech in noise."""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "eval_vad.py"

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def load_eval():
    if "eval_vad" in sys.modules:
        return sys.modules["eval_vad"]
    spec = importlib.util.spec_from_file_location("eval_vad", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules["eval_vad"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def test_eou_and_barge_in_on_real_speech_at_20_db() -> None:
    ev = load_eval()
    rows = ev.evaluate(langs=("he", "en"), noises=("white",), snrs=(20,), per_lang=4)
    table = ev.table(rows)
    print(table)
    for r in rows:
        assert r.n == 4 and r.missed == 0, table
        assert r.onset_ok >= 2 and r.eou_ok >= 2, table
        assert r.barge_n > 0 and r.barge_tp / r.barge_n >= 0.9, table
        assert r.barge_fp == 0, table  # noise alone and 80 / 150 ms clicks never interrupt the agent
        assert r.f1_ours >= 0.7, table
        assert all(0 <= lat <= 1100 for lat in r.latencies), table


def test_quieter_line_degrades_but_never_interrupts_on_noise() -> None:
    ev = load_eval()
    (r,) = ev.evaluate(langs=("en",), noises=("pink",), snrs=(5,), per_lang=3)
    assert r.barge_fp == 0
    (good,) = ev.evaluate(langs=("en",), noises=("pink",), snrs=(30,), per_lang=3)
    assert good.f1_ours > r.f1_ours


def test_main_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    ev = load_eval()
    assert ev.main(["--quick", "--snr", "20"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("| lang | noise | SNR dB") and out.count("\n| he |") + out.count("\n| en |") == 2
