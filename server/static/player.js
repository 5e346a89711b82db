// The call page's recording: the audio player, the waveform of both channels (caller above,
// agent below) with the barge-ins and state changes marked, and the transcript in sync (the
// line being played is highlighted; a click on a line plays from there). A live call gets
// "listen" instead (mulaw.js). dashboard.js redraws #transcript every few seconds: the
// highlight is re-applied after each redraw, clicks are taken on the list itself.
"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const STATE_COLORS = { LISTENING: "#2563eb", PROCESSING: "#ca8a04", SPEAKING: "#16a34a", PAUSED: "#9333ea", ENDED: "#6b7280" };
  let lines = [];
  let current = -2;
  let duration = 0;

  async function json(path) {
    const res = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    return res.json();
  }

  // the line being played: the last one started by now (a caller talking over the agent
  // starts a later line, which then wins)
  function lineAt(ms) {
    let idx = -1;
    for (let i = 0; i < lines.length; i++) if (lines[i].t_start_ms <= ms) idx = i;
    return idx;
  }

  function highlight(force) {
    const audio = $("audio");
    const idx = audio.src ? lineAt(audio.currentTime * 1000) : -1;
    const list = $("transcript");
    if (idx === current && !force) return;
    current = idx;
    list.dataset.playing = String(idx);
    Array.from(list.children).forEach((li, i) => {
      li.classList.toggle("playing", i === idx);
      if (i === idx) li.setAttribute("aria-current", "true"); else li.removeAttribute("aria-current");
      li.title = i < lines.length ? "נגן מכאן" : "";
    });
    const node = list.children[idx];
    if (node && !force && !audio.paused) node.scrollIntoView({ block: "nearest" });
  }

  function tick() {
    const audio = $("audio");
    if (duration > 0) $("playhead").style.left = (100 * audio.currentTime / duration) + "%";
    highlight(false);
    if (!audio.paused) requestAnimationFrame(tick);
  }

  function seek(seconds) {
    const audio = $("audio");
    audio.currentTime = Math.max(0, seconds);
    tick();
    audio.play().catch(() => { /* no autoplay: the position is set anyway */ });
  }

  function drawWave(buffer) {
    const canvas = $("wave");
    const width = Math.max(300, Math.floor(canvas.clientWidth * (window.devicePixelRatio || 1)));
    canvas.width = width;
    const g = canvas.getContext("2d");
    const h = canvas.height, lane = h / 2;
    g.clearRect(0, 0, width, h);
    const colors = ["#2563eb", "#16a34a"];  // caller, agent
    for (let ch = 0; ch < Math.min(2, buffer.numberOfChannels); ch++) {
      const data = buffer.getChannelData(ch);
      const per = data.length / width;
      const mid = lane * ch + lane / 2;
      g.fillStyle = colors[ch];
      for (let x = 0; x < width; x++) {
        let lo = 0, hi = 0;
        const end = Math.min(data.length, Math.floor((x + 1) * per));
        for (let i = Math.floor(x * per); i < end; i++) { const v = data[i]; if (v < lo) lo = v; if (v > hi) hi = v; }
        const top = mid - hi * (lane / 2 - 2), bottom = mid - lo * (lane / 2 - 2);
        g.fillRect(x, top, 1, Math.max(1, bottom - top));
      }
    }
    g.fillStyle = "#e5e7eb";
    g.fillRect(0, lane, width, 1);
  }

  function drawMarks(events) {
    const marks = [];
    for (const e of events) {
      if (e.t_ms > duration * 1000) continue;
      const left = (100 * e.t_ms / (duration * 1000)) + "%";
      if (e.kind === "BARGE_IN") {
        const node = document.createElement("span");
        node.className = "mk barge";
        node.title = "התפרצות · " + (e.t_ms / 1000).toFixed(2) + "s";
        node.style.left = left;
        marks.push(node);
      } else if (e.kind === "STATE_CHANGE") {
        const state = e.detail.to_state ?? e.detail.to ?? e.detail.state;
        const node = document.createElement("span");
        node.className = "mk state";
        node.title = state + " · " + (e.t_ms / 1000).toFixed(2) + "s";
        node.style.left = left;
        node.style.background = STATE_COLORS[state] ?? "#6b7280";
        node.dataset.state = state;
        marks.push(node);
      }
    }
    $("wave-marks").replaceChildren(...marks);
  }

  async function showRecording(call) {
    const sid = document.body.dataset.callSid;
    const audio = $("audio");
    $("player").hidden = false;
    $("live").hidden = true;
    lines = call.transcript;
    audio.src = call.recording_url;
    const [raw, events] = await Promise.all([
      fetch(call.recording_url, { credentials: "same-origin" }).then((r) => r.arrayBuffer()),
      json("/api/calls/" + encodeURIComponent(sid) + "/timeline"),
    ]);
    // decoded at the file's own rate (8 kHz), not resampled to the sound card's
    const decoded = await new OfflineAudioContext(2, 1, 8000).decodeAudioData(raw);
    duration = decoded.duration;
    drawWave(decoded);
    drawMarks(events);
    highlight(true);
    document.body.dataset.player = "ready";
    document.body.dataset.recordingSeconds = duration.toFixed(2);
  }

  function showLive(sid) {
    $("live").hidden = false;
    const button = $("listen");
    if (location.hash === "#listen") {  // from the calls list's "האזנה": one click away
      $("live").scrollIntoView({ block: "start" });
      button.focus();
    }
    let session = null;
    button.onclick = () => {
      if (session) { session.close(); session = null; button.textContent = "האזנה"; return; }
      button.textContent = "הפסק האזנה";
      const status = $("listen-status");
      session = ALMedia.listen(sid, {
        onAudio(stats) {
          status.dataset.records = String(stats.records);
          status.textContent = "מתקבל שמע · " + stats.records + " מסגרות · השהיה " + stats.ahead_ms + " ms";
        },
        onMessage(m) {
          if (m.type === "line") {
            const li = document.createElement("li");
            li.className = "turn " + m.speaker;
            const text = document.createElement("div");
            text.className = "text";
            text.dir = "auto";
            text.textContent = m.text;
            li.append(text);
            $("live-lines").append(li);
            li.scrollIntoView({ block: "nearest" });
          } else if (m.type === "state") {
            status.dataset.state = m.state;
          } else if (m.type === "end") {
            status.textContent = "השיחה הסתיימה";
            status.dataset.ended = "1";
          }
        },
        onClose() { button.textContent = "האזנה"; session = null; },
      });
    };
  }

  async function start() {
    const sid = document.body.dataset.callSid;
    const list = $("transcript");
    list.addEventListener("click", (ev) => {
      const li = ev.target.closest("li");
      if (!li || !$("audio").src) return;
      const i = Array.prototype.indexOf.call(list.children, li);
      if (i >= 0 && i < lines.length) seek(lines[i].t_start_ms / 1000);
    });
    new MutationObserver(() => highlight(true)).observe(list, { childList: true });
    const audio = $("audio");
    audio.addEventListener("play", () => requestAnimationFrame(tick));
    audio.addEventListener("seeked", tick);
    audio.addEventListener("timeupdate", () => highlight(false));
    $("wave").addEventListener("click", (ev) => {
      const box = ev.currentTarget.getBoundingClientRect();
      if (duration > 0) seek(duration * (ev.clientX - box.left) / box.width);
    });
    let live = false;
    for (let attempt = 0; attempt < 400; attempt++) {
      let call = null;
      try { call = await json("/api/calls/" + encodeURIComponent(sid)); } catch (e) { /* try again */ }
      if (call && call.recording_url) { await showRecording(call); return; }
      if (call && !call.ended_at && !live) { live = true; showLive(sid); }
      if (call && call.ended_at && attempt > 10) return;  // ended without a recording (recordings off)
      await new Promise((r) => setTimeout(r, 3000));
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (document.body.dataset.page === "call") start();
  });
})();
