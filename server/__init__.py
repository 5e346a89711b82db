"""The shell: Quart-Trio app, Twilio websocket, per-call session, pacer, keepalive, CLI."""
__version__ = "0.1.0"
