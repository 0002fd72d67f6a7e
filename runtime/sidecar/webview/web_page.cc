#include "runtime/sidecar/webview/web_page.h"

#include "absl/strings/str_replace.h"

namespace callmesh::webview {
namespace {

constexpr char kPage[] = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>callmesh · {{NAME}}</title>
<style>
  :root { --fg: #1d2330; --muted: #667085; --line: #e4e7ec; --bg: #f8f9fb; --ok: #067647;
          --bad: #b42318; --warn: #b54708; --run: #175cd3; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header { display: flex; align-items: center; gap: 12px; padding: 10px 20px; background: #101828;
           color: #fff; }
  header h1 { font-size: 16px; margin: 0; font-weight: 600; }
  #live { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #475467; }
  #live.on { background: var(--ok); }
  main { padding: 16px 20px; display: grid; gap: 16px; }
  section { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; }
  h2 { font-size: 14px; margin: 0 0 8px; text-transform: uppercase; letter-spacing: .04em;
       color: var(--muted); }
  table { width: 100%; border-collapse: collapse; }
  th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line);
           vertical-align: top; }
  th { font-weight: 600; color: var(--muted); font-size: 12px; }
  td.mono, .mono { font-family: ui-monospace, monospace; font-size: 12px; }
  .state { font-weight: 600; }
  .SUCCEEDED, .healthy { color: var(--ok); }
  .FAILED, .EXPIRED, .unhealthy { color: var(--bad); }
  .CANCELLED { color: var(--warn); }
  .RUNNING, .ACCEPTED { color: var(--run); }
  .filters { display: flex; gap: 8px; flex-wrap: wrap; margin-bottom: 8px; }
  .filters input, .filters select { padding: 4px 6px; border: 1px solid var(--line);
                                    border-radius: 4px; }
  button { padding: 3px 10px; border: 1px solid #d0d5dd; border-radius: 4px; background: #fff;
           cursor: pointer; }
  button:hover { background: #f2f4f7; }
  a { color: var(--run); text-decoration: none; }
  #call-cid { text-transform: none; letter-spacing: 0; color: var(--fg); }
  #call dl { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
  #call dt { color: var(--muted); }
  #call dd { margin: 0; }
  .empty { color: var(--muted); font-style: italic; }
  #message { color: var(--bad); }
</style>
</head>
<body>
<header><h1>callmesh · {{NAME}}</h1><span id="live">connecting</span>
  <span id="message"></span></header>
<main>
  <section id="services"><h2>Services</h2><table><thead><tr><th>Service</th><th>Instance</th>
    <th>Health</th><th>Why</th><th>Since</th></tr></thead><tbody></tbody></table></section>
  <section id="calls"><h2>Calls</h2>
    <div class="filters">
      <input id="f-service" placeholder="service">
      <select id="f-state"><option value="">any state</option><option>ACCEPTED</option>
        <option>RUNNING</option><option>SUCCEEDED</option><option>FAILED</option>
        <option>CANCELLED</option><option>EXPIRED</option></select>
      <input id="f-source" placeholder="source">
      <input id="f-cid" placeholder="CID" size="38">
    </div>
    <table><thead><tr><th>CID</th><th>State</th><th>Service</th><th>Method</th><th>Source</th>
      <th>Attempts</th><th>Accepted</th><th>Took</th><th>Waiting for / outcome</th></tr></thead>
      <tbody></tbody></table></section>
  <section id="call" hidden><h2>Call <span class="mono" id="call-cid"></span>
    <button id="call-close">close</button></h2><dl></dl></section>
  <section id="dead-letters"><h2>Dead letters</h2><table><thead><tr><th>CID</th><th>Callback</th>
    <th>Service</th><th>Method</th><th>Attempts</th><th>Last error</th><th>Dead-lettered</th>
    <th></th></tr></thead><tbody></tbody></table></section>
</main>
<script>
"use strict";
const $ = (selector) => document.querySelector(selector);
const short = (state) => (state || "").replace(/^(CALL_STATE_|DELIVERY_STATE_)/, "");
function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (className) td.className = className;
  return td;
}
function when(timestamp) {
  return timestamp ? new Date(timestamp).toISOString().replace("T", " ").replace("Z", "") : "";
}
function took(from, to) {
  if (!from || !to) return "";
  const ms = new Date(to) - new Date(from);
  return ms < 1000 ? ms + " ms" : (ms / 1000).toFixed(2) + " s";
}
async function get(path) {
  const response = await fetch(path);
  const body = await response.json();
  if (!response.ok) throw new Error(body.error || response.statusText);
  return body;
}
function show(error) { $("#message").textContent = error ? String(error.message || error) : ""; }
function fill(tbody, rows, render, emptyText, columns) {
  tbody.replaceChildren();
  if (rows.length === 0) {
    const td = tbody.insertRow().insertCell();
    td.colSpan = columns; td.className = "empty"; td.textContent = emptyText;
  }
  for (const item of rows) render(tbody.insertRow(), item);
}

async function loadServices() {
  const body = await get("/ui/api/services");
  const rows = [];
  for (const service of body.services) {
    for (const instance of service.instances) rows.push({ service, instance });
  }
  fill($("#services tbody"), rows, (row, { service, instance }) => {
    cell(row, service.name);
    cell(row, instance.address + (instance.static ? " (static)" : ""), "mono");
    cell(row, instance.healthy ? "healthy" : "unhealthy", instance.healthy ? "healthy" : "unhealthy");
    cell(row, instance.healthy ? "" : instance.healthDetail);
    cell(row, instance.unhealthySince ? when(instance.unhealthySince) +
              (instance.removeAt ? " (removed at " + when(instance.removeAt) + ")" : "") : "");
  }, "no services", 5);
}

function callLink(row, cid) {
  const a = document.createElement("a");
  a.href = "#call=" + encodeURIComponent(cid); a.textContent = cid;
  const td = row.insertCell(); td.className = "mono"; td.appendChild(a);
}

async function loadCalls() {
  const params = new URLSearchParams();
  for (const name of ["service", "state", "source", "cid"]) {
    const value = $("#f-" + name).value.trim();
    if (value) params.set(name, value);
  }
  const body = await get("/ui/api/calls?" + params);
  fill($("#calls tbody"), body.calls, (row, call) => {
    const e = call.envelope;
    row.dataset.cid = e.cid;
    callLink(row, e.cid);
    cell(row, short(call.state), "state " + short(call.state));
    cell(row, e.service); cell(row, e.method, "mono"); cell(row, e.source);
    cell(row, call.attempts);
    cell(row, when(call.acceptedAt));
    cell(row, took(call.acceptedAt, call.completedAt));
    const c = call.completion;
    cell(row, c ? (c.statusCode ? c.statusCode + ": " + c.statusMessage : "OK")
                : call.waitingFor);
  }, "no calls", 9);
}

async function loadDeadLetters() {
  const body = await get("/ui/api/dead-letters");
  fill($("#dead-letters tbody"), body.deadLetters, (row, letter) => {
    const c = letter.completion;
    row.dataset.cid = c.cid;
    callLink(row, c.cid);
    cell(row, letter.callback); cell(row, c.service); cell(row, c.method, "mono");
    cell(row, letter.deliveryAttempts);
    cell(row, letter.lastStatusCode + ": " + letter.lastStatusMessage);
    cell(row, when(letter.deadLetteredAt));
    const button = document.createElement("button");
    button.className = "redrive"; button.textContent = "Redrive"; button.dataset.cid = c.cid;
    button.onclick = () => redrive(c.cid, button);
    row.insertCell().appendChild(button);
  }, "no dead letters", 8);
}

async function redrive(cid, button) {
  button.disabled = true;
  try {
    const response = await fetch("/ui/api/dead-letters/" + encodeURIComponent(cid) + "/redrive",
                                 { method: "POST" });
    const body = await response.json();
    if (!response.ok) throw new Error(body.error);
    show(null);
  } catch (error) { show(error); }
  await Promise.all([loadDeadLetters(), loadCalls()]).catch(show);
}

async function loadCall() {
  const match = location.hash.match(/^#call=(.+)$/);
  const section = $("#call");
  if (!match) { section.hidden = true; return; }
  const body = await get("/ui/api/calls/" + match[1]);
  const call = body.call, e = call.envelope, c = call.completion;
  $("#call-cid").textContent = e.cid;
  const fields = [
    ["state", short(call.state)], ["service", e.service], ["method", e.method],
    ["source", e.source], ["parent CID", e.parentCid], ["attempts", call.attempts],
    ["accepted", when(call.acceptedAt)], ["first attempt", when(call.startedAt)],
    ["completed", when(call.completedAt)], ["took", took(call.acceptedAt, call.completedAt)],
    ["outcome", c ? (c.statusCode ? c.statusCode + ": " + c.statusMessage : "OK") : ""],
    ["last error", call.lastStatusCode ? call.lastStatusCode + ": " + call.lastStatusMessage : ""],
    ["next attempt", when(call.nextAttemptAt)], ["waiting for", call.waitingFor],
    ["last instance", call.lastInstance], ["callback", call.callback],
    ["delivery", call.callback ? short(call.callbackDelivery) : ""],
    ["trace id", body.traceId], ["traceparent", e.traceparent],
  ];
  const dl = section.querySelector("dl");
  dl.replaceChildren();
  for (const [name, value] of fields) {
    if (value === "" || value === undefined || value === 0 && name !== "attempts") continue;
    const dt = document.createElement("dt"); dt.textContent = name;
    const dd = document.createElement("dd"); dd.textContent = String(value);
    if (name === "state") dd.className = "state " + value;
    dl.append(dt, dd);
  }
  section.hidden = false;
}

let ticks = 0;
async function refresh(all) {
  try {
    await Promise.all([loadCalls(), loadCall(), all ? loadServices() : null,
                       all ? loadDeadLetters() : null]);
  } catch (error) { show(error); }
}
for (const name of ["service", "state", "source", "cid"]) {
  $("#f-" + name).addEventListener("input", () => loadCalls().catch(show));
}
$("#call-close").onclick = () => { location.hash = ""; };
window.addEventListener("hashchange", () => loadCall().catch(show));
refresh(true);
const events = new EventSource("/ui/events");
events.onopen = () => { $("#live").textContent = "live"; $("#live").className = "on"; };
events.onerror = () => { $("#live").textContent = "reconnecting"; $("#live").className = ""; };
events.addEventListener("completion", () => refresh(true));
events.addEventListener("tick", () => refresh(++ticks % 5 === 0));
</script>
</body>
</html>
)html";

std::string HtmlEscaped(absl::string_view text) {
  return absl::StrReplaceAll(text,
                             {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

}  // namespace

std::string WebPage(absl::string_view name) {
  return absl::StrReplaceAll(kPage, {{"{{NAME}}", HtmlEscaped(name)}});
}

}  // namespace callmesh::webview
