// The device web UI: plain DOM code over the pvtx API, the logs API and
// the few /app/api/ answers (runtime/pvrsdk/web.go). No framework, no
// build step.
"use strict";

const $ = (id) => document.getElementById(id);
// Statuses after which a revision's progress no longer changes.
const FINAL = ["DONE", "ERROR", "WONTGO", "CANCELLED"];
let logAbort = null;
const LOG_KEEP = 1 << 20;

function showError(msg) {
  const e = $("error");
  e.textContent = msg || "";
  e.hidden = !msg;
}

// api calls path and returns its parsed JSON; an error answer throws
// with the server's message.
async function api(path, opts) {
  const r = await fetch(path, opts);
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) {
    const msg = body && body.error ? body.error : text || r.statusText;
    throw new Error(`${r.status}: ${msg}`);
  }
  return body;
}

// guard runs fn, showing its error instead of throwing.
async function guard(fn) {
  try {
    showError("");
    await fn();
  } catch (e) {
    showError(e.message);
  }
}

function setStatus(prefix, p) {
  p = p || {};
  const st = $(prefix + "-status");
  st.textContent = p.status || "unknown";
  st.className = "st-" + (p.status || "");
  $(prefix + "-msg").textContent = p["status-msg"] || "";
  const pct = Number(p.progress) || 0;
  $(prefix + "-progress").value = pct;
  $(prefix + "-pct").textContent = pct + " %";
}

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text;
  tr.appendChild(td);
  return td;
}

async function loadStatus() {
  const s = await api("/app/api/status");
  $("rev").textContent = s.revision;
  setStatus("rev", s.progress);
  const body = $("containers").tBodies[0];
  body.replaceChildren();
  for (const c of s.containers || []) {
    const tr = document.createElement("tr");
    cell(tr, c.name);
    cell(tr, c.group);
    cell(tr, c.status).className = "st-" + c.status;
    cell(tr, c.status_goal);
    cell(tr, (c.roles || []).join(", "));
    body.appendChild(tr);
  }
  const step = await api("/app/api/step?rev=" + encodeURIComponent(s.revision));
  $("step").textContent = JSON.stringify(step, null, 2);
}

function showTx(state, info) {
  $("tx-state").textContent = state ? JSON.stringify(state, null, 2) : "no transaction";
  if (info) $("tx-info").textContent = info;
}

async function loadTx() {
  const r = await fetch("/cgi-bin/pvtx/show");
  showTx(r.ok ? await r.json() : null);
}

function txCall(method, path, body, info) {
  return guard(async () => {
    const state = await api("/cgi-bin/pvtx/" + path, { method, body });
    showTx(state, info);
  });
}

// watch polls the progress of rev until it is final. A run can restart
// Pantavisor or this very server (a new pvr-sdk, a reboot): failed polls
// are retried until WATCH_LIMIT passes without an answer.
const WATCH_LIMIT = 15 * 60 * 1000;
async function watch(rev) {
  $("run-box").hidden = false;
  $("run-rev").textContent = rev;
  let answered = Date.now();
  for (;;) {
    try {
      const s = await api("/cgi-bin/pvtx/status?rev=" + encodeURIComponent(rev));
      answered = Date.now();
      setStatus("run", s.progress);
      if (FINAL.includes(s.progress.status)) break;
    } catch (e) {
      if (Date.now() - answered > WATCH_LIMIT) throw e;
      $("run-msg").textContent = `Waiting for the device (${e.message})…`;
    }
    await new Promise((ok) => setTimeout(ok, 1000));
  }
  $("tx-info").textContent = `Revision ${rev}: ${$("run-status").textContent}`;
  await guard(loadStatus);
}

function commitAndRun() {
  return guard(async () => {
    $("tx-commit").disabled = true;
    try {
      const c = await api("/cgi-bin/pvtx/commit", { method: "POST" });
      showTx(null, `Committed ${c.revision}; running it…`);
      const p = await api("/cgi-bin/pvtx/run?rev=" + encodeURIComponent(c.revision), { method: "POST" });
      $("run-box").hidden = false;
      setStatus("run", p);
      await watch(c.revision);
    } finally {
      $("tx-commit").disabled = false;
    }
  });
}

