// Case review page: players side by side on one corrected clock, text records beside them.
// Every string from the server goes into the page with textContent (never innerHTML), so a
// "<script>" typed into a record is shown as text and never runs. The CSP forbids inline script too.
// The words this script writes come translated from the server (the page's JSON data blocks), and
// times are shown in the agency's zone with the zone named, as the server formats them.
"use strict";

function data(id) {
  return JSON.parse(document.getElementById(id).textContent);
}
const TEXT = data("page-text"); // {key: "translated text with {placeholders}"}
const CLOCK = data("page-clock"); // {timezone, language, zone_names: {offset minutes: name}}
const LABELS = data("page-labels"); // {domain: {key: label}}: stage, doc_kind, case_kind, case_status

function t(key, values = {}) {
  return (TEXT[key] || key).replace(/\{(\w+)\}/g, (m, name) => (name in values ? String(values[name]) : m));
}

function label(domain, key) {
  return (LABELS[domain] || {})[key] || key;
}

const state = {
  token: null,
  caseId: decodeURIComponent(location.pathname.split("/").filter(Boolean)[1] || ""),
  players: [], // {el, start, end, box} - start/end in ms on the corrected clock
  photos: [], // {box, at}
  records: [], // {li, start, end}
  t0: 0,
  t1: 0,
  now: 0, // ms on the case clock
  playing: false,
  wallStart: 0,
  clockStart: 0,
  syncing: false,
};

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

const fmt = custodyClock(CLOCK, { millis: true }); // clock.js: the agency's local time, milliseconds when any

function showError(msg) {
  const e = document.getElementById("error");
  e.textContent = msg;
  e.hidden = false;
}

