"""Every env var of design.md, read in one place and validated once at startup.

A bad value is a :class:`native.config.ConfigError` with a message naming the variable, so
`agentlocator serve` can print it and exit non-zero instead of failing mid-call.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlsplit

from native.config import ConfigError, TimingConfig

LANGUAGES = ("he-IL", "iw-IL", "en-US")
# Provider names (ASR_PROVIDER, TTS_PROVIDER, BRAIN) are checked by their own selectors in
# speech/ and dialog/, which know which ones exist; an unknown name fails startup there.


def _url(name: str, value: str | None, schemes: tuple[str, ...]) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigError(f"{name}={value!r} must be an absolute {'/'.join(schemes)} URL")
    return value.rstrip("/")


def _host_port(name: str, value: str | None) -> str | None:
    if not value:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{name}={value!r} must be host:port")
    return value


def _flag(name: str, value: str | None) -> bool:
    if value is None:
        return False
    lowered = value.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} must be 1 or 0")


def _positive(name: str, value: str | None, default: float, integer: bool = False) -> float:
    if value is None:
        return default
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} must be a positive {'integer' if integer else 'number'}") from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigError(f"{name}={value!r} must be a positive {'integer' if integer else 'number'}")
    return number


def _non_negative(name: str, value: str | None, default: float) -> float:
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} must be a number of seconds (0 or more)") from None
    if not number >= 0 or number == float("inf"):
        raise ConfigError(f"{name}={value!r} must be a number of seconds (0 or more)")
    return number


def _proxy_list(name: str, value: str | None) -> str:
    from server.security import TrustedProxies

    spec = value or "127.0.0.1,::1"
    try:
        TrustedProxies(spec)
    except ValueError as exc:
        raise ConfigError(f"{name}={value!r}: {exc}") from None
    return spec


def _hosts(name: str, value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    hosts = tuple(h.strip().lower() for h in value.split(",") if h.strip())
    for host in hosts:
        if host != "*" and ("/" in host or " " in host or "://" in host):
            raise ConfigError(f"{name}={value!r}: {host!r} is not a host name")
    return hosts


def _content_sid(name: str, value: str | None) -> str | None:
    """A Twilio Content SID: HX and 32 hex digits (Content Template Builder shows it)."""
    if value is None:
        return None
    if len(value) != 34 or not value.startswith("HX") or any(c not in "0123456789abcdefABCDEF" for c in value[2:]):
        raise ConfigError(f"{name}={value!r} must be a Content SID (HX and 32 hex digits)")
    return value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not one of {', '.join(allowed)}")
    return value


@dataclass(frozen=True, slots=True)
class Settings:
    public_base_url: str | None = None
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_whatsapp_from: str | None = None
    # the approved WhatsApp template (Content SID) for messages outside the 24-hour window
    twilio_whatsapp_template_sid: str | None = None
    google_application_credentials: str | None = None
    google_speech_endpoint: str | None = None
    google_tts_endpoint: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    openai_model: str | None = None
    database_url: str = "sqlite:///agentlocator.db"
    agent_language: str = "he-IL"
    asr_provider: str = "auto"
    tts_provider: str = "auto"
    brain: str = "auto"
    whisper_model: str | None = None
    dashboard_token: str | None = None
    lead_webhook_url: str | None = None
    port: int = 8080
    log_level: str = "INFO"
    # Security (README "Security"): the per-call websocket token secret, the explicit
    # "open without Twilio signatures" switch, trusted proxies, the dashboard's Host
    # allow-list, the /metrics + /version bearer token, and the call limits.
    agentlocator_secret: str | None = field(default=None, repr=False)
    insecure: bool = False
    forwarded_allow_ips: str = "127.0.0.1,::1"
    allowed_hosts: tuple[str, ...] = ()  # empty: the defaults (localhost names + PUBLIC_BASE_URL's host)
    metrics_token: str | None = field(default=None, repr=False)
    max_calls: int = 50
    max_call_minutes: float = 60.0
    # SIGTERM: no new calls; live ones go on this long, then hear the closing line (README
    # "Running at scale"). 0: the closing line at once.
    drain_seconds: float = 900.0
    workers: int | None = None  # WORKERS: `serve`'s default for --workers (None: the number of cores)
    timing: TimingConfig = field(default_factory=TimingConfig)
    # The raw environment, for the provider selectors of speech/ and dialog/ (they read
    # their own details from it; the checks above are the ones every setup shares).
    env: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = dict(os.environ if env is None else env)

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        port_raw = get("PORT") or "8080"
        if not port_raw.isdigit() or not 0 < int(port_raw) < 65536:
            raise ConfigError(f"PORT={port_raw!r} must be a TCP port number")
        database_url = get("DATABASE_URL") or "sqlite:///agentlocator.db"
        if "://" not in database_url and not database_url.startswith("sqlite:"):
            raise ConfigError(f"DATABASE_URL={database_url!r} is not a database URL")
        creds = get("GOOGLE_APPLICATION_CREDENTIALS")
        if creds and not os.path.isfile(creds):
            raise ConfigError(f"GOOGLE_APPLICATION_CREDENTIALS={creds!r}: no such file")
        secret = get("AGENTLOCATOR_SECRET")
        if secret is not None and len(secret) < 16:
            raise ConfigError("AGENTLOCATOR_SECRET must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        log_level = (get("LOG_LEVEL") or "INFO").upper()
        _choice("LOG_LEVEL", log_level, ("DEBUG", "INFO", "WARNING", "ERROR"))
        return cls(
            public_base_url=_url("PUBLIC_BASE_URL", get("PUBLIC_BASE_URL"), ("https", "http")),
            twilio_account_sid=get("TWILIO_ACCOUNT_SID"),
            twilio_auth_token=get("TWILIO_AUTH_TOKEN"),
            twilio_whatsapp_from=get("TWILIO_WHATSAPP_FROM"),
            twilio_whatsapp_template_sid=_content_sid("TWILIO_WHATSAPP_TEMPLATE_SID", get("TWILIO_WHATSAPP_TEMPLATE_SID")),
            google_application_credentials=creds,
            google_speech_endpoint=_host_port("GOOGLE_SPEECH_ENDPOINT", get("GOOGLE_SPEECH_ENDPOINT")),
            google_tts_endpoint=_host_port("GOOGLE_TTS_ENDPOINT", get("GOOGLE_TTS_ENDPOINT")),
            openai_api_key=get("OPENAI_API_KEY"),
            openai_base_url=_url("OPENAI_BASE_URL", get("OPENAI_BASE_URL"), ("https", "http")),
            openai_model=get("OPENAI_MODEL"),
            database_url=database_url,
            agent_language=_choice("AGENT_LANGUAGE", get("AGENT_LANGUAGE") or "he-IL", LANGUAGES),
            asr_provider=(get("ASR_PROVIDER") or "auto").lower(),
            tts_provider=(get("TTS_PROVIDER") or "auto").lower(),
            brain=(get("BRAIN") or "auto").lower(),
            whisper_model=get("WHISPER_MODEL"),
            dashboard_token=get("DASHBOARD_TOKEN"),
            lead_webhook_url=_url("LEAD_WEBHOOK_URL", get("LEAD_WEBHOOK_URL"), ("https", "http")),
            port=int(port_raw),
            log_level=log_level,
            agentlocator_secret=secret,
            insecure=_flag("AGENTLOCATOR_INSECURE", get("AGENTLOCATOR_INSECURE")),
            forwarded_allow_ips=_proxy_list("FORWARDED_ALLOW_IPS", get("FORWARDED_ALLOW_IPS")),
            allowed_hosts=_hosts("ALLOWED_HOSTS", get("ALLOWED_HOSTS")),
            metrics_token=get("METRICS_TOKEN"),
            max_calls=int(_positive("MAX_CALLS", get("MAX_CALLS"), 50, integer=True)),
            max_call_minutes=_positive("MAX_CALL_MINUTES", get("MAX_CALL_MINUTES"), 60.0),
            drain_seconds=_non_negative("DRAIN_SECONDS", get("DRAIN_SECONDS"), 900.0),
            workers=int(_positive("WORKERS", get("WORKERS"), 1, integer=True)) if get("WORKERS") else None,
            timing=TimingConfig.from_env(env),
            env=env,
        )
