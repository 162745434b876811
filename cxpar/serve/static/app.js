// The cxpar serve page: the program's stream execution graph, a live run list, and a
// live timeline of one run (read from /v1/runs/{id}/events). No build step, no libraries.
"use strict";

const state = { token: sessionStorage.getItem("cxpar-token") || "", selected: null,
  stream: null, events: [], runs: [] };
const $ = (sel) => document.querySelector(sel);
const SVG = "http://www.w3.org/2000/svg";

function headers(extra) {
  const h = Object.assign({}, extra || {});
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  return h;
}

async function api(path, options) {
  const opts = Object.assign({}, options || {});
  opts.headers = headers(opts.headers);
  const resp = await fetch(path, opts);
  if (resp.status === 401) {
    $("#token-form").hidden = false;
    throw new Error("a token is required");
  }
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error ? body.error.message : resp.statusText);
  return body;
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "";
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : Math.round(ms) + " ms";
}

function setStatus(text) { $("#status").textContent = text; }

// ------------------------------------------------------------------ the graph

function layout(graph) {
  // Layers by longest path from the roots, rows in node order within a layer.
  const depth = new Map(graph.nodes.map((n) => [n.id, 0]));
  for (let pass = 0; pass < graph.nodes.length; pass++) {
    let changed = false;
    for (const e of graph.edges) {
      const d = depth.get(e.from) + 1;
      if (d > depth.get(e.to)) { depth.set(e.to, d); changed = true; }
    }
    if (!changed) break;
  }
  const rows = new Map();
  const pos = new Map();
  for (const n of graph.nodes) {
    const d = depth.get(n.id);
    const r = rows.get(d) || 0;
    rows.set(d, r + 1);
    pos.set(n.id, { x: 10 + d * 180, y: 10 + r * 40 });
  }
  return pos;
}

function drawGraph(graph) {
  const box = $("#graph");
  box.textContent = "";
  const pos = layout(graph);
  let width = 0, height = 0;
  for (const p of pos.values()) { width = Math.max(width, p.x + 170); height = Math.max(height, p.y + 40); }
  const root = svg("svg", { width, height, role: "img" });
  for (const e of graph.edges) {
    const a = pos.get(e.from), b = pos.get(e.to);
    if (!a || !b) continue;
    const x1 = a.x + 150, y1 = a.y + 14, x2 = b.x, y2 = b.y + 14;
    const mid = (x1 + x2) / 2;
    root.appendChild(svg("path", { class: "gedge" + (e.critical ? " critical" : ""),
      d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "data-kind": e.kind }));
  }
  for (const n of graph.nodes) {
    const p = pos.get(n.id);
    const g = svg("g", { class: "gnode" + (n.critical ? " critical" : ""), "data-id": n.id,
      "data-kind": n.kind, transform: `translate(${p.x},${p.y})` });
    g.appendChild(svg("rect", { width: 150, height: 28, rx: 4 }));
    const label = (n.kind === "call" ? "⚡ " : n.kind === "handler" ? "on " : "") + n.label;
    g.appendChild(svg("text", { x: 6, y: 18 }, label.length > 24 ? label.slice(0, 23) + "…" : label));
    g.appendChild(svg("title", {}, `${n.kind}: ${n.label}\n${fmtMs(n.start_ms)} → ${fmtMs(n.finish_ms)}`
      + (n.critical ? "\non the critical path" : "")));
    root.appendChild(g);
  }
  box.appendChild(root);
  $("#graph-summary").textContent = `estimated ${fmtMs(graph.estimated_ms)}, sequential ` +
    `${fmtMs(graph.sequential_ms)}, critical path: ${graph.critical_path.length} nodes`;
}

// ------------------------------------------------------------------ runs