function takeToken() {
  // A token in the fragment never reaches a server or its logs; drop it from the address bar at once.
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    sessionStorage.setItem("custody_token", decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("custody_token");
}

async function api(path, opts = {}) {
  const resp = await fetch(path, {
    ...opts,
    credentials: "same-origin",
    headers: { Authorization: "Bearer " + state.token, ...(opts.headers || {}) },
  });
  if (!resp.ok) {
    let detail = resp.statusText;
    try { detail = (await resp.json()).detail; } catch (e) { /* not JSON */ }
    throw new Error(`${resp.status}: ${detail}`);
  }
  if (opts.raw) return resp;
  return resp.status === 204 ? null : resp.json();
}

// ---------------------------------------------------------------- the one clock

function seekAll(t) {
  state.now = Math.min(Math.max(t, state.t0), state.t1);
  state.syncing = true;
  for (const p of state.players) placePlayer(p, state.now, true);
  state.syncing = false;
  render();
}

function placePlayer(p, t, force) {
  const inside = t >= p.start && t <= p.end;
  p.box.classList.toggle("outside", !inside);
  const want = Math.max(0, Math.min(t, p.end) - p.start) / 1000;
  const apply = () => {
    if (force || Math.abs(p.el.currentTime - want) > 0.3) p.el.currentTime = want;
  };
  if (p.el.readyState >= 1) apply();
  else p.el.addEventListener("loadedmetadata", () => placePlayer(p, state.now, true), { once: true });
  if (state.playing && inside && p.el.paused) p.el.play().catch(() => {});
  if ((!state.playing || !inside) && !p.el.paused) p.el.pause();
}

function render() {
  document.getElementById("now").textContent = fmt(state.now);
  const span = Math.max(1, state.t1 - state.t0);
  document.getElementById("scrub").value = String(Math.round(((state.now - state.t0) / span) * 1000));
  // Current record: the ones whose window holds the clock; else the last one that started before it.
  let current = state.records.filter((r) => r.start <= state.now && state.now <= r.end);
  if (!current.length) {
    const before = state.records.filter((r) => r.start <= state.now);
    current = before.length ? [before[before.length - 1]] : [];
  }
  for (const r of state.records) r.li.classList.toggle("current", current.includes(r));
  for (const ph of state.photos) ph.box.classList.toggle("current", Math.abs(ph.at - state.now) <= 5000);
}

function tick() {
  if (!state.playing) return;
  state.now = state.clockStart + (performance.now() - state.wallStart);
  if (state.now >= state.t1) {
    state.now = state.t1;
    setPlaying(false);
  }
  for (const p of state.players) placePlayer(p, state.now, false);
  render();
  requestAnimationFrame(tick);
}

function setPlaying(on) {
  state.playing = on;
  document.getElementById("play").textContent = on ? t("pause") : t("play");
  if (on) {
    state.wallStart = performance.now();
    state.clockStart = state.now;
    requestAnimationFrame(tick);
  }
  for (const p of state.players) placePlayer(p, state.now, false);
}

// ---------------------------------------------------------------- building the page

function mediaBox(item) {
  const box = el("figure", item.kind === "image" ? "photo" : "player");
  box.dataset.mediaId = item.id;
  let node;
  if (item.kind === "image") {
    node = el("img");
    node.alt = item.file_name;
    node.src = item.proxy_url;
  } else {
    node = el(item.kind === "audio" ? "audio" : "video");
    node.controls = true;
    node.preload = "metadata";
    if (item.poster_url && item.kind === "video") node.poster = item.poster_url;
    node.src = item.proxy_url;
    // proxy_url redirects to a storage URL that expires after minutes: when a later range request
    // fails, ask the API again (a new, logged access) and carry on where playback was.
    let reloads = 0;
    node.addEventListener("error", () => {
      if (reloads >= 3) return;
      reloads += 1;
      const at = node.currentTime, playing = !node.paused;
      node.src = item.proxy_url;
      node.addEventListener("loadedmetadata", () => {
        node.currentTime = at;
        if (playing) node.play().catch(() => {});
      }, { once: true });
    });
    node.addEventListener("playing", () => { reloads = 0; });
  }
  box.append(node);
  const meta = el("figcaption", "meta");
  meta.append(el("strong", null, item.file_name), el("br"));
  meta.append(document.createTextNode(t("officer_device", { officer: item.officer, device: item.device })), el("br"));
  meta.append(document.createTextNode(item.start ? `${fmt(Date.parse(item.start))} → ${fmt(Date.parse(item.end))}` : t("time_unknown")), el("br"));
  const corr = el("span", "correction", item.correction);
  if (item.recorded_at_device) {
    const source = item.device_time_source === "metadata" ? t("source_metadata") : t("source_file");
    corr.title = t("device_clock_said", { time: fmt(Date.parse(item.recorded_at_device)), source });
  }
  meta.append(corr);
  box.append(meta);
  return { box, node };
}

function recordItem(r, names) {
  const li = el("li", "record");
  li.tabIndex = 0;
  li.dataset.recordId = r.record_id;
  const h = el("h3");
  const stage = el("span", "tag stage", label("stage", r.stage));
  stage.dataset.stage = r.stage;
  const kind = el("span", "tag doc-kind", label("doc_kind", r.doc_kind));
  kind.dataset.docKind = r.doc_kind;
  h.append(stage, kind, document.createTextNode(r.title || label("doc_kind", r.doc_kind)));
  li.append(h);
  li.append(el("p", "when", `${fmt(Date.parse(r.start))} → ${fmt(Date.parse(r.end))} · ${t("version", { version: r.version })}`));
  let who = t("author", { author: r.author });
  if (r.officers.length) who += " · " + t("officers", { officers: r.officers.join(t("list_sep")) });
  li.append(el("p", "who", who));
  li.append(el("p", "body", r.body));
  if (r.attachments.length) {
    // Scans and PDFs archived with the record: named here; the originals are in the case's media.
    li.append(el("p", "attachments", t("attachments", { names: r.attachments.map((id) => names[id] || id).join(t("list_sep")) })));
  }
  const go = () => seekAll(Date.parse(r.start));
  li.addEventListener("click", go);
  li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
  return li;
}

function build(tl) {
  const c = tl.case;
  document.title = t("page_title", { number: c.number });
  document.getElementById("case-title").textContent = t("case_title", { number: c.number, title: c.title });
  let facts = t("case_facts", {
    kind: label("case_kind", c.kind),
    stage: label("stage", c.stage),
    status: label("case_status", c.status),
  });
  if (c.reviewers.length) facts += " · " + t("reviewers", { names: c.reviewers.join(t("list_sep")) });
  document.getElementById("case-facts").textContent = facts;
  document.getElementById("case-facts").dataset.stage = c.stage;
  const times = [];
  const names = {};
  for (const item of tl.items) if (item.type === "media") names[item.id] = item.file_name;
  for (const item of tl.items) {
    if (item.type === "record") {
      const li = recordItem(item, names);
      document.getElementById("records").append(li);
      const r = { li, start: Date.parse(item.start), end: Date.parse(item.end) };
      state.records.push(r);
      times.push(r.start, r.end);
      continue;
    }
    if (!item.proxy_url || !item.start) continue; // nothing a browser can show, or no time to place it
    const { box, node } = mediaBox(item);
    const start = Date.parse(item.start);
    const end = Date.parse(item.end);
    times.push(start, end);
    if (item.kind === "image") {
      document.getElementById("photos").append(box);
      state.photos.push({ box, at: start });
      box.addEventListener("click", () => seekAll(start));
      continue;
    }
    document.getElementById(item.kind === "audio" ? "audios" : "videos").append(box);
    const p = { el: node, start, end, box };
    state.players.push(p);
    // A person using one player's own controls moves the whole case clock.
    node.addEventListener("seeked", () => {
      if (!state.syncing && !state.playing) seekAll(p.start + node.currentTime * 1000);
    });
    node.addEventListener("play", () => {
      if (!state.playing) { state.now = p.start + node.currentTime * 1000; setPlaying(true); }
    });
  }
  state.t0 = times.length ? Math.min(...times) : Date.now();
  state.t1 = times.length ? Math.max(...times) : state.t0;
  state.now = state.t0;
  document.getElementById("transport").hidden = false;
  render();
}

// ---------------------------------------------------------------- legal review (法制审核)

// Chinese pages show the catalogue's Chinese names; others the names in the page's language.
const CHINESE = (CLOCK.language || "").startsWith("zh");

function both(zh, other) {
  return CHINESE ? zh || other : other || zh;
}

function localTime(iso) {
  return iso ? fmt(Date.parse(iso)) : "";
}

function buildLegal(lr) {
  const sec = document.getElementById("legal-review");
  const badge = document.getElementById("legal-status");
  badge.textContent = both(lr.status_zh, lr.status_label);
  badge.className = `badge ${lr.status}`;
  sec.dataset.status = lr.status;
  const overdue = document.getElementById("legal-overdue");
  if (lr.overdue) {
    overdue.hidden = false;
    overdue.textContent = lr.working_days_overdue
      ? t("legal_overdue_days", { days: lr.working_days_overdue })
      : t("legal_overdue");
  }
  let rule;
  if (lr.rule) {
    rule = t("legal_rule", { version: lr.catalogue_version, rule: lr.rule, label: lr.rule_label_zh || lr.rule });
    const also = lr.matched_rules.filter((r) => r !== lr.rule);
    if (also.length) rule += t("legal_rule_also", { rules: also.join(t("list_sep")) });
  } else if (lr.status === "awaiting-submission") {
    rule = t("legal_unclassified");
  } else {
    rule = t("legal_no_rule", { version: lr.catalogue_version });
  }
  document.getElementById("legal-rule").textContent = rule;
  document.getElementById("legal-rule").title = lr.explanation; // the catalogue's own words
  const due = document.getElementById("legal-due");
  due.textContent = lr.due
    ? t("legal_due", { date: lr.due }) + (lr.higher_authority ? " · " + t("legal_higher_authority") : "")
    : lr.higher_authority ? t("legal_higher_authority") : "";
  // A due date in a year the calendar does not know is provisional: said so, never shown as final.
  due.classList.toggle("provisional", Boolean(lr.due_provisional));
  due.title = lr.due_provisional ? lr.due_explanation : "";
  if (lr.due && lr.due_provisional) {
    const note = el("strong", "provisional-note", lr.due_note);
    due.append(" · ", note);
    if (lr.due_weekdays) due.append(" · " + t("legal_due_weekdays", { date: lr.due_weekdays }));
  }
  const s = lr.submission;
  if (s) {
    const kind = CHINESE ? s.decision_kind_zh : label("decision_kind", s.decision_kind);
    const parts = [t("legal_submission", { version: s.version, kind })];
    const amounts = Object.entries(s.amounts);
    if (amounts.length) {
      parts.push(t("legal_amounts", { amounts: amounts.map(([k, v]) => t("legal_amount", { name: label("decision_kind", k), value: v })).join(t("list_sep")) }));
    }
    if (s.legal_basis.length) parts.push(t("legal_basis", { basis: s.legal_basis.join(t("list_sep")) }));
    parts.push(t("legal_submitted", { user: s.submitted_by, time: localTime(s.submitted_at) }));
    parts.push(`SHA-256 ${s.digest.slice(0, 16)}…`);
    parts.push(t("legal_facts", { facts: s.facts }));
    document.getElementById("legal-submission").textContent = parts.join(" · ");
  }
  if (lr.checklist.length) {
    const table = document.getElementById("legal-checklist");
    const body = table.querySelector("tbody");
    for (const c of lr.checklist) {
      const tr = el("tr", "point");
      tr.dataset.point = c.point;
      tr.append(el("td", null, both(c.label_zh, c.label)));
      const answer = el("td", c.result === "fail" ? "fail" : null, c.result ? t("answer_" + c.result) : "—");
      if (c.result) answer.dataset.result = c.result;
      tr.append(answer);
      const by = c.reviewer ? t("legal_answered_by", { user: c.reviewer, time: localTime(c.answered_at) }) : "";
      tr.append(el("td", null, c.note + (c.note && by ? " " : "") + by));
      body.append(tr);
    }
    table.hidden = false;
  }
  if (lr.opinion) {
    const o = lr.opinion;
    const box = document.getElementById("legal-opinion");
    let text = t("legal_opinion", {
      outcome: both(o.outcome_zh, o.outcome_label),
      reasons: o.reasons,
      user: o.reviewer,
      time: localTime(o.decided_at),
    });
    if (o.authority) text += " · " + t("legal_authority", { authority: o.authority, user: o.answered_by || "" });
    box.textContent = text + "\n" + o.attestation;
    box.dataset.outcome = o.outcome;
    box.hidden = false;
  }
  if (lr.escalation) {
    const x = lr.escalation;
    const box = document.getElementById("legal-escalation");
    box.textContent = t("legal_collective", { reason: x.reason, user: x.requested_by, time: localTime(x.requested_at) }) +
      (x.outcome
        ? " → " + t("legal_collective_outcome", { outcome: both(x.outcome_zh, x.outcome_label), reasons: x.outcome_reasons || "" })
        : " " + t("legal_collective_pending"));
    box.hidden = false;
  }
  sec.hidden = false;
}

async function loadLegal() {
  try {
    buildLegal(await api(`/api/v1/cases/${encodeURIComponent(state.caseId)}/legal-review`));
  } catch (e) {
    // Roles without legal-review access simply do not see the panel.
  }
  document.getElementById("legal-review").dataset.ready = "1";
}

// ---------------------------------------------------------------- coverage and signatures

function pct(t) {
  const span = Math.max(1, state.t1 - state.t0);
  return ((Math.min(Math.max(t, state.t0), state.t1) - state.t0) / span) * 100;
}

function drawCoverage(cov, sigs) {
  const bar = document.getElementById("coverage-bar");
  const byRecord = {};
  for (const r of state.records) byRecord[r.li.dataset.recordId] = r;
  const signers = {};
  for (const s of sigs || []) {
    (signers[s.record_id] = signers[s.record_id] || []).push(
      s.kind === "archive" ? t("signer_archive", { version: s.version }) : t("signer_person", { signer: s.signer, version: s.version }),
    );
  }
  const status = (key) => label("coverage_status", key);
  const span = (g) => t("time_span", { start: fmt(Date.parse(g.start)), end: fmt(Date.parse(g.end)) });
  for (const c of cov.records) {
    const w = el("div", `window status-${c.status}`);
    w.style.left = `${pct(Date.parse(c.start))}%`;
    w.style.width = `${Math.max(0, pct(Date.parse(c.end)) - pct(Date.parse(c.start)))}%`;
    w.title = t("coverage_window", { title: c.title || c.record_id, status: status(c.status) });
    w.dataset.recordId = c.record_id;
    bar.append(w);
    for (const g of c.gaps) {
      const gap = el("div", "gap");
      gap.style.left = `${pct(Date.parse(g.start))}%`;
      gap.style.width = `${Math.max(0, pct(Date.parse(g.end)) - pct(Date.parse(g.start)))}%`;
      gap.title = t("coverage_gap", { span: span(g), seconds: g.seconds });
      gap.dataset.recordId = c.record_id;
      gap.addEventListener("click", () => seekAll(Date.parse(g.start)));
      bar.append(gap);
    }
    const r = byRecord[c.record_id];
    if (!r) continue;
    const badge = el("span", `coverage-badge status-${c.status}`, status(c.status));
    badge.dataset.status = c.status;
    badge.title = c.activity
      ? t("coverage_activity", { activity: CHINESE ? c.activity_zh || c.activity : c.activity, mode: label("coverage_mode", c.mode) })
      : t("coverage_no_activity");
    r.li.querySelector("h3").prepend(badge);
    if (c.reason) r.li.append(el("p", "gaps", t("coverage_reason", { reason: c.reason })));
    if (c.gaps.length) r.li.append(el("p", "gaps", t("coverage_gaps", { gaps: c.gaps.map(span).join(t("list_sep")) })));
    if (signers[c.record_id]) r.li.append(el("p", "signed", t("signed_by", { signers: signers[c.record_id].join(t("list_sep")) })));
  }
  document.getElementById("coverage-counts").textContent =
    t("coverage_counts", { version: cov.item_list_version, tolerance: cov.tolerance_s }) + " " +
    Object.entries(cov.counts).map(([k, v]) => `${status(k)} ${v}`).join(" · ");
  document.getElementById("coverage").hidden = false;
}

// Sign out: a page session (single sign-on, "cps_") is ended on the server at once; any token is
// forgotten by this tab.
function offerSignOut() {
  const button = document.getElementById("logout");
  if (!button) return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    if (state.token.startsWith("cps_")) {
      try { await api("/api/v1/logout", { method: "POST" }); } catch (e) { /* already ended */ }
    }
    sessionStorage.removeItem("custody_token");
    location.replace(location.pathname);
  });
}

