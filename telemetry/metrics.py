"""Prometheus metrics (prefix agentlocator_, names fixed in design.md).

Buckets are placed around the user's targets so the dashboard can read the share under
target straight from the histogram.

Under ``agentlocator serve --workers N`` the parent sets PROMETHEUS_MULTIPROC_DIR (a fresh
directory it removes at exit) before the workers start: prometheus-client then keeps every
worker's values in files there, and :func:`exposition` (/metrics, whichever worker answers)
adds them up. Gauges say how: ``calls_active`` is summed over the live workers.
"""
from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry(auto_describe=True)
# Read once, as prometheus-client itself does when it is first imported (values.ValueClass).
MULTIPROC_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def exposition() -> bytes:
    """The /metrics body: this process's metrics, or every worker's added up."""
    if MULTIPROC_DIR is None:
        return generate_latest(REGISTRY)
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry, MULTIPROC_DIR)
    return generate_latest(registry)


turn_latency_seconds = Histogram(
    "agentlocator_turn_latency_seconds", "EOU -> first TTS audio on the wire",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1.2, 1.5, 2.0, 3.0, 5.0), registry=REGISTRY,
)
asr_latency_seconds = Histogram(
    "agentlocator_asr_latency_seconds", "EOU -> ASR_TEXT",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0), registry=REGISTRY,
)
interrupt_halt_seconds = Histogram(
    "agentlocator_interrupt_halt_seconds", "barge-in voice onset -> clear sent (TTS halted)",
    buckets=(0.005, 0.01, 0.05, 0.1, 0.15, 0.2, 0.22, 0.25, 0.3, 0.5, 1.0), registry=REGISTRY,
)
barge_ins_total = Counter(
    "agentlocator_barge_ins_total", "barge-ins by outcome (clean|late)", ["outcome"], registry=REGISTRY
)
turns_per_call = Histogram(
    "agentlocator_turns_per_call", "caller turns per finished call",
    buckets=(1, 2, 3, 5, 8, 12, 20, 40), registry=REGISTRY,
)
turns_to_meeting = Histogram(
    "agentlocator_turns_to_meeting", "caller turns until a meeting was booked",
    buckets=(2, 3, 4, 5, 6, 8, 10, 15, 20), registry=REGISTRY,
)
state_cycles_total = Counter(
    "agentlocator_state_cycles_total", "LISTENING->PROCESSING->SPEAKING->LISTENING cycles", registry=REGISTRY
)
calls_active = Gauge("agentlocator_calls_active", "calls in progress", multiprocess_mode="livesum",
                     registry=REGISTRY)
ws_connections_total = Counter("agentlocator_ws_connections_total", "media websockets accepted", registry=REGISTRY)
call_duration_seconds = Histogram(
    "agentlocator_call_duration_seconds", "call length",
    buckets=(10, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600), registry=REGISTRY,
)
ws_disconnects_total = Counter(
    "agentlocator_ws_disconnects_total", "media websocket closes by reason", ["reason"], registry=REGISTRY
)
heartbeats_total = Counter("agentlocator_heartbeats_total", "keepalive marks sent", registry=REGISTRY)
provider_errors_total = Counter(
    "agentlocator_provider_errors_total", "ASR/TTS/brain provider errors", ["provider"], registry=REGISTRY
)
provider_fallbacks_total = Counter(
    "agentlocator_provider_fallbacks_total", "switches to a fallback provider", ["kind"], registry=REGISTRY
)
rule_violations_total = Counter(
    "agentlocator_rule_violations_total", "brain replies that broke a rule", ["rule"], registry=REGISTRY
)
brain_tool_corrections_total = Counter(
    "agentlocator_brain_tool_corrections_total",
    "slot values the model reported (or left out) that the caller's own words, read by the rules, corrected",
    ["slot"], registry=REGISTRY,
)
protocol_errors_total = Counter(
    "agentlocator_protocol_errors_total", "malformed / unknown Twilio frames", ["kind"], registry=REGISTRY
)
outbox_deliveries_total = Counter(
    "agentlocator_outbox_deliveries_total", "follow-up delivery attempts by channel and result "
    "(sent|delivered|dry_run|retry|failed)", ["channel", "result"], registry=REGISTRY,
)
# -- turn-taking as the caller lives it (server/turn.py verdicts, caller-side timings) --------
false_interruptions_total = Counter(
    "agentlocator_false_interruptions_total",
    "interruptions judged not a turn (no words, noise, a backchannel): the agent resumes", registry=REGISTRY,
)
resumed_total = Counter(
    "agentlocator_resumed_total", "cut agent turns resumed (their rest started playing)", registry=REGISTRY
)
utterances_ignored_total = Counter(
    "agentlocator_utterances_ignored_total", "caller utterances given no reply (too little voice, no words)",
    registry=REGISTRY,
)
continuations_total = Counter(
    "agentlocator_continuations_total", "replies dropped because the caller went on talking (one merged turn)",
    registry=REGISTRY,
)
talk_over_seconds = Histogram(
    "agentlocator_talk_over_seconds",
    "agent audio over the caller's voice per agent turn, outside a genuine barge-in's own halt time",
    buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0), registry=REGISTRY,
)
dead_air_seconds = Histogram(
    "agentlocator_dead_air_seconds", "caller's voice ended -> agent audio audible again (reply or resume)",
    buckets=(0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0), registry=REGISTRY,
)
# -- two-way WhatsApp (server/whatsapp.py) ------------------------------------------------------
whatsapp_inbound_total = Counter(
    "agentlocator_whatsapp_inbound_total", "WhatsApp messages from leads by what the brain did "
    "(offer|choose|book|confirm|cancel|opt_out|handoff|ignore|thanks) and which brain (rules|openai|none)",
    ["action", "brain"], registry=REGISTRY,
)
