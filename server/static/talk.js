// "Talk to the agent": the microphone as a Twilio media stream (μ-law 8 kHz, 20 ms frames) to
// /dashboard/talk/ws, where the same call session as a phone call answers. The agent's
// frames are played in order; a `mark` is echoed when the audio before it has played, a
// `clear` stops what is queued and echoes the pending marks (as Twilio does). The live
// transcript comes on the same socket ({"event": "transcript"}, not a Twilio event).
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const stats = { sent: 0, agentFrames: 0, agentLoud: 0, marks: 0, clears: 0 };
  let ws = null, ctx = null, stream = null, node = null;
  let playHead = 0;
  let sources = [];
  let pending = [];  // marks waiting for their audio: {name, timer}

  function show(text) {
    const status = $("talk-status");
    for (const [k, v] of Object.entries(stats)) status.dataset[k] = String(v);
    if (text) $("talk-state").textContent = text;
    status.textContent = "נשלחו " + stats.sent + " מסגרות · התקבלו " + stats.agentFrames + " מהסוכנת";
  }

  function echo(mark) {
    clearTimeout(mark.timer);
    pending = pending.filter((m) => m !== mark);
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: "mark", mark: { name: mark.name } }));
    stats.marks++;
  }

  function onAgent(m) {
    if (m.event === "media") {
      const { buf, rms } = ALMedia.buffer(ctx, ALMedia.fromBase64(m.media.payload));
      const when = Math.max(playHead, ctx.currentTime + 0.05);
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.connect(ctx.destination);
      src.start(when);
      src.onended = () => { sources = sources.filter((s) => s !== src); };
      sources.push(src);
      playHead = when + buf.duration;
      stats.agentFrames++;
      if (rms > 300) stats.agentLoud++;
    } else if (m.event === "mark") {
      const mark = { name: m.mark.name, timer: 0 };
      mark.timer = setTimeout(() => echo(mark), Math.max(0, (playHead - ctx.currentTime) * 1000));
      pending.push(mark);
    } else if (m.event === "clear") {
      for (const s of sources) { try { s.stop(); } catch (e) { /* ended */ } }
      sources = [];
      playHead = ctx.currentTime;
      for (const mark of pending.slice()) echo(mark);
      stats.clears++;
    } else if (m.event === "browser") {
      const link = $("talk-call");
      link.href = "/dashboard/calls/" + encodeURIComponent(m.callSid);
      link.textContent = m.callSid;
      document.body.dataset.callSid = m.callSid;
    } else if (m.event === "transcript" && m.line.type === "line") {
      const line = m.line;
      const li = document.createElement("li");
      li.className = "turn " + line.speaker;
      const who = document.createElement("div");
      who.className = "who";
      who.textContent = line.speaker === "agent" ? "סוכנת" : "את/ה";
      const text = document.createElement("div");
      text.className = "text";
      text.dir = "auto";
      text.textContent = line.text;
      li.append(who, text);
      $("talk-lines").append(li);
      li.scrollIntoView({ block: "nearest" });
    }
    show();
  }

  async function start() {
    $("talk-start").disabled = true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true } });
    } catch (e) {
      $("talk-start").disabled = false;
      show("אין גישה למיקרופון: " + e.message);
      return;
    }
    ctx = new AudioContext();
    await ctx.audioWorklet.addModule($("talk-start").dataset.worklet);
    node = new AudioWorkletNode(ctx, "al-capture");
    const mute = ctx.createGain();
    mute.gain.value = 0;  // the worklet is pulled by the graph; the mic is not played back
    ctx.createMediaStreamSource(stream).connect(node);
    node.connect(mute).connect(ctx.destination);
    const from = $("talk-from").value.trim();
    ws = new WebSocket(ALMedia.wsUrl("/dashboard/talk/ws?csrf=" + encodeURIComponent(ALMedia.csrf()) +
      (from ? "&from=" + encodeURIComponent(from) : "")));
    ws.onopen = () => { show("מחובר · דברו"); $("talk-stop").disabled = false; document.body.dataset.talk = "open"; };
    ws.onmessage = (ev) => onAgent(JSON.parse(ev.data));
    ws.onclose = (ev) => { show("השיחה הסתיימה (" + ev.code + ")"); finish(); document.body.dataset.talk = "closed"; };
    node.port.onmessage = (ev) => {
      if (!ws || ws.readyState !== WebSocket.OPEN) return;
      ws.send(JSON.stringify({ event: "media", media: { payload: ALMedia.toBase64(ALMedia.encode(ev.data)) } }));
      stats.sent++;
      if (stats.sent % 25 === 0) show();
    };
  }

  function finish() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    if (node) node.port.onmessage = null;
    stream = node = null;
    $("talk-start").disabled = false;
    $("talk-stop").disabled = true;
  }

  function stop() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ event: "stop" }));
    finish();
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page !== "talk") return;
    $("talk-start").addEventListener("click", start);
    $("talk-stop").addEventListener("click", stop);
  });
})();
