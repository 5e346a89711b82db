// AgentLocator dashboard: polls the JSON API and redraws. No framework; uPlot for charts.
// Everything from the API is put in the page with textContent (transcripts are caller speech).
"use strict";
const AL = (() => {
  const REFRESH_MS = 2000;
  // The page's language (the server renders <html lang dir> from the al_lang cookie).
  const LANG = document.documentElement.lang === "en" ? "en" : "he";
  const T = (he, en) => (LANG === "en" ? en : he);
  const LOCALE = LANG === "en" ? "en-GB" : "he-IL";
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
    for (const c of children.flat()) {
      if (c === null || c === undefined) continue;
      node.append(c instanceof Node ? c : String(c));
    }
    return node;
  }
  const ltr = (text) => el("bdi", { dir: "ltr", class: "ltr" }, text ?? "—");

  // -- bidi: text whose direction we do not know (caller speech, names, the agent's lines in
  // either language) is isolated and takes the direction of its first strong letter
  // (dir="auto"), so "Hi, this is Noa…?" keeps its "?" at its end inside a Hebrew page; and a
  // number with its unit, a time or a phone number ("+972 50-123-4567", "1200 ms") is one
  // left-to-right run inside Hebrew text (left alone, the bidi algorithm would put "ms" before
  // "1200" and "+972" after the rest of the number).
  const LTR_RUN = /(?<![A-Za-z\d])\+?\d(?:[\d,.:\/\-]*\d)?(?:[ \u00a0]\+?\d(?:[\d,.:\/\-]*\d)?)*(?:[ \u00a0]?(?:ms|%|₪)(?![A-Za-z]))?/g;
  function mixed(text) {
    if (text === null || text === undefined || text === "") return ["—"];
    const out = [];
    let last = 0;
    for (const m of String(text).matchAll(LTR_RUN)) {
      if (m.index > last) out.push(text.slice(last, m.index));
      out.push(el("bdi", { dir: "ltr", class: "num" }, m[0]));
      last = m.index + m[0].length;
    }
    if (last < text.length) out.push(text.slice(last));
    return out;
  }
  // inline: an isolated run of unknown direction inside a line of the page's language
  const auto = (text) => el("bdi", { dir: "auto" }, ...mixed(text));
  // a block of its own (a transcript line, a message): aligned and punctuated by its own direction
  const autoBlock = (tag, attrs, text) => el(tag, { ...attrs, dir: "auto" }, ...mixed(text));

  const STATUS = LANG === "en"
    ? { new: "New", qualified: "Qualified", meeting_booked: "Meeting booked", lost: "Lost" }
    : { new: "חדש", qualified: "מתאים", meeting_booked: "נקבעה פגישה", lost: "לא רלוונטי" };
  const DEAL = LANG === "en" ? { buy: "Buy", rent: "Rent" } : { buy: "קנייה", rent: "שכירות" };
  const WHATSAPP = LANG === "en" ? {
    held: "Held until the call ends", pending: "Queued", sending: "Sending…", queued: "Queued at Twilio",
    accepted: "Accepted", sent: "Sent", delivered: "Delivered", read: "Read", failed: "Failed",
    undelivered: "Undelivered", dry_run: "Dry run (no Twilio)", received: "Received",
  } : {
    held: "ממתין לסוף השיחה", pending: "בתור", sending: "נשלח…", queued: "בתור אצל Twilio",
    accepted: "התקבל", sent: "נשלח", delivered: "נמסר", read: "נקרא", failed: "נכשל",
    undelivered: "לא נמסר", dry_run: "הדמיה (ללא Twilio)", received: "התקבל",
  };
  const fmtTime = (iso) => iso ? new Date(iso).toLocaleString(LOCALE, {
    timeZone: "Asia/Jerusalem", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
  }) : "—";
  const fmtDuration = (s) => s == null ? "—" : (s >= 60 ? Math.floor(s / 60) + ":" + String(Math.round(s % 60)).padStart(2, "0") + T(" דק׳", " min") : Math.round(s) + T(" שנ׳", " s"));
  const fmtMs = (v) => v == null ? "—" : Math.round(v) + " ms";
  const num = (v) => v == null ? "—" : Number(v).toLocaleString(LOCALE);
  const mean = (xs) => { const v = xs.filter((x) => x != null); return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null; };
  const share = (xs, ok) => { const v = xs.filter((x) => x != null); return v.length ? 100 * v.filter(ok).length / v.length : null; };

  function stamp(error) {
    const node = document.getElementById("refreshed");
    node.replaceChildren(...(error ? [T("שגיאה בעדכון: ", "Update failed: "), auto(error.message)]
      : [T("עודכן ", "Updated "), ltr(new Date().toLocaleTimeString(LOCALE, { timeZone: "Asia/Jerusalem" }))]));
    node.classList.toggle("error", Boolean(error));
  }

  // A card: its value and detail keep numbers with their units as one run ("775 ms") while a
  // count with a word stays in the page's order ("3 ניתוקים" reads 3 first in Hebrew).
  function kpi(title, value, detail, good, key) {
    const cls = good === undefined || good === null ? "kpi" : (good ? "kpi good" : "kpi bad");
    return el("div", { class: cls, "data-kpi": key }, el("div", { class: "kpi-title" }, title),
      el("div", { class: "kpi-value" }, ...mixed(value)), el("div", { class: "kpi-detail" }, ...(detail ? mixed(detail) : [])));
  }

  // -- the six metrics and the turn-taking figures over time ----------------------------------
  const CHARTS = [
    { id: "turn", title: T("השהיית תור (EOU → תחילת דיבור)", "Turn latency (EOU → speech starts)"), unit: "ms", series: [["turn_latency_ms", T("ממוצע לשיחה", "mean per call"), "#2563eb"]], target: "turn_latency_ms" },
    { id: "asr", title: T("השהיית זיהוי דיבור (EOU → טקסט)", "ASR latency (EOU → text)"), unit: "ms", series: [["asr_latency_ms", T("ממוצע לשיחה", "mean per call"), "#7c3aed"]], target: "asr_latency_ms" },
    { id: "halt", title: T("זמן עצירה בהתפרצות", "Barge-in halt time"), unit: "ms", series: [["halt_ms", T("מקסימום לשיחה", "max per call"), "#db2777"]], target: "halt_ms", cmp: "≤" },
    { id: "barge", title: T("הצלחת התפרצויות (עצירה נקייה)", "Barge-in success (clean halt)"), unit: "%", series: [["barge_in_success_pct", T("% נקיות", "% clean"), "#059669"]], fixed: 100 },
    { id: "turns", title: T("תורות לשיחה / עד פגישה", "Turns per call / to a meeting"), unit: "", series: [["turns", T("תורות בשיחה", "turns in the call"), "#0891b2"], ["turns_to_meeting", T("תורות עד פגישה", "turns to a meeting"), "#ea580c"]] },
    { id: "ws", title: T("יציבות קו: משך ופעימות", "Line stability: duration and heartbeats"), unit: "", series: [["duration_min", T("משך (דק׳)", "duration (min)"), "#475569"], ["heartbeats_per_min", T("פעימות לדקה", "heartbeats per min"), "#16a34a"], ["disconnect_mark", T("ניתוק", "disconnect"), "#dc2626"]] },
    // turn-taking as the caller hears it
    { id: "false", title: T("הפרעות שווא וחזרה לדבר", "False interruptions and resumes"), unit: "", series: [["false_interruptions", T("הפרעות שווא", "false interruptions"), "#d97706"], ["resumed", T("חזרה לדבר", "resumed"), "#0d9488"]] },
    { id: "talkover", title: T("דיבור חופף (הסוכנת מעל הלקוח)", "Talk-over (agent over the caller)"), unit: "ms", series: [["talk_over_max_ms", T("מקסימום לשיחה", "max per call"), "#be123c"], ["talk_over_p95_ms", T("p95 לשיחה", "p95 per call"), "#f472b6"]], target: "talk_over_ms", cmp: "≤" },
    { id: "deadair", title: T("שקט עד תגובה (סוף דיבור הלקוח → הסוכנת נשמעת)", "Dead air (caller stops → agent heard)"), unit: "ms", series: [["dead_air_max_ms", T("מקסימום לשיחה", "max per call"), "#4338ca"], ["dead_air_mean_ms", T("ממוצע לשיחה", "mean per call"), "#818cf8"]], target: "dead_air_ms", cmp: "≤" },
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
      const caption = el("figcaption", {}, ...mixed(spec.title + (spec.target ? T(" · יעד ", " · target ") + (spec.cmp ?? "<") + " " + targets[spec.target] + " ms" : "")));
      box.append(caption);
      host.append(box);
      const series = [{}].concat(spec.series.map(([, label, color]) => ({
        label, stroke: color, width: 1.5, spanGaps: true,
        points: { show: true, size: 6, fill: color },
      })));
      const line = spec.target ? targets[spec.target] : spec.fixed;
      const width = Math.max(200, box.clientWidth - 8);
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
    if (xRange) { u.setScale("x", { min: xRange[0], max: xRange[1] }); return; }  // the chosen range
    if (!xs.length) return;
    const min = xs[0], max = xs[xs.length - 1];
    if (max - min < 600) u.setScale("x", { min: min - 300, max: max + 300 });
  }

  function drawKpis(points, targets) {
    const last = points;  // the calls of the chosen range
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
    const shareOf = (xs, lim) => { const s = share(xs, (x) => x <= lim); return s == null ? "" : Math.round(s) + T("% עומדות ביעד", "% on target"); };
    document.getElementById("kpis").replaceChildren(
      kpi(T("השהיית תור", "Turn latency"), fmtMs(t), T("יעד < ", "target < ") + targets.turn_latency_ms + " ms · " + shareOf(turn, targets.turn_latency_ms), t == null ? null : t < targets.turn_latency_ms),
      kpi(T("השהיית זיהוי דיבור", "ASR latency"), fmtMs(a), T("יעד < ", "target < ") + targets.asr_latency_ms + " ms · " + shareOf(asr, targets.asr_latency_ms), a == null ? null : a < targets.asr_latency_ms),
      kpi(T("זמן עצירה בהתפרצות", "Barge-in halt"), fmtMs(h), T("יעד ≤ ", "target ≤ ") + targets.halt_ms + " ms · " + shareOf(halt, targets.halt_ms), h == null ? null : h <= targets.halt_ms),
      kpi(T("הצלחת התפרצויות", "Barge-in success"), bargePct == null ? "—" : Math.round(bargePct) + "%", T("עצירה נקייה וחזרה להאזנה", "clean halt, back to listening"), bargePct == null ? null : bargePct >= 95),
      kpi(T("תורות לשיחה", "Turns per call"), turnsMean == null ? "—" : turnsMean.toFixed(1), T("עד פגישה: ", "to a meeting: ") + (toMeeting == null ? "—" : toMeeting.toFixed(1))
        + T(" · מחזורי תור מלאים: ", " · full turn cycles: ") + (cycles == null ? "—" : Math.round(cycles) + "%")),
      kpi(T("יציבות קו", "Line stability"), disconnects + T(" ניתוקים", " disconnects"), T("משך ממוצע ", "mean duration ") + fmtDuration(dur) + " · " + (hb == null ? "—" : hb.toFixed(1)) + T(" פעימות/דקה", " heartbeats/min"), disconnects === 0),
      kpi(T("הפרעות שווא", "False interruptions"), num(falseInt), T("חזרה לדבר: ", "resumed: ") + num(resumed) + T(" · רעש שלא נענה: ", " · noise ignored: ") + num(ignored) + T(" · המשכים: ", " · continuations: ") + num(continuations), null, "false_interruptions"),
      kpi(T("דיבור חופף", "Talk-over"), fmtMs(to), parts(T("יעד ≤ ", "target ≤ ") + targets.talk_over_ms + " ms", shareOf(talk, targets.talk_over_ms),
        "p95: " + fmtMs(mean(last.map((p) => p.talk_over_p95_ms)))), to == null ? null : to <= targets.talk_over_ms, "talk_over"),
      kpi(T("שקט עד תגובה", "Dead air"), fmtMs(da), parts(T("יעד ≤ ", "target ≤ ") + targets.dead_air_ms + " ms", shareOf(dead, targets.dead_air_ms),
        T("ממוצע: ", "mean: ") + fmtMs(mean(last.map((p) => p.dead_air_mean_ms)))), da == null ? null : da <= targets.dead_air_ms, "dead_air"),
    );
  }

  // -- tables --------------------------------------------------------------------------------
  const leadLink = (phone, child) => el("a", { href: "/dashboard/leads/" + encodeURIComponent(phone) }, child);
  const empty = (cols, text) => el("tr", {}, el("td", { colspan: cols, class: "empty" }, text));

  function drawCalls(calls) {
    const rows = calls.map((c) => {
      const live = c.ended_at === null;
      const dur = live ? null : (new Date(c.ended_at) - new Date(c.started_at)) / 1000;
      const link = el("a", { href: "/dashboard/calls/" + encodeURIComponent(c.call_sid) }, live ? T("● חי", "● live") : T("הסתיימה", "ended"));
      return el("tr", { class: live ? "live" : null, "data-sid": c.call_sid },
        el("td", {}, link), el("td", {}, fmtTime(c.started_at)), el("td", {}, ltr(c.from)), el("td", {}, ltr(c.to)),
        el("td", {}, live ? "…" : fmtDuration(dur)), el("td", {}, num(c.turns)), el("td", {}, c.close_reason ? auto(c.close_reason) : "—"),
        el("td", {}, c.outcome ? (STATUS[c.outcome] ?? auto(c.outcome)) : "—"));
    });
    document.querySelector("#calls tbody").replaceChildren(...(rows.length ? rows : [empty(8, T("אין עדיין שיחות", "No calls yet"))]));
  }

  // the budget with the deal: "קנייה · 1,800,000 ₪", "שכירות · 8,000 ₪ לחודש"
  function budgetCell(l) {
    const deal = DEAL[l.deal] ?? null;
    if (l.budget_ils == null) return deal ?? "—";
    const amount = ltr(num(l.budget_ils) + " ₪");
    const parts = [];
    if (deal) parts.push(deal + " · ");
    parts.push(amount);
    if (l.deal === "rent") parts.push(T(" לחודש", " a month"));
    return el("span", {}, ...parts);
  }
  const statusBadge = (status) => el("span", { class: "badge " + status }, STATUS[status] ?? auto(status));
  const text = (v) => v == null || v === "" ? "—" : auto(v);

  function drawLeads(leads, outbox) {
    const whatsapp = {};
    for (const item of outbox) if (item.channel === "whatsapp" && !(item.phone in whatsapp)) whatsapp[item.phone] = item;
    const rows = leads.map((l) => {
      const w = whatsapp[l.phone];
      return el("tr", { "data-phone": l.phone },
        el("td", {}, leadLink(l.phone, ltr(l.phone))), el("td", {}, text(l.name)), el("td", {}, text(l.area)), el("td", {}, text(l.property_type)),
        el("td", {}, num(l.rooms)), el("td", {}, budgetCell(l)), el("td", {}, text(l.timeframe)),
        el("td", {}, statusBadge(l.status), l.needs_person ? [" ", el("span", { class: "badge needs-person", title: l.needs_person_reason ?? "" }, T("דרוש נציג", "needs a person"))] : null),
        el("td", {}, text(l.source)),
        el("td", {}, fmtTime(l.meeting_at)),
        el("td", {}, w ? el("span", { class: "badge wa-" + w.state, title: w.last_error ?? "" }, WHATSAPP[w.state] ?? w.state) : "—"),
        el("td", {}, fmtTime(l.created_at)), el("td", {}, fmtTime(l.updated_at)));
    });
    document.querySelector("#leads tbody").replaceChildren(...(rows.length ? rows : [empty(13, T("אין לידים", "No leads"))]));
    document.getElementById("leads-count").textContent = T(leads.length + " לידים", leads.length + " leads");
  }

  // -- the leads list's filters: the same query string for the table and its CSV -------------
  function leadQuery() {
    const form = document.getElementById("lead-filters");
    const params = new URLSearchParams();
    for (const [k, v] of new FormData(form)) if (String(v).trim()) params.set(k, String(v).trim());
    return params.toString();
  }

  function drawSources(sources) {
    const select = document.querySelector("#lead-filters select[name=source]");
    const have = [...select.options].slice(1).map((o) => o.value);
    if (have.join("\n") === sources.join("\n")) return;
    const chosen = select.value;
    select.replaceChildren(select.options[0], ...sources.map((s) => el("option", { value: s, dir: "auto" }, s)));
    select.value = sources.includes(chosen) ? chosen : "";
  }

  // -- the charts' range: today / 7 / 30 days (remembered in this browser) -------------------
  const RANGE_KEY = "al_range";
  let range = (() => { try { return localStorage.getItem(RANGE_KEY) || "7d"; } catch (e) { return "7d"; } })();

  function setRange(name) {
    range = name;
    try { localStorage.setItem(RANGE_KEY, name); } catch (e) { /* private mode: not remembered */ }
    for (const b of document.querySelectorAll("#range button")) b.setAttribute("aria-pressed", String(b.dataset.range === name));
  }

  let xRange = null;  // [since, until] of the last series, seconds
  async function refreshDashboard() {
    try {
      const query = leadQuery();
      document.getElementById("leads-csv").href = "/api/leads.csv" + (query ? "?" + query : "");
      const [calls, leads, outbox, series, sources] = await Promise.all([api("/api/calls"), api("/api/leads" + (query ? "?" + query : "")),
        api("/api/outbox"), api("/api/series?range=" + encodeURIComponent(range)), api("/api/lead_sources")]);
      drawCalls(calls);
      drawSources(sources);
      drawLeads(leads, outbox);
      xRange = [series.since, series.until];
      drawKpis(series.points, series.targets);
      drawCharts(series.points, series.targets);
      document.body.dataset.loaded = "1";
      document.body.dataset.range = series.range;
      stamp(null);
    } catch (e) { stamp(e); }
  }

  // uPlot draws at a fixed size: follow the boxes when the window (or a phone) turns
  function fitCharts() {
    for (const [id, u] of Object.entries(charts)) {
      const box = document.getElementById("chart-" + id);
      if (box) u.setSize({ width: Math.max(200, box.clientWidth - 8), height: 180 });
    }
  }

  function dashboard() {
    setRange(range);
    let resize = null;
    window.addEventListener("resize", () => { clearTimeout(resize); resize = setTimeout(fitCharts, 150); });
    for (const b of document.querySelectorAll("#range button")) {
      b.addEventListener("click", () => { setRange(b.dataset.range); refreshDashboard(); });
    }
    let timer = null;
    const form = document.getElementById("lead-filters");
    const soon = () => { clearTimeout(timer); timer = setTimeout(refreshDashboard, 250); };
    form.addEventListener("input", soon);
    form.addEventListener("change", soon);
    form.addEventListener("submit", (e) => { e.preventDefault(); refreshDashboard(); });
    poll(refreshDashboard);
  }

  // -- one call --------------------------------------------------------------------------------
  const STATE_COLORS = { LISTENING: "#bfdbfe", PROCESSING: "#fde68a", SPEAKING: "#bbf7d0" };

  const SPEAKER_COLORS = { agent: "#bbf7d0", caller: "#bfdbfe" };

  // The call on one line: the session's state changes when it reported them, else the
  // turns of the transcript; red ticks are barge-ins, faint blue ones marks. Time runs in the
  // page's reading direction.
  function drawStrip(events, transcript, endMs) {
    const strip = document.getElementById("strip");
    const total = Math.max(endMs, ...events.map((e) => e.t_ms), 1);
    const edge = LANG === "en" ? "left" : "right";
    const seg = (start, end, color, title) => el("span", {
      class: "seg", title,
      style: { [edge]: `${100 * start / total}%`, width: `${Math.max(0.2, 100 * (end - start) / total)}%`, background: color },
    });
    const tick = (t, cls, title) => el("span", { class: "tick " + cls, title, style: { [edge]: `${100 * t / total}%` } });
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
      ? T("כחול: מאזינה · צהוב: מעבדת · ירוק: מדברת · אדום: התפרצות", "blue: listening · yellow: processing · green: speaking · red: barge-in")
      : T("ירוק: הסוכנת מדברת · כחול: הלקוח מדבר · אדום: התפרצות", "green: agent speaks · blue: caller speaks · red: barge-in");
  }

  // One transcript line: the speaker in the page's language, the words in their own direction.
  function turnItem(t) {
    return el("li", { class: "turn " + t.speaker },
      el("div", { class: "who" }, t.speaker === "agent" ? T("סוכנת", "Agent") : T("לקוח", "Caller"), " · ", ltr((t.t_start_ms / 1000).toFixed(1) + "s")),
      autoBlock("div", { class: "text" }, t.text),
      t.heard_fully ? null : el("div", { class: "cut" }, T("נקטע (התפרצות)", "cut off (barge-in)")));
  }

  function callMetricCards(m) {
    const clean = m.barge_ins ? Math.round(100 * m.barge_ins_clean / m.barge_ins) + "%" : "—";
    const list = (xs) => xs.map((v) => Math.round(v)).join(" · ") || "—";
    // talk-over is recorded only for agent turns that had some: none at all is 0 ms
    const talkMax = m.talk_over_ms.length ? Math.max(...m.talk_over_ms) : 0;
    const deadMax = m.dead_air_ms.length ? Math.max(...m.dead_air_ms) : null;
    return [
      kpi(T("השהיית תור", "Turn latency"), fmtMs(mean(m.turn_latency_ms)), list(m.turn_latency_ms), m.turn_latency_ms.length ? mean(m.turn_latency_ms) < 1200 : null, "turn_latency"),
      kpi(T("השהיית זיהוי דיבור", "ASR latency"), fmtMs(mean(m.asr_latency_ms)), list(m.asr_latency_ms), m.asr_latency_ms.length ? mean(m.asr_latency_ms) < 700 : null, "asr_latency"),
      kpi(T("זמן עצירה", "Halt time"), fmtMs(m.halt_ms.length ? Math.max(...m.halt_ms) : null), list(m.halt_ms), m.halt_ms.length ? Math.max(...m.halt_ms) <= 200 : null, "halt"),
      kpi(T("התפרצויות", "Barge-ins"), m.barge_ins_clean + "/" + m.barge_ins, T("נקיות: ", "clean: ") + clean, null, "barge_ins"),
      kpi(T("פעימות keepalive", "Keepalive heartbeats"), String(m.heartbeats), "", null, "heartbeats"),
      kpi(T("הפרעות שווא", "False interruptions"), num(m.false_interruptions), T("חזרה לדבר: ", "resumed: ") + num(m.resumed) + T(" · רעש שלא נענה: ", " · noise ignored: ") + num(m.ignored) + T(" · המשכים: ", " · continuations: ") + num(m.continuations), null, "false_interruptions"),
      kpi(T("דיבור חופף", "Talk-over"), fmtMs(talkMax), T("מקסימום · ", "max · ") + list(m.talk_over_ms), talkMax <= 100, "talk_over"),
      kpi(T("שקט עד תגובה", "Dead air"), fmtMs(deadMax), T("מקסימום · ממוצע ", "max · mean ") + fmtMs(mean(m.dead_air_ms)) + " · " + list(m.dead_air_ms), deadMax == null ? null : deadMax <= 2000, "dead_air"),
    ];
  }

  async function refreshCall(sid) {
    try {
      const enc = encodeURIComponent(sid);
      const [call, events] = await Promise.all([api("/api/calls/" + enc), api("/api/calls/" + enc + "/timeline")]);
      const facts = [[T("מספר", "From"), ltr(call.from)], [T("אל", "To"), ltr(call.to)], [T("התחלה", "Started"), fmtTime(call.started_at)],
        [T("סיום", "Ended"), call.ended_at ? fmtTime(call.ended_at) : T("● שיחה חיה", "● live call")], [T("סיבת סיום", "Close reason"), text(call.close_reason)],
        [T("תורות", "Turns"), num(call.turns)], [T("תוצאה", "Outcome"), call.outcome ? (STATUS[call.outcome] ?? auto(call.outcome)) : "—"]];
      document.getElementById("call").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
      const leadA = document.getElementById("call-lead");
      if (leadA && call.lead_phone) { leadA.href = "/dashboard/leads/" + encodeURIComponent(call.lead_phone); leadA.hidden = false; }
      document.getElementById("metrics").replaceChildren(...callMetricCards(call.metrics));
      const endMs = Math.max(0, ...call.transcript.map((t) => t.t_end_ms), ...events.map((e) => e.t_ms));
      drawStrip(events, call.transcript, endMs);
      document.getElementById("timeline").hidden = events.length === 0;
      document.getElementById("timeline").replaceChildren(...events.map((e) => el("li", { class: "ev-" + e.kind },
        el("span", { class: "t" }, ltr((e.t_ms / 1000).toFixed(2) + "s")), el("span", { class: "kind" }, e.kind),
        // key=value pairs: the keys are code, a value may be the caller's Hebrew ("text=…?")
        el("span", { class: "detail", dir: "ltr" }, ...Object.entries(e.detail).flatMap(([k, v], i) =>
          [i ? " " : null, el("bdi", { dir: "ltr", class: "ltr" }, k + "="), auto(typeof v === "object" ? JSON.stringify(v) : String(v))])))));
      document.getElementById("transcript").replaceChildren(...call.transcript.map(turnItem));
      document.body.dataset.loaded = "1";
      stamp(null);
    } catch (e) { stamp(e); }
  }

  // -- one lead: everything that happened to it on one timeline, live -------------------------
  const DIAL_STATE = LANG === "en"
    ? { pending: "waiting", dialing: "dialling", calling: "on the line", done: "done", cancelled: "cancelled", failed: "failed" }
    : { pending: "ממתין", dialing: "מחייג", calling: "בשיחה", done: "הסתיים", cancelled: "בוטל", failed: "נכשל" };
  const DIAL_OUTCOME = LANG === "en"
    ? { completed: "answered", human: "answered", "no-answer": "no answer", busy: "busy", failed: "failed", canceled: "cancelled",
        machine: "answering machine", create_failed: "not placed", unknown: "unknown" }
    : { completed: "נענתה", human: "נענתה", "no-answer": "לא נענתה", busy: "תפוס", failed: "נכשלה", canceled: "בוטלה",
        machine: "משיבון", create_failed: "לא יצאה", unknown: "לא ידוע" };

  const KIND = {
    intake: T("נכנס", "Came in"), call: T("שיחה", "Call"), message: T("הודעה", "Message"),
    meeting: T("פגישה", "Meeting"), dial: T("ניסיון חיוג", "Dial attempt"), dial_job: T("חייגן", "Dialer"),
    opt_out: T("הסרה", "Opt-out"),
  };
  const DIRECTION = { inbound: T("נכנסת", "inbound"), outbound: T("יוצאת", "outbound") };
  const CHANNEL = { whatsapp: T("וואטסאפ", "WhatsApp"), webhook: T("Webhook ליד", "Lead webhook"), sms: "SMS" };

  function callEntry(c, open) {
    const dur = c.ended_at ? (new Date(c.ended_at) - new Date(c.started_at)) / 1000 : null;
    const head = [el("a", { href: "/dashboard/calls/" + encodeURIComponent(c.call_sid) }, T("שיחה ", "Call ") + (DIRECTION[c.direction] ?? "")),
      " · ", c.ended_at ? fmtDuration(dur) : el("span", { class: "live-dot" }, T("● חי", "● live")),
      " · ", T("תורות: ", "turns: "), ltr(String(c.turns))];
    if (c.outcome) head.push(" · ", STATUS[c.outcome] ?? auto(c.outcome));
    if (c.close_reason) head.push(" · ", auto(c.close_reason));
    const f = c.figures;
    const figs = f ? [[T("השהיית תור", "Turn latency"), fmtMs(f.turn_latency_ms)], [T("זיהוי דיבור", "ASR"), fmtMs(f.asr_latency_ms)],
      [T("עצירה", "Halt"), fmtMs(f.halt_ms)], [T("דיבור חופף", "Talk-over"), fmtMs(f.talk_over_max_ms)],
      [T("שקט עד תגובה", "Dead air"), fmtMs(f.dead_air_max_ms)]] : [];
    const details = el("details", { "data-key": c.call_sid },
      el("summary", {}, T("תמליל ומדדים", "Transcript and metrics") + " (" + c.transcript.length + ")"),
      figs.length ? el("ul", { class: "figures" }, ...figs.map(([k, v]) => el("li", {}, k + ": ", ltr(v)))) : null,
      el("ol", { class: "transcript" }, ...c.transcript.map(turnItem)));
    if (open) details.open = true;
    return [el("div", { class: "head" }, ...head), details];
  }

  const ACTION = LANG === "en"
    ? { opt_out: "opted out", confirm: "confirmed", offer: "new times offered", choose: "chose a time", book: "booked",
        cancel: "cancelled", handoff: "needs a person", reschedule: "reschedule" }
    : { opt_out: "הסרה", confirm: "אישר", offer: "הוצעו מועדים", choose: "בחר מועד", book: "נקבע",
        cancel: "ביטל", handoff: "דרוש נציג", reschedule: "שינוי מועד" };
  const REASON = LANG === "en" ? { intake: "new lead", operator: "call now", callback: "callback" }
    : { intake: "ליד חדש", operator: "חיוג יזום", callback: "חזרה מבוקשת" };

  function messageEntry(m) {
    const inbound = m.direction === "in";
    const head = [(CHANNEL[m.channel] ?? m.channel) + " · " + (inbound ? T("מהליד", "from the lead") : T("אלינו ← לליד", "to the lead"))];
    if (!inbound && m.state) head.push(" · ", el("span", { class: "badge wa-" + m.state, title: m.error ?? "" }, WHATSAPP[m.state] ?? m.state));
    if (!inbound && m.sent_as === "template") head.push(" · ", T("תבנית", "template"));
    if (inbound && m.action) head.push(" · ", el("span", { class: "badge action-" + m.action }, ACTION[m.action] ?? m.action));
    if (m.attempts > 1) head.push(" · ", T("ניסיונות: ", "attempts: "), ltr(String(m.attempts)));
    const error = m.error ?? m.last_error;
    return [el("div", { class: "head" }, ...head),
      m.body ? autoBlock("div", { class: "bubble " + (inbound ? "in" : "out") }, m.body) : null,
      error ? autoBlock("div", { class: "error" }, error) : null];
  }

  // what the form said: each field in the page's language, each value in its own direction
  const INTAKE_FIELDS = [["name", T("שם", "name")], ["area", T("אזור", "area")], ["property_type", T("סוג נכס", "property")],
    ["rooms", T("חדרים", "rooms")], ["budget_ils", T("תקציב", "budget")], ["deal", T("עסקה", "deal")],
    ["timeframe", T("מועד", "timeframe")], ["notes", T("הערות", "notes")]];
  function intakeEntry(i) {
    const head = [T("הליד נכנס", "Lead came in")];
    if (i.source) head.push(" · ", T("מקור: ", "source: "), auto(i.source));
    if (i.created_lead === false) head.push(" · ", T("ליד קיים עודכן", "an existing lead updated"));
    const f = i.fields || {};
    const given = INTAKE_FIELDS.filter(([k]) => f[k] != null && f[k] !== "").map(([k, label]) =>
      el("li", {}, label + ": ", k === "budget_ils" ? ltr(num(f[k]) + " ₪") : k === "deal" ? (DEAL[f[k]] ?? auto(f[k])) : auto(String(f[k]))));
    return [el("div", { class: "head" }, ...head), given.length ? el("ul", { class: "figures" }, ...given) : null];
  }

  function dialJobEntry(j) {
    const head = [T("לחיוג: ", "To call: "), REASON[j.reason] ?? auto(j.reason), " · ", DIAL_STATE[j.state] ?? auto(j.state)];
    if (j.due_at) head.push(" · ", T("הניסיון הבא ", "next attempt "), ltr(fmtTime(j.due_at)));
    return [el("div", { class: "head" }, ...head), j.note ? autoBlock("div", { class: "note" }, j.note) : null,
      j.last_error ? autoBlock("div", { class: "error" }, j.last_error) : null];
  }

  function dialEntry(d) {
    const head = [T("ניסיון ", "Attempt "), ltr(String(d.attempt)), " · ", DIAL_OUTCOME[d.outcome] ?? auto(d.outcome)];
    if (d.voicemail) head.push(" · ", T("הושארה הודעה קולית", "voicemail left"));
    if (d.call_sid) head.push(" · ", el("a", { href: "/dashboard/calls/" + encodeURIComponent(d.call_sid) }, T("לשיחה", "the call")));
    return [el("div", { class: "head" }, ...head)];
  }

  function timelineItem(item, openKeys) {
    let body;
    if (item.kind === "intake") body = intakeEntry(item);
    else if (item.kind === "call") body = callEntry(item, openKeys.has(item.call_sid));
    else if (item.kind === "message") body = messageEntry(item);
    else if (item.kind === "dial_job") body = dialJobEntry(item);
    else if (item.kind === "dial") body = dialEntry(item);
    else if (item.kind === "opt_out") body = [el("div", { class: "head" }, T("ביקש/ה להסיר: לא נתקשר ולא נשלח עוד", "Opted out: no more calls or messages"), " · ", auto(item.source))];
    else if (item.kind === "meeting") body = [el("div", { class: "head" }, T("פגישה נקבעה ל־", "Meeting at "), ltr(fmtTime(item.at)))];
    else body = [el("div", { class: "head" }, auto(item.kind))];
    const side = item.kind === "message" ? (item.direction === "in" ? " in" : " out") : "";
    return el("li", { class: "item kind-" + item.kind + side, "data-kind": item.kind, "data-direction": item.direction ?? null },
      el("div", { class: "when" }, ltr(fmtTime(item.at)), el("span", { class: "kind" }, KIND[item.kind] ?? item.kind)),
      el("div", { class: "what" }, ...body.flat()));
  }

  // "call now" and "opt out": the inflow's lead API, with the page's CSRF token
  function drawLeadActions(l) {
    const box = document.getElementById("lead-actions");
    const note = el("span", { class: "action-note", "aria-live": "polite" });
    const act = (label, path, ask) => {
      const button = el("button", { type: "button", "data-action": path }, label);
      if (l.opted_out || !l.status) button.disabled = true;
      button.addEventListener("click", async () => {
        if (ask && !confirm(ask)) return;
        button.disabled = true;
        try {
          const res = await post("/api/leads/" + encodeURIComponent(l.phone) + "/" + path);
          note.replaceChildren(...(path === "call" ? [T("בתור לחיוג: ", "Queued: "), ltr(fmtTime(res.due_at))]
            : path === "opt_out" ? [T("הוסר/ה", "Opted out")] : [T("הדגל הוסר", "Flag cleared")]));
          lastLead = null;
          refreshLead(l.phone);
        } catch (e) { note.replaceChildren(auto(e.message)); button.disabled = false; }
      });
      return button;
    };
    const drawn = [Boolean(l.opted_out), Boolean(l.needs_person)].join();
    if (box.dataset.drawn === drawn) return;  // keep the note across refreshes
    box.dataset.drawn = drawn;
    const buttons = [act(T("חייגו עכשיו", "Call now"), "call"),
      act(T("הסרה מרשימת התפוצה", "Opt out"), "opt_out", T("להסיר את המספר? לא נתקשר ולא נשלח אליו עוד.", "Opt this number out? No more calls or messages."))];
    if (l.needs_person) {
      const handled = act(T("טופל על ידי נציג", "Handled by a person"), "needs_person/clear");
      handled.disabled = false;
      buttons.push(handled);
    }
    box.replaceChildren(...buttons, note);
  }

  let lastLead = null;
  async function refreshLead(phone) {
    try {
      const res = await fetch("/api/leads/" + encodeURIComponent(phone) + "/timeline", { credentials: "same-origin", cache: "no-store" });
      if (res.status === 401) { location.reload(); return; }
      if (res.status === 404) {
        document.getElementById("lead-timeline").replaceChildren(el("li", { class: "empty" }, T("אין עדיין נתונים על המספר הזה", "Nothing about this number yet")));
        document.body.dataset.loaded = "1";
        stamp(null);
        return;
      }
      if (!res.ok) throw new Error("HTTP " + res.status);
      const raw = await res.text();
      if (raw !== lastLead) {  // redraw only on change: open transcripts and the scroll stay
        lastLead = raw;
        drawLead(JSON.parse(raw));
      }
      document.body.dataset.loaded = "1";
      stamp(null);
    } catch (e) { stamp(e); }
  }

  function drawLead(page) {
    const l = page.lead;
    document.getElementById("lead-name").replaceChildren(...(l.name ? mixed(l.name) : []));
    document.getElementById("lead-status").replaceChildren(l.status ? statusBadge(l.status) : "");
    const facts = [[T("אזור", "Area"), text(l.area)], [T("סוג נכס", "Property"), text(l.property_type)], [T("חדרים", "Rooms"), num(l.rooms)],
      [T("עסקה · תקציב", "Deal · budget"), budgetCell(l)], [T("מועד", "Timeframe"), text(l.timeframe)], [T("מקור", "Source"), text(l.source)],
      [T("פגישה", "Meeting"), l.meeting_at ? ltr(fmtTime(l.meeting_at)) : "—"], [T("נכנס", "Came in"), ltr(fmtTime(l.created_at))],
      [T("עודכן", "Updated"), ltr(fmtTime(l.updated_at))]];
    if (l.notes) facts.push([T("הערות", "Notes"), autoBlock("span", { class: "notes" }, l.notes)]);
    if (l.needs_person) facts.push([T("דרוש נציג", "Needs a person"), el("span", { class: "badge lost" }, ...mixed(l.needs_person_reason || T("כן", "yes")))]);
    if (l.opted_out) facts.push([T("הוסר/ה", "Opted out"), el("span", {}, ltr(fmtTime(l.opted_out.at)), " · ", auto(l.opted_out.source))]);
    document.getElementById("lead").replaceChildren(...facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
    drawLeadActions(l);
    const list = document.getElementById("lead-timeline");
    const openKeys = new Set([...list.querySelectorAll("details[open]")].map((d) => d.dataset.key));
    const items = page.timeline.map((item) => timelineItem(item, openKeys));
    list.replaceChildren(...(items.length ? items : [el("li", { class: "empty" }, T("אין עדיין אירועים", "Nothing yet"))]));
  }

  // -- the dialer: dial jobs waiting, recent attempts, outcomes --------------------------------
  async function refreshDialer() {
    try {
      const d = await api("/api/dialer");
      const name = (j) => j.name ? auto(j.name) : "—";
      const queue = d.queue.map((j) => el("tr", { "data-phone": j.phone },
        el("td", {}, leadLink(j.phone, ltr(j.phone))), el("td", {}, name(j)), el("td", {}, ltr(String(j.attempt ?? 1))),
        el("td", {}, ltr(fmtTime(j.due_at))), el("td", {}, REASON[j.reason] ?? text(j.reason)), el("td", {}, DIAL_STATE[j.state] ?? text(j.state))));
      document.querySelector("#dial-queue tbody").replaceChildren(...(queue.length ? queue
        : [empty(6, d.available ? T("התור ריק", "The queue is empty") : T("החייגן עוד לא פעיל במאגר הזה", "No dialer in this store yet"))]));
      const recent = d.recent.map((a) => el("tr", { "data-phone": a.phone },
        el("td", {}, leadLink(a.phone, ltr(a.phone))), el("td", {}, name(a)), el("td", {}, ltr(String(a.attempt ?? 1))),
        el("td", {}, ltr(fmtTime(a.at))), el("td", {}, DIAL_OUTCOME[a.outcome] ?? text(a.outcome)),
        el("td", {}, a.call_sid ? el("a", { href: "/dashboard/calls/" + encodeURIComponent(a.call_sid) }, T("לשיחה", "call")) : "—")));
      document.querySelector("#dial-done tbody").replaceChildren(...(recent.length ? recent : [empty(6, T("אין עדיין ניסיונות", "No attempts yet"))]));
      document.getElementById("dial-outcomes").replaceChildren(...Object.entries(d.outcomes).map(([k, v]) =>
        kpi(DIAL_OUTCOME[k] ?? k, String(v), "", null, k)));
      document.body.dataset.loaded = "1";
      stamp(null);
    } catch (e) { stamp(e); }
  }

  // -- the language switch: a preference cookie, then the server renders the other language --
  function languageSwitch() {
    const button = document.getElementById("lang-switch");
    if (!button) return;
    button.addEventListener("click", () => {
      document.cookie = "al_lang=" + button.dataset.lang + "; path=/; max-age=31536000; SameSite=Strict";
      location.reload();
    });
  }

  function poll(fn) { fn(); setInterval(fn, REFRESH_MS); }
  return {
    dashboard,
    callPage: (sid) => poll(() => refreshCall(sid)),
    leadPage: (phone) => poll(() => refreshLead(phone)),
    dialer: () => poll(refreshDialer),
    languageSwitch,
    mixed,
    post,
  };
})();

// No inline script (the CSP forbids it): the page says what it is in <body data-page>.
document.addEventListener("DOMContentLoaded", () => {
  AL.languageSwitch();
  const page = document.body.dataset.page;
  if (page === "dashboard") AL.dashboard();
  else if (page === "call") AL.callPage(document.body.dataset.callSid);
  else if (page === "lead") AL.leadPage(document.body.dataset.phone);
  else if (page === "dialer") AL.dialer();
});
