// rs5m pair rating page: plain JS, no build step. The server validates everything again.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { session: null, rater: null, pos: null, pair: null, scores: {}, active: 0, busy: false };

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const d = data.detail;
    throw new Error(typeof d === "string" ? d : JSON.stringify(d || res.statusText));
  }
  return data;
}

function status(text, isError = false) {
  const el = $("status");
  el.textContent = text;
  el.className = isError ? "error" : "";
}

function scaleNames() { return state.session.rubric.scales.map((s) => s.name); }

function buildScales() {
  const box = $("scales");
  state.session.rubric.scales.forEach((scale, i) => {
    const div = document.createElement("div");
    div.className = "scale";
    div.dataset.scale = scale.name;
    div.innerHTML = `<h3><span class="key">${i + 1}.</span> ${scale.title}</h3><p class="question"></p>`;
    div.querySelector(".question").textContent = scale.question;
    const ol = document.createElement("ol");
    for (let v = state.session.rubric.max; v >= state.session.rubric.min; v--) {
      const li = document.createElement("li");
      li.dataset.value = String(v);
      li.innerHTML = `<kbd>${v}</kbd><span></span>`;
      li.querySelector("span").textContent = scale.levels[String(v)];
      li.addEventListener("click", () => { state.active = i; setScore(scale.name, v); });
      ol.appendChild(li);
    }
    div.appendChild(ol);
    div.addEventListener("click", () => { state.active = i; paintScales(); });
    box.appendChild(div);
  });
  const sel = $("broken-reason");
  for (const r of state.session.rubric.broken_reasons) sel.add(new Option(r, r));
  const sc = $("shortcuts");
  for (const s of state.session.rubric.shortcuts) {
    const li = document.createElement("li");
    li.innerHTML = "<kbd></kbd> ";
    li.firstChild.textContent = s.keys;
    li.appendChild(document.createTextNode(s.action));
    sc.appendChild(li);
  }
  $("rubric").innerHTML = box.innerHTML;
}

function paintScales() {
  document.querySelectorAll("#scales .scale").forEach((div, i) => {
    div.classList.toggle("active", i === state.active);
    const chosen = state.scores[div.dataset.scale];
    div.classList.toggle("set", chosen != null);
    div.querySelectorAll("li").forEach((li) => li.classList.toggle("chosen", Number(li.dataset.value) === chosen));
  });
}

function setScore(name, value) {
  state.scores[name] = value;
  const names = scaleNames();
  const unset = names.findIndex((n) => state.scores[n] == null);
  state.active = unset >= 0 ? unset : Math.min(names.indexOf(name) + 1, names.length - 1);
  paintScales();
}

function showProgress(p) {
  const done = p.rated + p.broken;
  $("progress-text").textContent = `${done} / ${p.total} done` + (p.skipped ? ` · ${p.skipped} skipped` : "");
  $("progress-bar").max = p.total;
  $("progress-bar").value = done;
}