async function offerPurpose(key, purpose) {
  // Only a user who holds grants is asked; everyone else never learns that anything is marked.
  let mine = [];
  try { mine = await api("/api/v1/restricted/mine"); } catch (e) { return; }
  if (!mine.length) return;
  const form = document.getElementById("purpose-form");
  const input = document.getElementById("purpose");
  input.value = purpose;
  document.getElementById("purpose-shown").hidden = !purpose;
  form.hidden = false;
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const why = input.value.trim();
    if (!why) return;
    sessionStorage.setItem(key, why);
    location.reload();
  });
}

async function start() {
  state.token = takeToken();
  if (state.token) offerSignOut();
  if (!state.token) {
    const form = document.getElementById("login");
    form.hidden = false;
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      sessionStorage.setItem("custody_token", document.getElementById("login-token").value.trim());
      location.reload();
    });
    return;
  }
  try {
    // The HttpOnly cookie the players stream with; the answer's language is the user's own setting
    // (else the browser's). A first visit served in another language is reloaded once in the user's.
    const opened = await api("/api/v1/session", { method: "POST", raw: true });
    const want = opened.headers.get("Content-Language");
    const asked = new URLSearchParams(location.search).has("lang");
    if (want && want !== document.documentElement.lang && !asked && !sessionStorage.getItem("custody_lang_reload")) {
      sessionStorage.setItem("custody_lang_reload", "1");
      location.reload();
      return;
    }
    sessionStorage.removeItem("custody_lang_reload");
    // Restricted items granted to this user are read only for a stated purpose (kept for this tab).
    const purposeKey = `custody_purpose:${state.caseId}`;
    const purpose = sessionStorage.getItem(purposeKey) || "";
    const withPurpose = purpose ? `purpose=${encodeURIComponent(purpose)}` : "";
    const tl = await api(`/api/v1/cases/${encodeURIComponent(state.caseId)}/timeline?via=page&${withPurpose}`);
    build(tl);
    await offerPurpose(purposeKey, purpose);
    await loadLegal();
    try {
      const id = encodeURIComponent(state.caseId);
      const [cov, sigs] = await Promise.all([api(`/api/v1/cases/${id}/coverage?${withPurpose}`), api(`/api/v1/cases/${id}/signatures`)]);
      drawCoverage(cov, sigs);
    } catch (e) {
      // Roles without access to the case's coverage simply do not see the bar.
    }
    document.body.dataset.ready = "1";
  } catch (e) {
    showError(t("cannot_open", { error: e.message }));
  }
}

document.getElementById("play").addEventListener("click", () => setPlaying(!state.playing));
document.getElementById("scrub").addEventListener("input", (ev) => {
  const frac = Number(ev.target.value) / 1000;
  seekAll(state.t0 + frac * (state.t1 - state.t0));
});
start();
