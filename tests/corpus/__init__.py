"""The caller-behaviour corpus: calls judged from the caller's side, in virtual time.

voices.py   caller audio, pre-rendered (espeak-ng he/en, synthetic speech, knock, cough, hum, line noise)
line.py     the phone line: TwilioEmulator + caller track, line noise, echo, inbound bursts, what played
oracle_asr.py  a Recognizer that knows the script (words by time, latency, partials)
agent.py    the agent's synthesizers (espeak-ng / synthetic, recording every text) and the brain spy
caller.py   the caller's script: steps, when each one starts (reacting to what it hears), the runner
judge.py    pure: records in, figures and verdicts out
scenarios.py   the corpus
harness.py  one scenario -> one call through server.session.run_call -> a Record
report.py   `python -m tests.corpus.report`: the behaviour table
"""
