"""Fake OpenAI transcription endpoint (POST /v1/audio/transcriptions) on 127.0.0.1.

A real HTTP server the official openai client talks to via OPENAI_BASE_URL. It parses the
multipart upload, checks it is a 16 kHz mono WAV, and "transcribes" the tone-word language
(tolerant of the 8k -> 16k resampler's ringing: word numbers are multiples of 100).
"""
from __future__ import annotations

import io
import json
import threading
import time
import wave
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def decode_tolerant(pcm: bytes, rate: int) -> list[str]:
    frame = rate // 50
    s = np.frombuffer(pcm[: len(pcm) // (2 * frame) * 2 * frame], dtype="<i2").reshape(-1, frame).astype(float)
    med = np.median(s, axis=1)
    spread = np.percentile(np.abs(s - med[:, None]), 75, axis=1)
    values = np.where((np.abs(med) >= 50) & (spread < 0.05 * np.abs(med) + 20), np.round(med / 100) * 100, 0)
    words, current, run = [], 0, 0
    for v in list(values) + [0]:
        if v == current:
            run += 1
            continue
        if current and run >= 3:
            words.append(f"w{int(current)}")
        current, run = v, 1
    return words


class FakeOpenAI:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.status = 200
        self.delay_s = 0.0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                outer._handle(self, body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}/v1"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _handle(self, h: BaseHTTPRequestHandler, body: bytes) -> None:
        if h.path != "/v1/audio/transcriptions" or not h.headers.get("Authorization", "").startswith("Bearer "):
            return self._reply(h, 404, {"error": {"message": "not found"}})
        msg = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + h.headers["Content-Type"].encode() + b"\r\n\r\n" + body)
        fields, audio = {}, b""
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name == "file":
                audio = part.get_payload(decode=True)
            else:
                fields[name] = part.get_content().strip()
        with wave.open(io.BytesIO(audio)) as w:
            rate, channels, pcm = w.getframerate(), w.getnchannels(), w.readframes(w.getnframes())
        self.requests.append({**fields, "rate": rate, "channels": channels, "seconds": len(pcm) / 2 / rate})
        if self.delay_s:
            time.sleep(self.delay_s)
        if self.status != 200:
            return self._reply(h, self.status, {"error": {"message": "injected", "type": "server_error"}})
        self._reply(h, 200, {"text": " ".join(decode_tolerant(pcm, rate))})

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