function drawRuns() {
  const body = $("#runs tbody");
  body.textContent = "";
  for (const r of state.runs) {
    const tr = el("tr", { "data-id": r.id, "data-status": r.status });
    if (r.id === state.selected) tr.className = "selected";
    tr.appendChild(el("td", {}, r.id));
    tr.appendChild(el("td", { class: "status-" + r.status }, r.status));
    tr.appendChild(el("td", {}, fmtMs(r.duration_ms)));
    tr.appendChild(el("td", {}, String(r.calls)));
    tr.appendChild(el("td", {}, r.cost_usd === null ? "–" : "$" + r.cost_usd.toFixed(4)));
    tr.appendChild(el("td", {}, r.error ? `${r.errors}: ${r.error.message}` : String(r.errors)));
    tr.addEventListener("click", () => selectRun(r.id));
    body.appendChild(tr);
  }
}

async function pollRuns() {
  try {
    const data = await api("/v1/runs?limit=200");
    state.runs = data.runs;
    drawRuns();
    setStatus(`${data.active} running`);
  } catch (err) {
    setStatus(String(err.message || err));
  }
}

// ------------------------------------------------------------------ one run

async function followEvents(id) {
  // Server-Sent Events through fetch (so the token can travel in a header).
  const ctrl = new AbortController();
  state.stream = ctrl;
  const resp = await fetch(`/v1/runs/${encodeURIComponent(id)}/events`,
    { headers: headers(), signal: ctrl.signal });
  if (!resp.ok) throw new Error(`events: HTTP ${resp.status}`);
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let kind = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) kind = line.slice(7);
        else if (line.startsWith("data: ")) data += line.slice(6);
      }
      if (!data || kind === "end" || state.selected !== id) continue;
      state.events.push(JSON.parse(data));
      drawTimeline();
    }
  }
}

function selectRun(id) {
  if (state.stream) state.stream.abort();
  state.selected = id;
  state.events = [];
  $("#run-section").hidden = false;
  $("#run-id").textContent = id;
  $("#detail").innerHTML = '<p class="muted">Click a call for its request and answer.</p>';
  drawRuns();
  drawTimeline();
  followEvents(id).catch((err) => { if (err.name !== "AbortError") setStatus(String(err.message)); });
}

function lanesOf(events) {
  // One lane per service call (call.start … call.end), per branch, and per join.
  const lanes = [];
  const calls = new Map();
  let end = 1;
  for (const ev of events) {
    end = Math.max(end, ev.t_ms || 0, ev.end_ms || 0);
    if (ev.type === "call.start") {
      const lane = { kind: "call", label: `${ev.service} #${ev.call}`, start: ev.t_ms, end: null,
        ev, answer: null };
      calls.set(ev.call, lane);
      lanes.push(lane);
    } else if (ev.type === "call.end") {
      const lane = calls.get(ev.call);
      if (lane) { lane.end = ev.t_ms; lane.answer = ev; lane.failed = !ev.ok; }
    } else if (ev.type === "branch") {
      lanes.push({ kind: "branch", label: ev.name, start: ev.start_ms, end: ev.end_ms, ev,
        failed: !!ev.error });
    } else if (ev.type === "join") {
      lanes.push({ kind: "join", label: `join ${ev.service}`, start: ev.start_ms, end: ev.end_ms, ev });
    }
  }
  return { lanes, end };
}

