// The taskcache page: plain DOM and fetch, no build step. Talks to /taskcache/api/.
(function () {
  "use strict";
  const cfg = window.TASKCACHE;
  const api = cfg.baseUrl + "taskcache/api/";
  const state = { page: 0, pageSize: 25, filters: {}, selected: null, marker: null, task: null, watching: null };
  const $ = (sel) => document.querySelector(sel);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));

  async function call(path, options) {
    const opts = Object.assign({ headers: {} }, options || {});
    opts.headers["X-XSRFToken"] = cfg.xsrf;
    if (opts.body) { opts.headers["Content-Type"] = "application/json"; }
    const response = await fetch(api + path, opts);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) { const err = new Error(body.error || response.statusText); err.body = body; throw err; }
    return body;
  }

  function duration(s) {
    if (s == null) return "-";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 60) return s.toFixed(1) + " s";
    return Math.floor(s / 60) + " min " + String(Math.round(s % 60)).padStart(2, "0") + " s";
  }
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "-");
  const badge = (status) => '<span class="tc-badge ' + esc(status) + '">' + esc(status) + "</span>";

  // -- runs ------------------------------------------------------------------------------
  async function loadRuns() {
    const q = new URLSearchParams(Object.assign({ page: state.page, page_size: state.pageSize }, state.filters));
    for (const [k, v] of [...q.entries()]) if (v === "") q.delete(k);
    let data;
    try { data = await call("runs?" + q.toString()); } catch (err) { $("#tc-live").textContent = err.message; return; }
    const body = $("#tc-runs tbody");
    body.innerHTML = data.runs.map((r) =>
      '<tr data-id="' + r.id + '"' + (r.id === state.selected ? ' class="tc-selected"' : "") + ">" +
      "<td>#" + r.id + "</td><td>" + esc(r.task) + "</td><td>" + badge(r.status) + "</td><td>" + esc(when(r.started_at || r.created_at)) +
      "</td><td>" + duration(r.duration) + "</td><td>" + r.hit_count + '</td><td class="tc-err">' +
      esc(r.error_type ? r.error_type + ": " + (r.error_message || "") : "") + "</td></tr>").join("");
    const pages = Math.max(1, Math.ceil(data.total / state.pageSize));
    $("#tc-page").textContent = "page " + (state.page + 1) + " of " + pages + " (" + data.total + " runs)";
    $("#tc-prev").disabled = state.page === 0;
    $("#tc-next").disabled = state.page + 1 >= pages;
    const taskSelect = $("#tc-filters select[name=task]");
    const chosen = taskSelect.value;
    taskSelect.innerHTML = '<option value="">all</option>' + data.tasks.map((t) => "<option>" + esc(t) + "</option>").join("");
    taskSelect.value = chosen;
  }

  async function showRun(id) {
    state.selected = id;
    document.querySelectorAll("#tc-runs tbody tr").forEach((tr) => tr.classList.toggle("tc-selected", Number(tr.dataset.id) === id));
    const box = $("#tc-detail");
    let r;
    try { r = await call("runs/" + id); } catch (err) { box.innerHTML = '<p class="tc-message tc-bad">' + esc(err.message) + "</p>"; return; }
    const error = r.error_type ? '<p class="tc-error-line">' + esc(r.error_type + ": " + (r.error_message || "")) + "</p>" : "";
    const inputs = r.inputs.map((i) => "<tr><td>" + esc(i.name) + "</td><td>" + esc(i.type_name) + "</td><td>" + esc(i.repr) +
      "</td><td>" + (i.producer_run_id ? '<a href="#" data-run="' + i.producer_run_id + '">#' + i.producer_run_id + "</a>" : "") + "</td></tr>").join("");
    const outputs = r.artifacts.filter((a) => !a.name.startsWith("__")).map((a) => "<tr><td>" + esc(a.name) + "</td><td>" + esc(a.type_name) +
      "</td><td>" + esc(a.repr) + "</td></tr>").join("");
    const cancel = r.status === "running" ? '<button id="tc-cancel" data-id="' + r.id + '">Cancel run</button> <span id="tc-cancel-msg"></span>' : "";
    box.innerHTML = "<h2>#" + r.id + " " + esc(r.task) + " " + badge(r.status) + "</h2>" + error + cancel +
      "<p class=\"tc-muted\">started " + esc(when(r.started_at || r.created_at)) + " · " + duration(r.duration) + " · " + r.hit_count + " hits</p>" +
      (inputs ? '<h3>Inputs</h3><table class="tc-table"><tbody>' + inputs + "</tbody></table>" : "") +
      (outputs ? '<h3>Outputs</h3><table class="tc-table"><tbody>' + outputs + "</tbody></table>" : "") +
      (r.traceback ? "<h3>Traceback</h3><pre>" + esc(r.traceback) + "</pre>" : "") +
      "<h3>Code</h3><pre>" + esc(r.source) + "</pre>" +
      "<h3>Lineage</h3><div class=\"tc-lineage\">" + r.lineage_svg + "</div>";
  }

  // -- tasks and the launch form ---------------------------------------------------------
  let tasks = [];
  async function loadTasks() {
    const data = await call("tasks");
    tasks = data.tasks;
    $("#tc-task-errors").innerHTML = data.errors.map((e) => '<p class="tc-message tc-bad">' + esc(e.module) + ": " + esc(e.error) + "</p>").join("");
    $("#tc-task-list").innerHTML = tasks.length ? tasks.map((t) => '<li data-task="' + esc(t.name) + '"><b>' + esc(t.name) + '</b><br><span class="tc-muted">' + esc(t.module) + "</span></li>").join("")
      : '<li class="tc-muted">No tasks found: list modules in [tool.taskcache] tasks = ["..."]</li>';
  }

  function field(p) {
    const id = "tc-p-" + p.name;
    const val = p.default == null ? "" : p.default;
    let input;
    if (p.kind === "bool") input = '<input type="checkbox" id="' + id + '"' + (val ? " checked" : "") + ">";
    else if (p.kind === "choice") input = '<select id="' + id + '">' + (p.optional ? '<option value="">(none)</option>' : "") + p.choices.map((c) => '<option value="' + esc(JSON.stringify(c)) + '"' + (c === val ? " selected" : "") + ">" + esc(c) + "</option>").join("") + "</select>";
    else if (p.kind === "int" || p.kind === "float") input = '<input type="number" id="' + id + '" step="' + (p.kind === "int" ? "1" : "any") + '" value="' + esc(val) + '">';
    else if (p.kind === "date") input = '<input type="date" id="' + id + '" value="' + esc(val) + '">';
    else if (p.kind === "datetime") input = '<input type="datetime-local" id="' + id + '" value="' + esc(String(val).slice(0, 16)) + '">';
    else if (p.kind === "json" || p.kind.startsWith("list[")) input = '<textarea id="' + id + '" rows="2" placeholder="JSON">' + esc(val === "" ? "" : JSON.stringify(val)) + "</textarea>";
    else input = '<input type="text" id="' + id + '" value="' + esc(val) + '">';
    return '<label for="' + id + '">' + esc(p.name) + (p.required ? " *" : "") + "</label>" + input +
      (p.help || p.annotation ? '<span class="tc-help tc-muted">' + esc([p.annotation, p.help].filter(Boolean).join(" — ")) + "</span>" : "");
  }

  function readForm(t) {
    const args = {};
    for (const p of t.params) {
      const el = document.getElementById("tc-p-" + p.name);
      if (p.kind === "bool") { args[p.name] = el.checked; continue; }
      const raw = el.value;
      if (raw === "") { if (p.required) args[p.name] = null; else if (p.optional) args[p.name] = null; continue; }
      if (p.kind === "int") args[p.name] = Number.isInteger(Number(raw)) ? Number(raw) : raw;
      else if (p.kind === "float") args[p.name] = Number(raw);
      else if (p.kind === "choice") args[p.name] = JSON.parse(raw);
      else if (p.kind === "json" || p.kind.startsWith("list[")) { try { args[p.name] = JSON.parse(raw); } catch (e) { args[p.name] = raw; } }
      else args[p.name] = raw;
    }
    return args;
  }

  function showTask(name) {
    const t = tasks.find((x) => x.name === name);
    state.task = t;
    document.querySelectorAll("#tc-task-list li").forEach((li) => li.classList.toggle("tc-selected", li.dataset.task === name));
    $("#tc-launch").innerHTML = "<h2>" + esc(t.name) + "</h2>" + (t.doc ? '<p class="tc-muted">' + esc(t.doc.split("\n")[0]) + "</p>" : "") +
      '<form id="tc-launch-form" class="tc-form">' + t.params.map(field).join("") +
      '<span></span><button type="submit" class="tc-primary">Launch</button></form><div id="tc-launch-result" class="tc-message"></div>';
    $("#tc-launch-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = $("#tc-launch-result");
      out.className = "tc-message";
      out.textContent = "launching…";
      try {
        const r = await call("tasks/" + encodeURIComponent(t.name) + "/runs", { method: "POST", body: JSON.stringify({ arguments: readForm(t) }) });
        state.watching = r.run_id;
        await watch();
      } catch (err) {
        out.className = "tc-message tc-bad";
        out.textContent = err.message;
      }
    });
  }

  async function watch() {
    if (state.watching == null) return;
    const out = $("#tc-launch-result");
    const r = await call("runs/" + state.watching);
    let html = "run #" + r.id + " " + badge(r.status);
    if (r.status === "running") html += ' <button id="tc-cancel" data-id="' + r.id + '">Cancel</button>';
    if (r.status === "completed") html += " " + esc(r.artifacts.filter((a) => !a.name.startsWith("__")).map((a) => a.name + " = " + a.repr).join(", "));
    if (r.status === "failed") html += '<p class="tc-error-line">' + esc((r.error_type || "") + ": " + (r.error_message || "")) + "</p><pre>" + esc(r.traceback || "") + "</pre>";
    out.innerHTML = html;
    out.dataset.status = r.status;
    if (r.status !== "running" && r.status !== "pending") state.watching = null;
  }

  // -- live: poll the change marker ------------------------------------------------------
  async function poll() {
    try {
      const { marker } = await call("events");
      const key = JSON.stringify(marker);
      if (key !== state.marker) {
        state.marker = key;
        await loadRuns();
        if (state.selected != null && !$("#view-runs").hidden) await showRun(state.selected);
        await watch();
      }
      $("#tc-live").textContent = "live · updated " + new Date().toLocaleTimeString();
    } catch (err) {
      $("#tc-live").textContent = "catalog unavailable: " + err.message;
    }
  }

  // -- wiring ----------------------------------------------------------------------------
  document.addEventListener("click", async (ev) => {
    const tab = ev.target.closest(".tc-tab");
    if (tab) {
      document.querySelectorAll(".tc-tab").forEach((b) => b.classList.toggle("tc-active", b === tab));
      $("#view-runs").hidden = tab.dataset.view !== "runs";
      $("#view-tasks").hidden = tab.dataset.view !== "tasks";
      if (tab.dataset.view === "tasks") await loadTasks();
      return;
    }
    const row = ev.target.closest("#tc-runs tbody tr");
    if (row) { await showRun(Number(row.dataset.id)); return; }
    const link = ev.target.closest("a[data-run]");
    if (link) { ev.preventDefault(); await showRun(Number(link.dataset.run)); return; }
    const item = ev.target.closest("#tc-task-list li[data-task]");
    if (item) { showTask(item.dataset.task); return; }
    if (ev.target.id === "tc-cancel") {
      ev.target.disabled = true;
      try { await call("runs/" + ev.target.dataset.id + "/cancel", { method: "POST" }); } catch (err) { ev.target.insertAdjacentText("afterend", " " + err.message); }
      await poll();
    }
  });
  $("#tc-filters").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    state.filters = Object.fromEntries(form.entries());
    state.page = 0;
    await loadRuns();
  });
  $("#tc-prev").addEventListener("click", async () => { state.page = Math.max(0, state.page - 1); await loadRuns(); });
  $("#tc-next").addEventListener("click", async () => { state.page += 1; await loadRuns(); });
  poll();
  setInterval(poll, 2000);
})();