async function loadSources() {
  const r = await api("/app/api/log-sources");
  const sel = $("log-source");
  const cur = sel.value;
  sel.replaceChildren();
  for (const s of r.sources) sel.add(new Option(s, s));
  if (r.sources.includes(cur)) sel.value = cur;
  else if (r.sources.includes("pantavisor")) sel.value = "pantavisor";
}

function stopLogs() {
  if (logAbort) logAbort.abort();
  logAbort = null;
}

// showLogs reads the logs API; with follow it keeps appending what the
// stream brings until stopped.
async function showLogs() {
  stopLogs();
  const ctl = new AbortController();
  logAbort = ctl;
  const q = new URLSearchParams({ source: $("log-source").value, tail: "true", tailn: $("log-lines").value });
  if ($("log-follow").checked) q.set("follow", "true");
  const out = $("log");
  out.textContent = "";
  try {
    const r = await fetch("/cgi-bin/logs?" + q, { signal: ctl.signal });
    if (!r.ok) throw new Error(`${r.status}: ${(await r.json()).error}`);
    const rd = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done } = await rd.read();
      if (done) break;
      out.append(dec.decode(value, { stream: true }));
      // A long follow keeps the last LOG_KEEP characters only.
      if (out.textContent.length > 2 * LOG_KEEP) out.textContent = out.textContent.slice(-LOG_KEEP);
      out.scrollTop = out.scrollHeight;
    }
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  }
}

function showMeta(meta) {
  const body = $("meta").tBodies[0];
  body.replaceChildren();
  for (const k of Object.keys(meta || {}).sort()) {
    const tr = document.createElement("tr");
    cell(tr, k);
    cell(tr, meta[k]);
    const td = cell(tr, "");
    const edit = document.createElement("button");
    edit.type = "button";
    edit.className = "link";
    edit.textContent = "Edit";
    edit.setAttribute("aria-label", "Edit " + k);
    edit.onclick = () => { $("meta-key").value = k; $("meta-value").value = meta[k]; $("meta-value").focus(); };
    const del = document.createElement("button");
    del.type = "button";
    del.className = "link";
    del.textContent = "Delete";
    del.setAttribute("aria-label", "Delete " + k);
    del.onclick = () => guard(async () => {
      showMeta(await api("/cgi-bin/pvtx/usermeta/delete?key=" + encodeURIComponent(k), { method: "POST" }));
    });
    td.append(edit, " ", del);
    body.appendChild(tr);
  }
}

async function loadMeta() {
  const c = await api("/cgi-bin/pvtx/get-config");
  showMeta(c.user);
}

document.addEventListener("DOMContentLoaded", () => {
  $("refresh").onclick = () => guard(loadStatus);
  $("tx-begin").onclick = () => txCall("POST", "begin" + ($("tx-empty").checked ? "?empty=true" : ""), null, "Transaction started.");
  $("tx-abort").onclick = () => guard(async () => {
    await api("/cgi-bin/pvtx/abort", { method: "POST" });
    showTx(null, "Transaction aborted.");
  });
  $("tx-add").onsubmit = (e) => {
    e.preventDefault();
    const f = $("tx-file").files[0];
    if (!f) return;
    $("tx-info").textContent = `Uploading ${f.name} (${f.size} bytes)…`;
    txCall("PUT", "add", f, `Added ${f.name}.`);
  };
  $("tx-remove").onsubmit = (e) => {
    e.preventDefault();
    const part = $("tx-part").value.trim();
    txCall("PUT", "remove?part=" + encodeURIComponent(part), null, `Removed ${part}.`);
  };
  $("tx-commit").onclick = commitAndRun;
  $("log-form").onsubmit = (e) => { e.preventDefault(); showLogs(); };
  $("log-stop").onclick = stopLogs;
  $("meta-form").onsubmit = (e) => {
    e.preventDefault();
    const k = $("meta-key").value.trim();
    guard(async () => {
      showMeta(await api("/cgi-bin/pvtx/usermeta/save?key=" + encodeURIComponent(k), { method: "POST", body: $("meta-value").value }));
    });
  };
  guard(async () => {
    await Promise.all([loadStatus(), loadTx(), loadMeta(), loadSources()]);
  });
});
