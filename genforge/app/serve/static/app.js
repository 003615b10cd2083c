// genforge web UI: a little plain JavaScript over the /v1 API (the sign-in cookie carries the token).
"use strict";

const $ = (sel) => document.querySelector(sel);
const $$ = (sel) => Array.from(document.querySelectorAll(sel));

function showError(message) {
  const box = $("#error");
  box.textContent = message;
  box.hidden = !message;
  if (message) box.scrollIntoView({block: "nearest"});
}

async function api(method, url, body, raw) {
  const opts = {method, credentials: "same-origin", headers: {}};
  if (raw !== undefined) { opts.body = raw; opts.headers["Content-Type"] = "application/octet-stream"; }
  else if (body !== undefined) { opts.body = JSON.stringify(body); opts.headers["Content-Type"] = "application/json"; }
  const resp = await fetch(url, opts);
  if (!resp.ok) {
    let message = `${resp.status} ${resp.statusText}`;
    try { message = (await resp.json()).error.message; } catch (e) { /* not JSON */ }
    throw new Error(message);
  }
  return resp;
}

function guess(text) {  // a typed value from a form field: numbers, booleans, else the text
  const t = text.trim();
  if (/^-?\d+$/.test(t)) return parseInt(t, 10);
  if (/^-?(\d+\.\d*|\.\d+|\d+)(e-?\d+)?$/i.test(t)) return parseFloat(t);
  if (t === "true" || t === "false") return t === "true";
  if (/^\[.*\]$/.test(t)) { try { return JSON.parse(t); } catch (e) { return t; } }
  return t;
}

function pairs(text) {  // "key=value" lines -> object
  const out = {};
  for (const line of text.split("\n").map((l) => l.trim()).filter(Boolean)) {
    const at = line.indexOf("=");
    if (at < 1) throw new Error(`'${line}' is not key=value`);
    out[line.slice(0, at).trim()] = guess(line.slice(at + 1));
  }
  return out;
}

// -- new training ------------------------------------------------------------------------------
function trainPage() {
  const catalog = JSON.parse($("#catalog").textContent);
  const models = Object.fromEntries(catalog.models.map((m) => [m.name, m]));
  const mods = Object.fromEntries(catalog.modalities.map((m) => [m.name, m]));
  const describe = () => {
    const m = models[$("#model").value];
    const mod = mods[m.modality];
    $("#model-description").textContent = m.description;
    $("#demo-name").textContent = mod.default_data || "none";
    $("#data-options").textContent = mod.data_options.join(", ") || "none";
    const props = (m.options && m.options.properties) || {};
    $("#option-help").innerHTML = "<tr><th>option</th><th>default</th><th>what</th></tr>" + Object.entries(props)
      .map(([k, p]) => `<tr><td><code>${k}</code></td><td>${JSON.stringify(p.default ?? null)}</td><td>${p.description || ""}</td></tr>`).join("");
  };
  $("#model").addEventListener("change", describe);
  $("#dataset").addEventListener("change", () => {
    const kind = $("#dataset").selectedOptions[0]?.dataset.kind;
    const first = kind && mods[kind] && mods[kind].models[0];
    if (first && models[$("#model").value].modality !== kind) { $("#model").value = first; describe(); }
  });
  describe();
  $("#train-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const button = $("#start");
    button.disabled = true;
    try {
      const model = $("#model").value;
      const source = $$("input[name=source]").find((r) => r.checked).value;
      let datasetId = null;
      if (source === "dataset") datasetId = $("#dataset").value || null;
      if (source === "upload") {
        const file = $("#file").files[0];
        if (!file) throw new Error("choose a file to upload, or pick the demo data");
        const kind = models[model].modality;
        const resp = await api("POST", `/v1/datasets?name=${encodeURIComponent(file.name)}&kind=${kind}`, undefined, file);
        datasetId = (await resp.json()).id;
      }
      const body = {model, dataset_id: datasetId, options: pairs($("#options").value),
                    data_options: pairs($("#data-opts").value), seed: parseInt($("#seed").value || "0", 10)};
      if ($("#minutes").value) body.minutes = parseFloat($("#minutes").value);
      if ($("#steps").value) body.steps = parseInt($("#steps").value, 10);
      const run = await (await api("POST", "/v1/jobs", body)).json();
      location.href = `/runs/${run.id}`;
    } catch (e) { showError(e.message); button.disabled = false; }
  });
}

