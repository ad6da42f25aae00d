// Case review page: players side by side on one corrected clock, text records beside them.
// Every string from the server goes into the page with textContent (never innerHTML), so a
// "<script>" typed into a record is shown as text and never runs. The CSP forbids inline script too.
"use strict";

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

function fmt(ms) {
  // Milliseconds only when there are any: corrected times are often fractional.
  return new Date(ms).toISOString().replace("T", " ").replace(/\.000Z$/, "Z").replace(/Z$/, " UTC");
}

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
  document.getElementById("play").textContent = on ? "Pause all" : "Play all";
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
  meta.append(document.createTextNode(`officer ${item.officer} · device ${item.device}`), el("br"));
  meta.append(document.createTextNode(item.start ? `${fmt(Date.parse(item.start))} → ${fmt(Date.parse(item.end))}` : "recording time unknown"), el("br"));
  const corr = el("span", "correction", item.correction);
  if (item.recorded_at_device) corr.title = `device clock said ${item.recorded_at_device} (${item.device_time_source === "metadata" ? "recording metadata" : "file time"})`;
  meta.append(corr);
  box.append(meta);
  return { box, node };
}

function recordItem(r, names) {
  const li = el("li", "record");
  li.tabIndex = 0;
  li.dataset.recordId = r.record_id;
  const h = el("h3");
  h.append(el("span", "tag", r.stage), el("span", "tag", r.doc_kind), document.createTextNode(r.title || r.doc_kind));
  li.append(h);
  li.append(el("p", "when", `${fmt(Date.parse(r.start))} → ${fmt(Date.parse(r.end))} · v${r.version}`));
  li.append(el("p", "who", `author ${r.author}` + (r.officers.length ? ` · officers ${r.officers.join(", ")}` : "")));
  li.append(el("p", "body", r.body));
  if (r.attachments.length) {
    // Scans and PDFs archived with the record: named here; the originals are in the case's media.
    li.append(el("p", "attachments", "attachments: " + r.attachments.map((id) => names[id] || id).join(", ")));
  }
  const go = () => seekAll(Date.parse(r.start));
  li.addEventListener("click", go);
  li.addEventListener("keydown", (ev) => { if (ev.key === "Enter") go(); });
  return li;
}

function build(tl) {
  const c = tl.case;
  document.title = `Case ${c.number} - Custody`;
  document.getElementById("case-title").textContent = `Case ${c.number}: ${c.title}`;
  document.getElementById("case-facts").textContent =
    `${c.kind} · stage ${c.stage} · ${c.status}` + (c.reviewers.length ? ` · reviewers ${c.reviewers.join(", ")}` : "");
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

const ANSWERS = { pass: "符合 pass", fail: "不符合 fail", "n/a": "不适用 n/a" };

function buildLegal(lr) {
  const sec = document.getElementById("legal-review");
  const badge = document.getElementById("legal-status");
  badge.textContent = `${lr.status_zh} ${lr.status_label}`;
  badge.className = `badge ${lr.status}`;
  sec.dataset.status = lr.status;
  const overdue = document.getElementById("legal-overdue");
  if (lr.overdue) {
    overdue.hidden = false;
    overdue.textContent = `超期 Overdue` + (lr.working_days_overdue ? ` (${lr.working_days_overdue} working days)` : "");
  }
  document.getElementById("legal-rule").textContent =
    (lr.required ? "需法制审核 Review required: " : "无需法制审核 Not required: ") + lr.explanation;
  document.getElementById("legal-due").textContent = lr.due
    ? `审核期限 Due (5 working days): ${lr.due}` + (lr.higher_authority ? " · 报上级 reviewed by the higher authority" : "")
    : "";
  const s = lr.submission;
  if (s) {
    document.getElementById("legal-submission").textContent =
      `拟作出的决定 Proposed decision v${s.version}: ${s.decision_kind_zh} (${s.decision_kind})` +
      (Object.keys(s.amounts).length ? ` · ${Object.entries(s.amounts).map(([k, v]) => `${k} ${v}`).join(", ")}` : "") +
      ` · ${s.legal_basis.join("; ")} · submitted by ${s.submitted_by} · SHA-256 ${s.digest.slice(0, 16)}… · ${s.facts}`;
  }
  if (lr.checklist.length) {
    const table = document.getElementById("legal-checklist");
    const body = table.querySelector("tbody");
    for (const c of lr.checklist) {
      const tr = el("tr", "point");
      tr.dataset.point = c.point;
      tr.append(el("td", null, `${c.label_zh} ${c.label}`));
      tr.append(el("td", c.result === "fail" ? "fail" : null, c.result ? ANSWERS[c.result] : "—"));
      tr.append(el("td", null, c.note + (c.reviewer ? ` (${c.reviewer})` : "")));
      body.append(tr);
    }
    table.hidden = false;
  }
  if (lr.opinion) {
    const o = lr.opinion;
    const box = document.getElementById("legal-opinion");
    box.textContent = `审核意见 Opinion: ${o.outcome_zh} ${o.outcome_label} — ${o.reasons} (${o.reviewer}, ${o.decided_at})` +
      (o.authority ? ` · ${o.authority}, ${o.answered_by}` : "") + `\n${o.attestation}`;
    box.hidden = false;
  }
  if (lr.escalation) {
    const x = lr.escalation;
    const box = document.getElementById("legal-escalation");
    box.textContent = `集体讨论 Collective discussion: ${x.reason}` +
      (x.outcome ? ` → ${x.outcome_zh} ${x.outcome_label}: ${x.outcome_reasons}` : " (pending)");
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

async function start() {
  state.token = takeToken();
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
    await api("/api/v1/session", { method: "POST" }); // the HttpOnly cookie the players stream with
    const tl = await api(`/api/v1/cases/${encodeURIComponent(state.caseId)}/timeline?via=page`);
    build(tl);
    await loadLegal();
    document.body.dataset.ready = "1";
  } catch (e) {
    showError(`Cannot open case: ${e.message}`);
  }
}

document.getElementById("play").addEventListener("click", () => setPlaying(!state.playing));
document.getElementById("scrub").addEventListener("input", (ev) => {
  const frac = Number(ev.target.value) / 1000;
  seekAll(state.t0 + frac * (state.t1 - state.t0));
});
start();
