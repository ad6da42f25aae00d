// Oversight page for auditors: the latest early-warning run, statistics, and the access log.
// Every server string goes in with textContent (never innerHTML); the CSP forbids inline script.
// Its words come translated from the server (the page's JSON data blocks); times are shown in the
// agency's zone with the zone named, as the server formats them (archive.localtime).
"use strict";

let token = null;

function data(id) {
  return JSON.parse(document.getElementById(id).textContent);
}
const TEXT = data("page-text"); // {key: "translated text with {placeholders}"}
const CLOCK = data("page-clock"); // {timezone, language, zone_names: {offset minutes: name}}
const LABELS = data("page-labels"); // {domain: {key: label}}

function t(key, values = {}) {
  return (TEXT[key] || key).replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

function label(domain, key) {
  return (LABELS[domain] || {})[key] || key;
}

const localTime = custodyClock(CLOCK); // clock.js: the agency's local time, to the second

function fmt(iso) {
  if (!iso) return "";
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? String(iso) : localTime(ms);
}

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

function details(d) {
  const parts = [];
  if (d.command) parts.push(t("calendar_year", { year: d.year, command: d.command }));
  if (d.missing_years) {
    const domain = t(d.domain === "publicity" ? "domain_publicity" : "domain_legal");
    const years = d.missing_years.join(t("list_sep"));
    parts.push(t("provisional_due", { domain, ref: d.ref, due: d.due, years }));
  }
  if (d.activity) parts.push(t("activity", { activity: d.activity }));
  if (d.gaps) parts.push(t("gaps", { gaps: d.gaps.map(([a, b]) => t("time_span", { start: fmt(a), end: fmt(b) })).join(t("list_sep")) }));
  if (d.received_at) parts.push(t("received", { time: fmt(d.received_at) }));
  if (d.why) parts.push(String(d.why));
  if (d.version !== undefined) parts.push(t("version", { version: d.version }));
  const known = new Set(["activity", "gaps", "received_at", "why", "version", "year", "since", "command",
    "domain", "ref", "due", "weekdays_due", "missing_years"]);
  const rest = Object.fromEntries(Object.entries(d).filter(([k]) => !known.has(k)));
  if (Object.keys(rest).length) parts.push(JSON.stringify(rest));
  return parts.join(" · ");
}

async function loadWarnings() {
  const w = await api("/api/v1/oversight/warnings?limit=500");
  document.getElementById("run-facts").textContent = w.run_id
    ? t("run_facts", { run: w.run_id, time: fmt(w.finished_at), version: w.item_list_version })
    : t("no_run");
  const counts = document.getElementById("counts");
  counts.replaceChildren();
  for (const [k, n] of Object.entries(w.counts)) {
    const li = el("li", t("count", { kind: label("warning", k), count: n }));
    li.dataset.kind = k;
    counts.appendChild(li);
  }
  const tbody = document.querySelector("#warnings tbody");
  tbody.replaceChildren();
  for (const x of w.items) {
    tbody.appendChild(
      row([label("warning", x.kind), `${label("subject", x.subject_type)} ${x.subject_id}`, x.case_id || "", x.agency,
        x.officer, details(x.details)], "kind-" + x.kind),
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
    tbody.appendChild(row([fmt(e.at), e.actor, e.action, `${label("subject", e.subject_type)} ${e.subject_id}`, e.client_addr, e.purpose]));
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