// -- a run -------------------------------------------------------------------------------------
function drawChart(rows) {
  const svg = $("#chart");
  if (!svg || !rows.length) return;
  const keys = Object.keys(rows[rows.length - 1]).filter((k) => k !== "step" && k !== "elapsed" && typeof rows[rows.length - 1][k] === "number");
  const W = 600, H = 240, P = 30;
  const steps = rows.map((r) => r.step);
  const x0 = Math.min(...steps), x1 = Math.max(...steps) || 1;
  const colours = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c"];
  let out = "";
  keys.slice(0, 5).forEach((k, i) => {
    const pts = rows.filter((r) => typeof r[k] === "number");
    const vals = pts.map((r) => r[k]);
    const lo = Math.min(...vals), hi = Math.max(...vals), span = hi - lo || 1;
    const d = pts.map((r, j) => `${j ? "L" : "M"}${(P + (W - 2 * P) * (r.step - x0) / ((x1 - x0) || 1)).toFixed(1)},${(H - P - (H - 2 * P) * (r[k] - lo) / span).toFixed(1)}`).join("");
    out += `<path d="${d}" fill="none" stroke="${colours[i]}" stroke-width="1.5"/>`;
    out += `<text x="${P + i * 110}" y="16" fill="${colours[i]}" font-size="12">${k} ${vals[vals.length - 1].toPrecision(3)}</text>`;
  });
  out += `<text x="${P}" y="${H - 8}" font-size="11">step ${x0}</text><text x="${W - P - 60}" y="${H - 8}" font-size="11">step ${x1}</text>`;
  svg.innerHTML = out;
}

function showEvaluations(run) {
  const box = $("#evaluations");
  if (!run.evaluations.length) { box.innerHTML = '<p class="muted">Not evaluated yet.</p>'; }
  else {
    const names = Object.keys(run.evaluations[run.evaluations.length - 1].metrics).slice(0, 8);
    box.innerHTML = `<table><thead><tr><th>when</th>${names.map((n) => `<th>${n}</th>`).join("")}<th></th></tr></thead><tbody>` +
      run.evaluations.map((e) => `<tr><td>${e.created_at.replace("T", " ").slice(0, 16)}</td>` +
        names.map((n) => { const v = (e.metrics[n] || {}).value; return `<td>${typeof v === "number" ? v.toPrecision(4) : "—"}</td>`; }).join("") +
        `<td><a href="/v1/runs/${run.id}/report?evaluation=${e.id}" target="_blank">report</a></td></tr>`).join("") + "</tbody></table>";
  }
  const c = run.comparison;
  if (c) {
    $("#comparison").innerHTML = c.verdict === "unknown" ? `<p class="muted">${c.note}</p>` :
      `<p id="verdict" class="verdict ${c.verdict}">Against run <a href="/runs/${c.against}">${c.against}</a>: quality ${c.verdict === "better" ? "went up" : c.verdict === "worse" ? "went down" : c.verdict} (${c.better} metrics better, ${c.worse} worse)</p>`;
  }
}

function runPage() {
  let run = JSON.parse($("#run-data").textContent);
  const refresh = async () => {
    run = await (await api("GET", `/v1/runs/${run.id}`)).json();
    showEvaluations(run);
    drawChart((await (await api("GET", `/v1/runs/${run.id}/metrics`)).json()).rows);
    const thumb = $("#thumb");
    if (thumb) thumb.src = `/v1/runs/${run.id}/thumbnail?t=${Date.now()}`;
  };
  const show = (job) => {
    $("#status").textContent = job.kind === "evaluate" && job.state !== "failed" ? `${job.state === "finished" ? "evaluated" : "evaluating"}` : job.state;
    $("#status").className = `state ${job.state}`;
    $("#step").textContent = job.step;
    $("#total").textContent = job.total_steps ? ` of ${job.total_steps}` : "";
    $("#eta").textContent = job.eta_s != null && job.state === "running" ? `about ${Math.ceil(job.eta_s)} s left` : (job.kind === "evaluate" ? `evaluation ${job.state}` : "");
    $("#bar").value = job.state === "finished" ? 1 : (job.total_steps ? job.step / job.total_steps : 0);
    $("#losses").textContent = Object.entries(job.losses || {}).map(([k, v]) => `${k} ${Number(v).toFixed(4)}`).join("   ");
    const active = ["queued", "running", "interrupted", "cancelling"].includes(job.state);
    $("#cancel").hidden = !active;
    ["#resume", "#evaluate", "#retrain"].forEach((id) => { $(id).disabled = active; });
    const err = $("#job-error");
    err.hidden = !job.error; err.textContent = job.error || "";
  };
  const follow = (job) => {
    if (!job) return;
    show(job);
    const src = new EventSource(`/v1/jobs/${job.id}/events`);
    src.addEventListener("progress", (ev) => { show(JSON.parse(ev.data)); refresh().catch(() => {}); });
    src.addEventListener("end", (ev) => { show(JSON.parse(ev.data)); src.close(); refresh().catch(() => {}); });
    src.onerror = () => src.close();
  };
  follow(run.job);
  refresh().catch((e) => showError(e.message));
  const act = (id, fn) => $(id).addEventListener("click", async () => { showError(""); try { await fn(); } catch (e) { showError(e.message); } });
  act("#cancel", async () => { if (run.job) show(await (await api("POST", `/v1/jobs/${run.job.id}/cancel`)).json()); });
  act("#resume", async () => {
    const steps = prompt("Train to how many steps in total?", String((run.step || 0) * 2 || 1000));
    if (steps) follow(await (await api("POST", `/v1/runs/${run.id}/resume`, {steps: parseInt(steps, 10)})).json());
  });
  act("#evaluate", async () => follow(await (await api("POST", `/v1/runs/${run.id}/evaluate`, {})).json()));
  act("#retrain", async () => { const r = await (await api("POST", `/v1/runs/${run.id}/retrain`, {})).json(); location.href = `/runs/${r.id}`; });
}

