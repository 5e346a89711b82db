"""Pipecat's pass-through Twilio pipeline: the baseline of the load comparison.

Runs in the bench's own environment, never in the project's (``make pipecat-venv`` installs
pipecat-ai from PyPI into artifacts/pipecat-venv), started by ``agentlocator load --pipecat``
(server/caller/load.py) with the same simulated Twilio callers as our server:

- ``POST /twiml`` answers TwiML that connects a <Stream> to this server (the callers fetch it
  first, as Twilio does); ``GET /version`` says it is up;
- ``/ws/twilio-media``: Pipecat's FastAPIWebsocketTransport with its TwilioFrameSerializer,
  and a pipeline ``input → echo → output`` that plays the caller's audio back (no VAD, no
  STT/LLM/TTS, no external service), 8 kHz in and out so nothing is resampled — as little
  work per frame as a Pipecat Twilio bot can do, served by uvicorn like Pipecat's examples.

Usage: ``python bench/pipecat_twilio.py PORT`` (loopback only).
"""
from __future__ import annotations

import json
import sys

import uvicorn
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import Response
from pipecat.frames.frames import Frame, InputAudioRawFrame, OutputAudioRawFrame
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.serializers.twilio import TwilioFrameSerializer
from pipecat.transports.websocket.fastapi import FastAPIWebsocketParams, FastAPIWebsocketTransport
from pipecat.workers.runner import WorkerRunner

WS_PATH = "/ws/twilio-media"
app = FastAPI()


class Echo(FrameProcessor):
    """The caller's audio, straight back out (the pass-through 'bot')."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, InputAudioRawFrame):
            await self.push_frame(OutputAudioRawFrame(audio=frame.audio, sample_rate=frame.sample_rate,
                                                      num_channels=frame.num_channels))
        else:
            await self.push_frame(frame, direction)


@app.get("/version")
async def version() -> dict:
    return {"server": "pipecat pass-through"}


@app.post("/twiml")
async def twiml(request: Request) -> Response:
    host = request.headers.get("host", "127.0.0.1")
    xml = (f'<?xml version="1.0" encoding="UTF-8"?><Response><Connect><Stream url="ws://{host}{WS_PATH}">'
           '<Parameter name="bench" value="pipecat"/></Stream></Connect></Response>')
    return Response(xml, media_type="application/xml")


@app.websocket(WS_PATH)
async def media(websocket: WebSocket) -> None:
    await websocket.accept()
    start = None
    for _ in range(3):  # `connected`, then `start` (what pipecat.runner.utils reads too)
        message = json.loads(await websocket.receive_text())
        if message.get("event") == "start":
            start = message["start"]
            break
    if start is None:
        await websocket.close(1008)
        return
    serializer = TwilioFrameSerializer(
        stream_sid=start["streamSid"], call_sid=start.get("callSid"),
        params=TwilioFrameSerializer.InputParams(auto_hang_up=False))  # no Twilio REST call at the end
    transport = FastAPIWebsocketTransport(websocket, FastAPIWebsocketParams(
        audio_in_enabled=True, audio_out_enabled=True, add_wav_header=False, serializer=serializer))
    worker = PipelineWorker(Pipeline([transport.input(), Echo(), transport.output()]),
                            params=PipelineParams(audio_in_sample_rate=8000, audio_out_sample_rate=8000),
                            idle_timeout_secs=None)

    @transport.event_handler("on_client_disconnected")
    async def on_disconnected(_transport: object, _client: object) -> None:
        await worker.cancel()

    await WorkerRunner(handle_sigint=False).run(worker)


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
