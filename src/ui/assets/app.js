// The dashboard's only script: the cancel and retry buttons call the API, and a job's
// timeline follows its event stream. Everything from a job is written as text, never HTML.
"use strict";

const KINDS = ["created", "dispatched", "started", "succeeded", "retrying", "failed",
  "cancelled", "lease_expired", "released", "retried", "deferred", "webhook"];

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text;
  row.appendChild(td);
  return td;
}

function showProblem(text) {
  const box = document.getElementById("action-problem");
  if (box) {
    box.textContent = text;
    box.hidden = false;
  }
}

async function act(button) {
  button.disabled = true;
  const path = "/api/v1/jobs/" + encodeURIComponent(button.dataset.job) + "/" + button.dataset.action;
  try {
    const response = await fetch(path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: "{}",
      credentials: "same-origin",
    });
    if (response.ok) {
      window.location.reload();
      return;
    }
    const problem = await response.json().catch(() => ({}));
    showProblem(problem.detail || ("HTTP " + response.status));
  } catch (e) {
    showProblem(String(e));
  }
  button.disabled = false;
}

function follow(table) {
  if (!window.EventSource || table.dataset.finished === "true") {
    return;
  }
  let last = Number(table.dataset.last || 0);
  const body = table.querySelector("tbody");
  const state = document.getElementById("job-state");
  const stream = new EventSource(table.dataset.stream, { withCredentials: true });
  const onEvent = (message) => {
    const event = JSON.parse(message.data);
    if (event.id <= last) {
      return;
    }
    last = event.id;
    const row = document.createElement("tr");
    cell(row, String(event.id));
    cell(row, event.at);
    cell(row, event.kind);
    cell(row, String(event.attempt));
    cell(row, event.worker_id || "");
    const detail = cell(row, "");
    const code = document.createElement("code");
    code.textContent = JSON.stringify(event.detail);
    detail.appendChild(code);
    body.appendChild(row);
    if (state && (event.kind === "started" || event.kind === "retried")) {
      state.textContent = event.kind === "started" ? "running" : "queued";
      state.className = "state state-" + state.textContent;
    }
  };
  for (const kind of KINDS) {
    stream.addEventListener(kind, onEvent);
  }
  stream.addEventListener("end", () => {
    stream.close();
    window.location.reload();
  });
}

document.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("button.action")) {
    button.addEventListener("click", () => act(button));
  }
  const timeline = document.getElementById("timeline");
  if (timeline) {
    follow(timeline);
  }
});