// -- generate ----------------------------------------------------------------------------------
function parseCsv(text, maxRows) {
  const rows = []; let row = [], cell = "", quoted = false;
  for (let i = 0; i < text.length && rows.length <= maxRows; i++) {
    const ch = text[i];
    if (quoted) { if (ch === '"') { if (text[i + 1] === '"') { cell += '"'; i++; } else quoted = false; } else cell += ch; }
    else if (ch === '"') quoted = true;
    else if (ch === ",") { row.push(cell); cell = ""; }
    else if (ch === "\n") { row.push(cell); rows.push(row); row = []; cell = ""; }
    else if (ch !== "\r") cell += ch;
  }
  if (cell || row.length) { row.push(cell); rows.push(row); }
  return rows;
}

function esc(s) { return String(s).replace(/[&<>"]/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c])); }

function generatePage() {
  const box = $("#gen");
  const runId = box.dataset.run, streams = box.dataset.streams === "1";
  $("#gen-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    showError("");
    const options = {};
    $$(".choice").forEach((s) => { if (s.value) options[s.dataset.control] = s.value; });
    const where = {};
    $$(".cond").forEach((s) => { if (s.value) where[s.dataset.column] = s.value; });
    if (Object.keys(where).length) options.where = where;
    $$(".free").forEach((f) => { if (f.value.trim()) options[f.dataset.control] = f.dataset.control === "prompt" ? f.value : guess(f.value); });
    const seed = $("#seed").value ? parseInt($("#seed").value, 10) : null;
    const result = $("#result");
    const button = $("#go");
    button.disabled = true;
    try {
      if (streams) {
        result.innerHTML = `<pre id="text-out" class="text"></pre>`;
        const out = $("#text-out");
        out.textContent = options.prompt || "";
        const resp = await api("POST", `/v1/runs/${runId}/stream`, {seed, options});
        const reader = resp.body.getReader(), decoder = new TextDecoder();
        let buf = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += decoder.decode(value, {stream: true});
          let at;
          while ((at = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, at); buf = buf.slice(at + 2);
            const kind = (block.match(/^event: (.*)$/m) || [])[1], data = JSON.parse((block.match(/^data: (.*)$/m) || [0, "{}"])[1]);
            if (kind === "token") out.textContent += data.text;
            if (kind === "error") showError(data.message);
            if (kind === "end") out.classList.add("done");
          }
        }
      } else {
        const format = $("#format").value, n = parseInt($("#n").value, 10);
        const blob = await (await api("POST", `/v1/runs/${runId}/samples`, {n, format, seed, options})).blob();
        const url = URL.createObjectURL(blob);
        const link = `<p><a id="download-samples" href="${url}" download="samples.${format}">Download ${n} samples (.${format})</a></p>`;
        if (format === "png") result.innerHTML = `<img id="samples-img" class="big" src="${url}" alt="generated images">` + link;
        else if (format === "csv") {
          const rows = parseCsv(await blob.text(), 20);
          result.innerHTML = link + `<div class="scroll"><table id="samples-table"><thead><tr>${rows[0].map((h) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>` +
            rows.slice(1).map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join("")}</tr>`).join("") + "</tbody></table></div>" +
            `<p class="muted">the first ${rows.length - 1} rows</p>`;
        } else if (format === "jsonl" || format === "txt") {
          result.innerHTML = `<pre class="text">${esc(await blob.text())}</pre>` + link;
        } else result.innerHTML = link;
      }
    } catch (e) { showError(e.message); }
    button.disabled = false;
  });
}

document.addEventListener("DOMContentLoaded", () => {
  if ($("#train-form")) trainPage();
  if ($("#run-data")) runPage();
  if ($("#gen-form")) generatePage();
});
