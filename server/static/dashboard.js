// AgentLocator dashboard: polls the JSON API and redraws. No framework; uPlot for charts.
// Everything from the API is put in the page with textContent (transcripts are caller speech).
"use strict";
const AL = (() => {
  const REFRESH_MS = 2000;
  // Signed in by the HttpOnly session cookie (the token is never in a URL or in this script);
  // a state-changing request carries the page's CSRF token.
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  async function api(path) {
    const res = await fetch(path, { credentials: "same-origin", cache: "no-store" });
    if (res.status === 401) { location.reload(); throw new Error(path + ": signed out"); }
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    return res.json();
  }

  async function post(path, body) {
    const res = await fetch(path, {
      method: "POST", credentials: "same-origin", cache: "no-store",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf() },
      body: JSON.stringify(body ?? {}),
    });
    if (!res.ok) throw new Error(path + ": HTTP " + res.status);
    return res.status === 204 ? null : res.json();
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "class") node.className = v;
      else if (k === "style") Object.assign(node.style, v);  // CSSOM: allowed by the CSP, unlike a style attribute
      else node.setAttribute(k, v);
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }
  const ltr = (text) => el("bdi", { dir: "ltr", class: "ltr" }, text ?? "—");

  const STATUS = { new: "חדש", qualified: "מתאים", meeting_booked: "נקבעה פגישה", lost: "לא רלוונטי" };
  const DEAL = { buy: "קנייה", rent: "שכירות" };
  const WHATSAPP = {
    held: "ממתין לסוף השיחה", pending: "בתור", sending: "נשלח…", queued: "בתור אצל Twilio",
    accepted: "התקבל", sent: "נשלח", delivered: "נמסר", read: "נקרא", failed: "נכשל",
    undelivered: "לא נמסר", dry_run: "הדמיה (ללא Twilio)",
  };
  const fmtTime = (iso) => iso ? new Date(iso).toLocaleString("he-IL", {
    timeZone: "Asia/Jerusalem", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  }) : "—";
  const fmtDuration = (s) => s == null ? "—" : (s >= 60 ? Math.floor(s / 60) + ":" + String(Math.round(s % 60)).padStart(2, "0") + " דק׳" : Math.round(s) + " שנ׳");
  const fmtMs = (v) => v == null ? "—" : Math.round(v) + " ms";
  const num = (v) => v == null ? "—" : Number(v).toLocaleString("he-IL");
  const mean = (xs) => { const v = xs.filter((x) => x != null); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
  const share = (xs, ok) => { const v = xs.filter((x) => x != null); return v.length ? 100 * v.filter(ok).length / v.length : null; };

  function stamp(error) {
    const node = document.getElementById("refreshed");
    node.textContent = error ? "שגיאה בעדכון: " + error.message : "עודכן " + new Date().toLocaleTimeString("he-IL");
    node.classList.toggle("error", Boolean(error));
  }

  function kpi(title, value, detail, good, key) {
    const cls = good === undefined || good === null ? "kpi" : (good ? "kpi good" : "kpi bad");
    return el("div", { class: cls, "data-kpi": key }, el("div", { class: "kpi-title" }, title),
      el("div", { class: "kpi-value" }, ltr(value)), el("div", { class: "kpi-detail" }, detail));
  }

  // -- the six metrics and the turn-taking figures over time ----------------------------------
  const CHARTS = [
    { id: "turn", title: "השהיית תור (EOU → תחילת דיבור)", unit: "ms", series: [["turn_latency_ms", "ממוצע לשיחה", "#2563eb"]], target: "turn_latency_ms" },
    { id: "asr", title: "השהיית זיהוי דיבור (EOU → טקסט)", unit: "ms", series: [["asr_latency_ms", "ממוצע לשיחה", "#7c3aed"]], target: "asr_latency_ms" },
    { id: "halt", title: "זמן עצירה בהתפרצות", unit: "ms", series: [["halt_ms", "מקסימום לשיחה", "#db2777"]], target: "halt_ms", cmp: "≤" },
    { id: "barge", title: "הצלחת התפרצויות (עצירה נקייה)", unit: "%", series: [["barge_in_success_pct", "% נקיות", "#059669"]], fixed: 100 },
    { id: "turns", title: "תורות לשיחה / עד פגישה", unit: "", series: [["turns", "תורות בשיחה", "#0891b2"], ["turns_to_meeting", "תורות עד פגישה", "#ea580c"]] },
    { id: "ws", title: "יציבות קו: משך ופעימות", unit: "", series: [["duration_min", "משך (דק׳)", "#475569"], ["heartbeats_per_min", "פעימות לדקה", "#16a34a"], ["disconnect_mark", "ניתוק", "#dc2626"]] },
    // turn-taking as the caller hears it
    { id: "false", title: "הפרעות שווא וחזרה לדבר", unit: "", series: [["false_interruptions", "הפרעות שווא", "#d97706"], ["resumed", "חזרה לדבר", "#0d9488"]] },
    { id: "talkover", title: "דיבור חופף (הסוכנת מעל הלקוח)", unit: "ms", series: [["talk_over_max_ms", "מקסימום לשיחה", "#be123c"], ["talk_over_p95_ms", "p95 לשיחה", "#f472b6"]], target: "talk_over_ms", cmp: "≤" },
    { id: "deadair", title: "שקט עד תגובה (סוף דיבור הלקוח → הסוכנת נשמעת)", unit: "ms", series: [["dead_air_max_ms", "מקסימום לשיחה", "#4338ca"], ["dead_air_mean_ms", "ממוצע לשיחה", "#818cf8"]], target: "dead_air_ms", cmp: "≤" },
  ];
  const charts = {};

  function chartData(spec, points, targets) {
    const xs = points.map((p) => p.t);
    const cols = spec.series.map(([key]) => points.map((p) => {
      if (key === "duration_min") return p.duration_s == null ? null : p.duration_s / 60;
      if (key === "disconnect_mark") return p.disconnect ? 0 : null;
      return p[key] ?? null;
    }));
    return [xs, ...cols];
  }

  // The target is a horizontal rule across the whole plot (a series would need two points).
  function targetRule(value) {
    return (u) => {
      const y = u.valToPos(value, "y", true);
      const { ctx, bbox } = u;
      ctx.save();
      ctx.strokeStyle = "#dc2626";
      ctx.lineWidth = 1.5 * devicePixelRatio;
      ctx.setLineDash([6 * devicePixelRatio, 4 * devicePixelRatio]);
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      ctx.restore();
    };
  }

  function drawCharts(points, targets) {
    const host = document.getElementById("charts");
    for (const spec of CHARTS) {
      const data = chartData(spec, points, targets);
      if (charts[spec.id]) { charts[spec.id].setData(data); fitX(charts[spec.id], data[0]); continue; }
      const box = el("figure", { class: "chart", id: "chart-" + spec.id });
      const caption = el("figcaption", {}, spec.title + (spec.target ? " · יעד " + (spec.cmp ?? "<") + " " + targets[spec.target] + " ms" : ""));
      box.append(caption);
      host.append(box);
      const series = [{}].concat(spec.series.map(([, label, color]) => ({
        label, stroke: color, width: 1.5, spanGaps: true,
        points: { show: true, size: 6, fill: color },
      })));
      const line = spec.target ? targets[spec.target] : spec.fixed;
      const width = Math.max(260, box.clientWidth - 8);
      charts[spec.id] = new uPlot({
        width, height: 180, series,
        scales: {
          x: { time: true },
          // the target stays in view
          y: { range: (u, min, max) => [0, spec.unit === "%" ? 105 : Math.max(max ?? 0, (line ?? 0) * 1.25, 1)] },
        },
        axes: [{ stroke: "#475569" }, { stroke: "#475569", label: spec.unit, size: 50 }],
        legend: { live: false },
        hooks: line === undefined ? {} : { draw: [targetRule(line)] },
      }, data, box);
      fitX(charts[spec.id], data[0]);
    }
  }

  // A lone call (or a burst of them) still gets an axis in minutes, not years.
  function fitX(u, xs) {
    if (!xs.length) return;
    const min = xs[0], max = xs[xs.length - 1];
    if (max - min < 600) u.setScale("x", { min: min - 300, max: max + 300 });
  }

  function drawKpis(points, targets) {
    const last = points.slice(-50);
    const turn = last.map((p) => p.turn_latency_ms), asr = last.map((p) => p.asr_latency_ms), halt = last.map((p) => p.halt_ms);
    const bargePct = mean(last.map((p) => p.barge_in_success_pct));
    const disconnects = last.filter((p) => p.disconnect).length;
    const turnsMean = mean(last.map((p) => p.turns)), toMeeting = mean(last.map((p) => p.turns_to_meeting));
    const cycles = mean(last.map((p) => p.turn_taking_pct));
    const dur = mean(last.map((p) => p.duration_s)), hb = mean(last.map((p) => p.heartbeats_per_min));
    const t = mean(turn), a = mean(asr), h = mean(halt);
    // turn-taking: counts summed over the calls that measured them; talk-over and dead air as
    // the mean of each call's worst, like the halt time
    const sum = (key) => { const v = last.map((p) => p[key]).filter((x) => x != null); return v.length ? v.reduce((x, y) => x + y, 0) : null; };
    const falseInt = sum("false_interruptions"), resumed = sum("resumed"), ignored = sum("ignored"), continuations = sum("continuations");
    const talk = last.map((p) => p.talk_over_max_ms), dead = last.map((p) => p.dead_air_max_ms);
    const to = mean(talk), da = mean(dead);
    const parts = (...xs) => xs.filter(Boolean).join(" · ");
    const shareOf = (xs, lim) => { const s = share(xs, (x) => x <= lim); return s == null ? "" : Math.round(s) + "% עומדות ביעד"; };
    document.getElementById("kpis").replaceChildren(
      kpi("השהיית תור", fmtMs(t), "יעד < " + targets.turn_latency_ms + " ms · " + shareOf(turn, targets.turn_latency_ms), t == null ? null : t < targets.turn_latency_ms),
      kpi("השהיית זיהוי דיבור", fmtMs(a), "יעד < " + targets.asr_latency_ms + " ms · " + shareOf(asr, targets.asr_latency_ms), a == null ? null : a < targets.asr_latency_ms),
      kpi("זמן עצירה בהתפרצות", fmtMs(h), "יעד ≤ " + targets.halt_ms + " ms · " + shareOf(halt, targets.halt_ms), h == null ? null : h <= targets.halt_ms),
      kpi("הצלחת התפרצויות", bargePct == null ? "—" : Math.round(bargePct) + "%", "עצירה נקייה וחזרה להאזנה", bargePct == null ? null : bargePct >= 95),
      kpi("תורות לשיחה", turnsMean == null ? "—" : turnsMean.toFixed(1), "עד פגישה: " + (toMeeting == null ? "—" : toMeeting.toFixed(1))
        + " · מחזורי תור מלאים: " + (cycles == null ? "—" : Math.round(cycles) + "%")),
      kpi("יציבות קו", disconnects + " ניתוקים", "משך ממוצע " + fmtDuration(dur) + " · " + (hb == null ? "—" : hb.toFixed(1)) + " פעימות/דקה", disconnects === 0),
      kpi("הפרעות שווא", num(falseInt), "חזרה לדבר: " + num(resumed) + " · רעש שלא נענה: " + num(ignored) + " · המשכים: " + num(continuations), null, "false_interruptions"),
      kpi("דיבור חופף", fmtMs(to), parts("יעד ≤ " + targets.talk_over_ms + " ms", shareOf(talk, targets.talk_over_ms),
        "p95: " + fmtMs(mean(last.map((p) => p.talk_over_p95_ms)))), to == null ? null : to <= targets.talk_over_ms, "talk_over"),
      kpi("שקט עד תגובה", fmtMs(da), parts("יעד ≤ " + targets.dead_air_ms + " ms", shareOf(dead, targets.dead_air_ms),
        "ממוצע: " + fmtMs(mean(last.map((p) => p.dead_air_mean_ms)))), da == null ? null : da <= targets.dead_air_ms, "dead_air"),
    );
  }

  // -- tables --------------------------------------------------------------------------------
  function drawCalls(calls) {
    const rows = calls.map((c) => {
      const live = c.ended_at === null;
      const dur = live ? null : (new Date(c.ended_at) - new Date(c.started_at)) / 1000;
      const link = el("a", { href: "/dashboard/calls/" + encodeURIComponent(c.call_sid) }, live ? "● חי" : "הסתיימה");
      return el("tr", { class: live ? "live" : null, "data-sid": c.call_sid },
        el("td", {}, link), el("td", {}, fmtTime(c.started_at)), el("td", {}, ltr(c.from)), el("td", {}, ltr(c.to)),
        el("td", {}, live ? "…" : fmtDuration(dur)), el("td", {}, num(c.turns)), el("td", {}, c.close_reason ?? "—"),
        el("td", {}, c.outcome ? (STATUS[c.outcome] ?? c.outcome) : "—"));
    });
    document.querySelector("#calls tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 8, class: "empty" }, "אין עדיין שיחות"))]));
  }

  // the budget with the deal: "קנייה · 1,800,000 ₪", "שכירות · 8,000 ₪ לחודש"
  function budgetCell(l) {
    const deal = DEAL[l.deal] ?? null;
    if (l.budget_ils == null) return deal ?? "—";
    const amount = ltr(num(l.budget_ils) + " ₪");
    const parts = [];
    if (deal) parts.push(deal + " · ");
    parts.push(amount);
    if (l.deal === "rent") parts.push(" לחודש");
    return el("span", {}, ...parts);
  }

  function drawLeads(leads, outbox) {
    const whatsapp = {};
    for (const item of outbox) if (item.channel === "whatsapp" && !(item.phone in whatsapp)) whatsapp[item.phone] = item;
    const rows = leads.map((l) => {
      const w = whatsapp[l.phone];
      return el("tr", { "data-phone": l.phone },
        el("td", {}, ltr(l.phone)), el("td", {}, l.name ?? "—"), el("td", {}, l.area ?? "—"), el("td", {}, l.property_type ?? "—"),
        el("td", {}, num(l.rooms)), el("td", {}, budgetCell(l)), el("td", {}, l.timeframe ?? "—"),
        el("td", {}, el("span", { class: "badge " + l.status }, STATUS[l.status] ?? l.status)),
        el("td", {}, fmtTime(l.meeting_at)),
        el("td", {}, w ? el("span", { class: "badge wa-" + w.state, title: w.last_error ?? "" }, WHATSAPP[w.state] ?? w.state) : "—"),
        el("td", {}, fmtTime(l.updated_at)));
    });
    document.querySelector("#leads tbody").replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 11, class: "empty" }, "אין עדיין לידים"))]));
  }

  async function refreshDashboard() {
    try {
      const [calls, leads, outbox, series] = await Promise.all([api("/api/calls"), api("/api/leads"), api("/api/outbox"), api("/api/series")]);
      drawCalls(calls);
      drawLeads(leads, outbox);
      drawKpis(series.points, series.targets);
      drawCharts(series.points, series.targets);
      document.body.dataset.loaded = "1";
      stamp(null);
    } catch (e) { stamp(e); }
  }

  // -- one call --------------------------------------------------------------------------------
  const STATE_COLORS = { LISTENING: "#bfdbfe", PROCESSING: "#fde68a", SPEAKING: "#bbf7d0" };

  const SPEAKER_COLORS = { agent: "#bbf7d0", caller: "#bfdbfe" };

  // The call on one line: the session's state changes when it reported them, else the
  // turns of the transcript; red ticks are barge-ins, faint blue ones marks.
  function drawStrip(events, transcript, endMs) {
    const strip = document.getElementById("strip");
    const total = Math.max(endMs, ...events.map((e) => e.t_ms), 1);
    const seg = (start, end, color, title) => el("span", {
      class: "seg", title,
      style: { right: `${100 * start / total}%`, width: `${Math.max(0.2, 100 * (end - start) / total)}%`, background: color },
    });
    const tick = (t, cls, title) => el("span", { class: "tick " + cls, title, style: { right: `${100 * t / total}%` } });
    const nodes = [];
    const states = events.filter((e) => e.kind === "STATE_CHANGE");
    if (states.length) {
      states.forEach((e, i) => {
        const state = e.detail.to_state ?? e.detail.to ?? e.detail.state;
        const end = i + 1 < states.length ? states[i + 1].t_ms : total;
        nodes.push(seg(e.t_ms, end, STATE_COLORS[state] ?? "#e5e7eb", state));
      });
    } else {
      for (const t of transcript) {
        nodes.push(seg(t.t_start_ms, t.t_end_ms, SPEAKER_COLORS[t.speaker] ?? "#e5e7eb", t.speaker));
        if (t.speaker === "agent" && !t.heard_fully) nodes.push(tick(t.t_end_ms, "barge", "BARGE_IN"));
      }
    }
    for (const e of events) {
      if (e.kind === "BARGE_IN") nodes.push(tick(e.t_ms, "barge", e.kind));
      else if (e.kind.startsWith("MARK")) nodes.push(tick(e.t_ms, "mark", e.kind));
    }
    strip.replaceChildren(...nodes);
    document.getElementById("strip-legend").textContent = states.length
      ? "כחול: מאזינה · צהוב: מעבדת · ירוק: מדברת · אדום: התפרצות"
      : "ירוק: הסוכנת מדברת · כחול: הלקוח מדבר · אדום: התפרצות";
  }

  async function refreshCall(sid) {
    try {
      const enc = encodeURIComponent(sid);
      const [call, events] = await Promise.all([api("/api/calls/" + enc), api("/api/calls/" + enc + "/timeline")]);
      const facts = [["מספר", ltr(call.from)], ["אל", ltr(call.to)], ["התחלה", fmtTime(call.started_at)],
        ["סיום", call.ended_at ? fmtTime(call.ended_at) : "● שיחה חיה"], ["סיבת סיום", call.close_reason ?? "—"],
        ["תורות", num(call.turns)], ["תוצאה", call.outcome ? (STATUS[call.outcome] ?? call.outcome) : "—"]];
      document.getElementById("call").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
      const m = call.metrics;
      const clean = m.barge_ins ? Math.round(100 * m.barge_ins_clean / m.barge_ins) + "%" : "—";
      const list = (xs) => xs.map((v) => Math.round(v)).join(" · ") || "—";
      // talk-over is recorded only for agent turns that had some: none at all is 0 ms
      const talkMax = m.talk_over_ms.length ? Math.max(...m.talk_over_ms) : 0;
      const deadMax = m.dead_air_ms.length ? Math.max(...m.dead_air_ms) : null;
      document.getElementById("metrics").replaceChildren(
        kpi("השהיית תור", fmtMs(mean(m.turn_latency_ms)), m.turn_latency_ms.map((v) => Math.round(v)).join(" · ") || "—", m.turn_latency_ms.length ? mean(m.turn_latency_ms) < 1200 : null),
        kpi("השהיית זיהוי דיבור", fmtMs(mean(m.asr_latency_ms)), m.asr_latency_ms.map((v) => Math.round(v)).join(" · ") || "—", m.asr_latency_ms.length ? mean(m.asr_latency_ms) < 700 : null),
        kpi("זמן עצירה", fmtMs(m.halt_ms.length ? Math.max(...m.halt_ms) : null), m.halt_ms.map((v) => Math.round(v)).join(" · ") || "—", m.halt_ms.length ? Math.max(...m.halt_ms) <= 200 : null),
        kpi("התפרצויות", m.barge_ins_clean + "/" + m.barge_ins, "נקיות: " + clean),
        kpi("פעימות keepalive", String(m.heartbeats), ""),
        kpi("הפרעות שווא", num(m.false_interruptions), "חזרה לדבר: " + num(m.resumed) + " · רעש שלא נענה: " + num(m.ignored) + " · המשכים: " + num(m.continuations), null, "false_interruptions"),
        kpi("דיבור חופף", fmtMs(talkMax), "מקסימום · " + list(m.talk_over_ms), talkMax <= 100, "talk_over"),
        kpi("שקט עד תגובה", fmtMs(deadMax), "מקסימום · ממוצע " + fmtMs(mean(m.dead_air_ms)) + " · " + list(m.dead_air_ms), deadMax == null ? null : deadMax <= 2000, "dead_air"),
      );
      const endMs = Math.max(0, ...call.transcript.map((t) => t.t_end_ms), ...events.map((e) => e.t_ms));
      drawStrip(events, call.transcript, endMs);
      document.getElementById("timeline").hidden = events.length === 0;
      document.getElementById("timeline").replaceChildren(...events.map((e) => el("li", { class: "ev-" + e.kind },
        el("span", { class: "t" }, ltr((e.t_ms / 1000).toFixed(2) + "s")), el("span", { class: "kind" }, e.kind),
        el("span", { class: "detail" }, ltr(Object.entries(e.detail).map(([k, v]) => k + "=" + v).join(" "))))));
      document.getElementById("transcript").replaceChildren(...call.transcript.map((t) => el("li", { class: "turn " + t.speaker },
        el("div", { class: "who" }, t.speaker === "agent" ? "סוכנת" : "לקוח", " · ", ltr((t.t_start_ms / 1000).toFixed(1) + "s")),
        el("div", { class: "text" }, t.text), t.heard_fully ? null : el("div", { class: "cut" }, "נקטע (התפרצות)"))));
      document.body.dataset.loaded = "1";
      stamp(null);
    } catch (e) { stamp(e); }
  }

  function poll(fn) { fn(); setInterval(fn, REFRESH_MS); }
  return {
    dashboard: () => poll(refreshDashboard),
    callPage: (sid) => poll(() => refreshCall(sid)),
    post,
  };
})();

// No inline script (the CSP forbids it): the page says what it is in <body data-page>.
document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  if (page === "dashboard") AL.dashboard();
  else if (page === "call") AL.callPage(document.body.dataset.callSid);
});
