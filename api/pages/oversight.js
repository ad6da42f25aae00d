// Oversight page for auditors: the latest early-warning run, statistics, and the access log.
// Every server string goes in with textContent (never innerHTML); the CSP forbids inline script.
"use strict";

let token = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function showError(msg) {
  const e = document.getElementById("error");
  e.textContent = msg;
  e.hidden = false;
}

function takeToken() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("custody_token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("custody_token");
}

async function api(path, opts = {}) {
  const resp = await fetch(path, { ...opts, headers: { Authorization: "Bearer " + token } });
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(`${resp.status}: ${detail}`);
  }
  return resp.json();
}

function row(cells, cls) {
  const tr = el("tr", null, cls);
  for (const c of cells) tr.appendChild(el("td", c));
  return tr;
}

async function loadWarnings() {
  const w = await api("/api/v1/oversight/warnings?limit=500");
  document.getElementById("run-facts").textContent = w.run_id
    ? `检查 run ${w.run_id}: ${w.finished_at} (清单 item list v${w.item_list_version})`
    : "尚未检查 / no check has run yet";
  const counts = document.getElementById("counts");
  counts.replaceChildren();
  for (const [k, n] of Object.entries(w.counts)) counts.appendChild(el("li", `${k}: ${n}`));
  const tbody = document.querySelector("#warnings tbody");
  tbody.replaceChildren();
  for (const x of w.items) {
    const details = x.details.gaps ? x.details.gaps.map((g) => g.join(" - ")).join("; ") : JSON.stringify(x.details);
    tbody.appendChild(
      row([`${x.label_zh} (${x.kind})`, `${x.subject_type} ${x.subject_id}`, x.case_id || "", x.agency, x.officer, details],
        "kind-" + x.kind),
    );
  }
  const stats = document.querySelector("#stats tbody");
  stats.replaceChildren();
  for (const s of w.stats) {
    const rate = s.coverage_rate === null ? "-" : `${Math.round(s.coverage_rate * 100)}%`;
    stats.appendChild(row([s.agency, s.officer, s.records, s.required, s.covered, s.gaps, s.missing,
      s.missing_with_reason, rate, s.recordings]));
  }
}

async function loadAccess(ev) {
  if (ev) ev.preventDefault();
  const q = new URLSearchParams({ limit: "200" });
  const c = document.getElementById("q-case").value.trim();
  const a = document.getElementById("q-actor").value.trim();
  if (c) q.set("case_id", c);
  if (a) q.set("actor", a);
  const r = await api("/api/v1/oversight/access?" + q.toString());
  const tbody = document.querySelector("#access tbody");
  tbody.replaceChildren();
  for (const e of r.items) {
    tbody.appendChild(row([e.at, e.actor, e.action, `${e.subject_type} ${e.subject_id}`, e.client_addr, e.purpose]));
  }
}

async function start() {
  document.getElementById("login").hidden = true;
  document.getElementById("main").hidden = false;
  try {
    await loadWarnings();
    await loadAccess();
  } catch (e) {
    showError(e.message);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  token = takeToken();
  document.getElementById("access-form").addEventListener("submit", (ev) => loadAccess(ev).catch((e) => showError(e.message)));
  document.getElementById("run").addEventListener("click", async () => {
    try {
      await api("/api/v1/oversight/warnings/run", { method: "POST" });
      await loadWarnings();
    } catch (e) {
      showError(e.message);
    }
  });
  const login = document.getElementById("login");
  login.addEventListener("submit", (ev) => {
    ev.preventDefault();
    token = document.getElementById("login-token").value;
    sessionStorage.setItem("custody_token", token);
    start();
  });
  if (token) start(); else login.hidden = false;
});
