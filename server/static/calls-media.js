// The dashboard's way to a call's audio: "האזנה" on every live call in the calls list (to its
// page, where listen-in starts with a click: browsers let only a gesture on that page start
// audio) and a link to the test-call page. dashboard.js redraws the list every few seconds;
// the links are put back after each redraw.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  if (document.body.dataset.page !== "dashboard") return;
  const sub = document.querySelector("header .sub");
  if (sub) {
    const talk = document.createElement("a");
    talk.href = "/dashboard/talk";
    talk.className = "talk-link";
    talk.textContent = "שיחת ניסיון עם הסוכנת";
    talk.style.marginInlineStart = "1rem";
    talk.style.color = "inherit";
    sub.after(talk);
  }
  const body = document.querySelector("#calls tbody");
  if (!body) return;
  const decorate = () => {
    for (const row of body.querySelectorAll("tr.live[data-sid]")) {
      const cell = row.cells[0];
      if (!cell || cell.querySelector("a.listen-link")) continue;
      const a = document.createElement("a");
      a.href = "/dashboard/calls/" + encodeURIComponent(row.dataset.sid) + "#listen";
      a.className = "listen-link";
      a.textContent = "האזנה";
      a.style.marginInlineStart = ".5rem";
      cell.append(" ", a);
    }
  };
  new MutationObserver(decorate).observe(body, { childList: true });
  decorate();
});