function fmt(v) {
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toFixed(4);
  if (Array.isArray(v)) return v.join(", ");
  if (v && typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function renderPair(pair) {
  $("pair-pos").textContent = `Pair ${pair.pos + 1} of ${pair.total}`;
  $("pair-uid").textContent = pair.uid;
  const audit = state.session.audit;
  $("pair-badge").textContent = audit ? `audit: ${audit}` : pair.decision;
  $("caption").textContent = pair.caption;
  const rows = [["source", pair.source], ["subset", pair.subset]];
  for (const [k, v] of Object.entries(pair.info)) if (!k.startsWith("keep_")) rows.push([k, v]);
  const table = $("provenance");
  table.replaceChildren();
  for (const [k, v] of rows) {
    const tr = table.insertRow();
    tr.insertCell().textContent = k;
    tr.insertCell().textContent = fmt(v);
  }
  const img = $("pair-image");
  const ph = $("image-placeholder");
  const broken = (why) => {
    img.hidden = true; ph.hidden = false; $("image-error").textContent = why;
    $("broken").classList.add("attention");
    $("broken-reason").value = "image missing";
  };
  $("broken").classList.remove("attention");
  img.onerror = () => broken("the image could not be loaded");
  if (pair.image_url) { img.hidden = false; ph.hidden = true; img.src = pair.image_url; }
  else { img.removeAttribute("src"); broken(pair.image_error || "no image"); }
  const r = pair.rating;
  state.scores = {};
  for (const n of scaleNames()) state.scores[n] = r && r[n] != null ? r[n] : null;
  $("comment").value = (r && r.comment) || "";
  state.active = Math.max(0, scaleNames().findIndex((n) => state.scores[n] == null));
  paintScales();
}

async function show(pos) {
  if (pos == null) { $("main").hidden = true; $("done").hidden = false; return; }
  const pair = await api(`/api/pairs/${pos}?rater=${encodeURIComponent(state.rater)}`);
  state.pos = pos; state.pair = pair;
  $("done").hidden = true; $("main").hidden = false;
  renderPair(pair);
  document.body.dataset.pos = String(pos);
}

async function act(fn) {
  if (state.busy || !state.rater) return;
  state.busy = true;
  try { await fn(); } catch (e) { status(e.message, true); } finally { state.busy = false; }
}

const submit = () => act(async () => {
  const missing = scaleNames().filter((n) => state.scores[n] == null);
  if (missing.length) { status(`Score every scale first (missing: ${missing.join(", ")})`, true); return; }
  const body = { rater: state.rater, uid: state.pair.uid, ...state.scores, comment: $("comment").value };
  const p = await api("/api/ratings", body);
  showProgress(p);
  status(`Saved pair ${state.pos + 1}.`);
  await show(p.next_pos);
});

const skip = () => act(async () => {
  const p = await api("/api/skip", { rater: state.rater, uid: state.pair.uid });
  showProgress(p);
  status(`Skipped pair ${state.pos + 1}.`);
  await show(p.next_pos);
});

const markBroken = () => act(async () => {
  const note = $("comment").value.trim();
  const reason = $("broken-reason").value + (note ? `: ${note}` : "");
  const p = await api("/api/broken", { rater: state.rater, uid: state.pair.uid, reason });
  showProgress(p);
  status(`Marked pair ${state.pos + 1} broken (${reason}).`);
  await show(p.next_pos);
});

const go = (delta) => act(async () => {
  const total = state.session.total;
  const base = state.pos == null || !$("done").hidden ? total : state.pos;
  const next = base + delta;
  if (next >= 0 && next < total) await show(next);
});

async function start(ev) {
  if (ev) ev.preventDefault();
  const name = $("rater").value.trim();
  if (!name) { $("rater").focus(); return; }
  state.rater = name;
  localStorage.setItem("rs5m-rater", name);
  $("rater").blur();
  const p = await api(`/api/progress?rater=${encodeURIComponent(name)}`);
  showProgress(p);
  status(p.next_pos == null ? "" : `Welcome ${name}: resuming at pair ${p.next_pos + 1}.`);
  await show(p.next_pos);
}

function onKey(ev) {
  const t = ev.target;
  if (t && ["INPUT", "TEXTAREA", "SELECT"].includes(t.tagName)) {
    if (ev.key === "Escape") t.blur();
    return;
  }
  if (!state.rater || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const names = scaleNames();
  const k = ev.key;
  if (/^[1-5]$/.test(k) && !$("main").hidden) setScore(names[state.active], Number(k));
  else if (k === "ArrowUp") { state.active = Math.max(0, state.active - 1); paintScales(); }
  else if (k === "ArrowDown") { state.active = Math.min(names.length - 1, state.active + 1); paintScales(); }
  else if ((k === "Enter" || k === "n") && !$("main").hidden) submit();
  else if (k === "ArrowLeft" || k === "b") go(-1);
  else if (k === "ArrowRight") go(1);
  else if (k === "s" && !$("main").hidden) skip();
  else if (k === "x" && !$("main").hidden) markBroken();
  else return;
  ev.preventDefault();
}

async function init() {
  state.session = await api("/api/session");
  const s = state.session;
  $("session-desc").textContent = `version ${s.version} · ${s.description} · ${s.total} pairs · seed ${s.seed}`;
  buildScales();
  $("rater-form").addEventListener("submit", (ev) => start(ev).catch((e) => status(e.message, true)));
  $("submit").addEventListener("click", submit);
  $("skip").addEventListener("click", skip);
  $("broken").addEventListener("click", markBroken);
  $("back").addEventListener("click", () => go(-1));
  $("review").addEventListener("click", () => go(-1));
  document.addEventListener("keydown", onKey);
  const saved = localStorage.getItem("rs5m-rater");
  if (saved) { $("rater").value = saved; await start(); } else $("rater").focus();
  document.body.dataset.ready = "1";
}

init().catch((e) => status(e.message, true));