function drawTimeline() {
  const box = $("#timeline");
  box.textContent = "";
  const { lanes, end } = lanesOf(state.events);
  const width = Math.max(300, box.clientWidth - 190);
  const x = (t) => 180 + (t / end) * width;
  const ticks = el("div", { class: "lane", "data-kind": "events" });
  ticks.appendChild(el("span", { class: "lane-label" }, "events"));
  for (const ev of state.events) {
    if (ev.type !== "emit") continue;
    const t = el("span", { class: "tick", title: `${ev.event} @ ${fmtMs(ev.t_ms)}` });
    t.style.left = x(ev.t_ms) + "px";
    ticks.appendChild(t);
  }
  box.appendChild(ticks);
  for (const lane of lanes) {
    const row = el("div", { class: "lane", "data-kind": lane.kind });
    row.appendChild(el("span", { class: "lane-label", title: lane.label }, lane.label));
    const open = lane.end === null || lane.end === undefined;
    const stop = open ? end : lane.end;
    const bar = el("span", { class: `bar ${lane.kind}${lane.failed ? " failed" : ""}${open ? " open" : ""}`,
      "data-kind": lane.kind, title: `${lane.label}: ${fmtMs(stop - lane.start)}` },
      fmtMs(stop - lane.start));
    bar.style.left = x(lane.start) + "px";
    bar.style.width = Math.max(3, x(stop) - x(lane.start)) + "px";
    bar.addEventListener("click", () => showDetail(lane));
    row.appendChild(bar);
    box.appendChild(row);
  }
  drawErrors();
  const last = state.events[state.events.length - 1];
  const endEv = state.events.find((e) => e.type === "run.end");
  const status = $("#run-status");
  if (endEv) {
    status.textContent = endEv.ok ? "ok" : "failed";
    status.className = "badge status-" + (endEv.ok ? "ok" : "failed");
  } else {
    status.textContent = last ? "running" : "";
    status.className = "badge status-running";
  }
  const outputs = state.events.filter((e) => e.type === "output").map((e) => e.output);
  $("#run-output").textContent = outputs.length ? JSON.stringify(outputs, null, 2) : "(none yet)";
}

function drawErrors() {
  // Runtime errors of the run, and each failed call's `_errors` (its <stem>.error event).
  const box = $("#run-errors");
  box.textContent = "";
  for (const ev of state.events) {
    let title = null, body = null;
    if (ev.type === "error") { title = `error: ${ev.error.message}`; body = ev.error; }
    if (ev.type === "emit" && /\.error$/.test(ev.event) && ev.payload && ev.payload.errors) {
      title = `${ev.event}: _errors`;
      body = ev.payload.errors;
    }
    if (title === null) continue;
    const div = el("div", { class: "error-box", "data-event": ev.event || "error" });
    div.appendChild(el("strong", {}, title));
    div.appendChild(el("pre", {}, JSON.stringify(body, null, 2)));
    box.appendChild(div);
  }
}

function showDetail(lane) {
  const box = $("#detail");
  box.textContent = "";
  box.appendChild(el("h3", {}, lane.label));
  if (lane.kind === "call") {
    box.appendChild(el("div", {}, "request"));
    box.appendChild(el("pre", { class: "request" }, JSON.stringify(lane.ev.request, null, 2)));
    box.appendChild(el("div", {}, lane.answer ? (lane.answer.ok ? "answer" : "error") : "waiting…"));
    if (lane.answer) {
      box.appendChild(el("pre", { class: "answer" }, JSON.stringify(
        lane.answer.ok ? lane.answer.answer : lane.answer.error, null, 2)));
    }
  } else {
    box.appendChild(el("pre", {}, JSON.stringify(lane.ev, null, 2)));
  }
}

// ------------------------------------------------------------------ start

async function startRun(event) {
  event.preventDefault();
  let record;
  try { record = JSON.parse($("#record").value); } catch (err) { setStatus("record: " + err.message); return; }
  try {
    const run = await api("/v1/runs?wait=false", { method: "POST", body: JSON.stringify(record),
      headers: { "Content-Type": "application/json" } });
    selectRun(run.id);
    pollRuns();
  } catch (err) { setStatus(String(err.message || err)); }
}

async function init() {
  $("#new-run").addEventListener("submit", startRun);
  $("#token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    state.token = $("#token").value;
    sessionStorage.setItem("cxpar-token", state.token);
    $("#token-form").hidden = true;
    init2();
  });
  init2();
  setInterval(pollRuns, 1000);
}

async function init2() {
  try {
    const prog = await api("/v1/program");
    $("#program-name").textContent = prog.name;
    drawGraph(prog.graph);
    pollRuns();
  } catch (err) { setStatus(String(err.message || err)); }
}

init();
