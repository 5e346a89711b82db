// μ-law (G.711) both ways, and the listen-in client (a call's audio over a websocket into Web
// Audio). Shared by the call page (player.js) and the test-call page (talk.js).
"use strict";
const ALMedia = (() => {
  const RATE = 8000;
  const DECODE = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    const u = ~i & 0xff;
    let t = ((u & 0x0f) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    DECODE[i] = ((u & 0x80) ? (0x84 - t) : (t - 0x84)) / 32768;
  }

  function encodeSample(pcm) {  // int16 -> μ-law byte (CPython audioop's st_14linear2ulaw)
    const sign = pcm < 0 ? 0x80 : 0;
    if (sign) pcm = -pcm;
    if (pcm > 32635) pcm = 32635;
    pcm += 0x84;
    let exponent = 7;
    for (let mask = 0x4000; (pcm & mask) === 0 && exponent > 0; exponent--, mask >>= 1);
    const mantissa = (pcm >> (exponent + 3)) & 0x0f;
    return ~(sign | (exponent << 4) | mantissa) & 0xff;
  }

  function encode(int16) {
    const out = new Uint8Array(int16.length);
    for (let i = 0; i < int16.length; i++) out[i] = encodeSample(int16[i]);
    return out;
  }

  function toBase64(bytes) {
    let s = "";
    for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s);
  }

  function fromBase64(text) {
    const s = atob(text);
    const out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }

  // μ-law bytes -> a mono AudioBuffer at 8 kHz (Web Audio resamples on playback); its RMS too
  function buffer(ctx, bytes) {
    const buf = ctx.createBuffer(1, bytes.length, RATE);
    const data = buf.getChannelData(0);
    let sum = 0;
    for (let i = 0; i < bytes.length; i++) { const v = DECODE[bytes[i]]; data[i] = v; sum += v * v; }
    return { buf, rms: Math.sqrt(sum / Math.max(1, bytes.length)) * 32768 };
  }

  const wsUrl = (path) => (location.protocol === "https:" ? "wss://" : "ws://") + location.host + path;
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  // Listen to a live call: caller and agent frames arrive tagged with their sample position
  // on the call's clock and are scheduled there, so Web Audio mixes the two sides. Playback
  // runs DELAY_S behind the newest audio; a late frame (network stall) re-anchors the clock.
  const DELAY_S = 0.3;
  function listen(sid, handlers, withAudio = true) {
    const stats = { records: 0, messages: 0, resyncs: 0, ahead_ms: 0 };
    const ctx = withAudio ? new AudioContext() : null;
    let origin = null;
    const agentSources = [];
    let ws = null;
    let hello = false;
    let closed = false;

    function play(channel, pos, bytes) {
      const { buf } = buffer(ctx, bytes);
      let when = origin === null ? -1 : origin + pos / RATE;
      if (origin === null || when < ctx.currentTime || when > ctx.currentTime + 1.5) {
        origin = ctx.currentTime + DELAY_S - pos / RATE;
        when = origin + pos / RATE;
        stats.resyncs++;
      }
      stats.ahead_ms = Math.round((when - ctx.currentTime) * 1000);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      src.start(when);
      if (channel === 1) {
        const item = { src, pos };
        agentSources.push(item);
        src.onended = () => { const i = agentSources.indexOf(item); if (i >= 0) agentSources.splice(i, 1); };
      }
    }

    const onmessage = (ev) => {
      stats.messages++;
      if (typeof ev.data === "string") {
        const m = JSON.parse(ev.data);
        if (m.type === "hello") hello = true;
        if (m.type === "cut" && ctx) {  // barge-in: what was sent for after the cut never played
          for (const s of agentSources.slice()) if (s.pos >= m.pos) { try { s.src.stop(); } catch (e) { /* not started */ } }
        }
        handlers.onMessage?.(m, stats);
        return;
      }
      const view = new DataView(ev.data);
      let i = 0;
      while (i + 7 <= view.byteLength) {
        const channel = view.getUint8(i), pos = view.getUint32(i + 1, true), n = view.getUint16(i + 5, true);
        i += 7;
        if (ctx) play(channel, pos, new Uint8Array(ev.data, i, n));
        i += n;
        stats.records++;
      }
      handlers.onAudio?.(stats);
    };
    // Under `serve --workers N` the upgrade may reach a worker that does not run the call
    // (404): a new connection lands on another one, so a refused one is retried a few times.
    function connect(attempt) {
      ws = new WebSocket(wsUrl("/api/calls/" + encodeURIComponent(sid) + "/listen?csrf=" +
        encodeURIComponent(csrf()) + (withAudio ? "" : "&audio=0")));
      ws.binaryType = "arraybuffer";
      ws.onmessage = onmessage;
      ws.onclose = () => {
        if (!hello && !closed && attempt < 16) setTimeout(() => connect(attempt + 1), 250);
        else handlers.onClose?.(stats);
      };
    }
    connect(0);
    return {
      stats,
      close() { closed = true; ws.close(); if (ctx) ctx.close(); },
    };
  }

  return { RATE, DECODE, encode, toBase64, fromBase64, buffer, listen, wsUrl, csrf };
})();
