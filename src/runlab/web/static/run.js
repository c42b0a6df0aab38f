// One run: identity, summary, charts per epoch and per step (downsampled by the server),
// backtests, gates, warnings, figures, config tree, artifacts, stdout tail; polls while live.
"use strict";
(() => {
  const { api, h, fmt, duration, when, badge, lineChart } = RL;
  RL.nav("");
  const runId = decodeURIComponent(location.pathname.split("/").pop());
  const $ = (id) => document.getElementById(id);
  const file = (path, inline) =>
    `/api/runs/${encodeURIComponent(runId)}/files/${path.split("/").map(encodeURIComponent).join("/")}` + (inline ? "?inline=true" : "");
  const kv = (pairs) => pairs.filter(([, v]) => v !== null && v !== undefined && v !== "")
    .flatMap(([k, v]) => [h("div", {}, k), h("div", {}, v instanceof Node ? v : fmt(v))]);

  // the cluster job a run ran in (run.json's scheduler): "slurm job 12_3 (array task 3) on node7"
  const jobText = (job) => job && typeof job === "object" && job.job_id
    ? `${job.name} job ${job.job_id}${job.array_index != null ? ` (array task ${job.array_index})` : ""}${job.node ? ` on ${job.node}` : ""}`
    : null;

  function identity(run) {
    const i = run.info, git = i.git || {};
    $("identity").replaceChildren(...kv([
      ["id", i.id], ["created", when(i.created)], ["started", when(i.started)], ["ended", when(i.ended)],
      ["duration", duration(i.duration_seconds)], ["host", i.host], ["pid", i.pid], ["device", i.device],
      ["job", jobText(i.scheduler)],
      ["seed", i.seed], ["git", git.commit ? `${git.commit.slice(0, 10)}${git.dirty ? ` (dirty${git.diff ? ", " + git.diff : ""})` : ""}` : null],
      ["launched by", i.launched_by ? `${i.launched_by} (queue ${i.queue_entry})` : null],
      ["command", (i.command || []).join(" ")], ["versions", i.versions], ["parent", i.parent],
      ["trial", i.trial], ["tags", Object.keys(run.tags || {}).length ? run.tags : null],
      ["overrides", run.overrides.length ? run.overrides.join(" ") : null],
      ["progress", run.heartbeat && run.status === "running"
        ? `epoch ${run.heartbeat.epoch ?? "?"}, ${Math.round((run.heartbeat.progress || 0) * 100)}%, ETA ${duration(run.heartbeat.eta_seconds)}` : null],
    ]));
  }

  function summary(run) {
    const pairs = Object.entries(run.summary);
    $("summary").replaceChildren(...(pairs.length ? kv(pairs) : [h("div", { class: "muted" }, "no summary yet")]));
    $("failure").replaceChildren(run.error
      ? h("div", { class: "card" }, h("b", { class: "neg" }, `${run.error.type}: ${run.error.message}`),
          h("pre", { class: "log" }, run.error.traceback || ""))
      : "");
  }

  function charts(series) {
    const grid = $("charts");
    const wanted = [];
    for (const [metric, splits] of Object.entries(series.epoch)) {
      wanted.push([`epoch:${metric}`, metric + " by epoch",
        Object.entries(splits).map(([split, [xs, ys]]) => ({ label: split || metric, xs, ys })), "epoch"]);
    }
    for (const [name, [xs, ys]] of Object.entries(series.step)) {
      wanted.push([`step:${name}`, name + " by step", [{ label: name, xs, ys }], "step"]);
    }
    for (const [name, [xs, ys]] of Object.entries(series.system || {})) {
      wanted.push([`system:${name}`, "system: " + name, [{ label: name, xs, ys }], "seconds"]);
    }
    if (!wanted.length) { grid.replaceChildren(h("div", { class: "muted" }, "no scalars yet")); return; }
    for (const [key, title, lines, xLabel] of wanted) {
      let box = grid.querySelector(`[data-key="${CSS.escape(key)}"]`);
      if (!box) { box = h("div", { class: "chart", "data-key": key }); grid.append(box); }
      lineChart(box, title, lines, { xLabel });
    }
  }

  async function backtests(run) {
    if (!run.backtests.length) return;
    const data = await api(`/api/runs/${encodeURIComponent(runId)}/backtests`);
    const section = $("backtests");
    if (!section.childElementCount) section.append(h("h2", {}, "Backtests"), h("div", { class: "grid", id: "bt" }));
    for (const [split, bt] of Object.entries(data)) {
      for (const column of ["equity", "drawdown"]) {
        const key = `bt:${split}:${column}`;
        let box = $("bt").querySelector(`[data-key="${CSS.escape(key)}"]`);
        if (!box) { box = h("div", { class: "chart", "data-key": key }); $("bt").append(box); }
        const [xs, ys] = bt[column];
        lineChart(box, `${split}: ${column}`, [{ label: column, xs, ys, color: column === "equity" ? "#2b8a3e" : "#c92a2a" }],
          { xLabel: `period (${bt.dates[0] || ""} … ${bt.dates[bt.dates.length - 1] || ""})` });
      }
    }
  }

  function gates(run) {
    if (!run.gates.length && !run.gate_events.length) { $("gates").replaceChildren(h("span", { class: "muted" }, "no gates")); return; }
    const rows = (Array.isArray(run.gates) ? run.gates : Object.values(run.gates)).map((g) =>
      h("tr", {}, h("td", {}, g.name), h("td", {}, badge(g.status === "passed" ? "finished" : g.status === "failed" ? "failed" : "created")),
        h("td", {}, g.status), h("td", {}, fmt(g.epoch)), h("td", { class: "muted" }, g.require || g.expression || ""), h("td", {}, fmt(g.values))));
    const events = run.gate_events.map((e) => h("tr", {}, h("td", {}, e.name), h("td", {}, fmt(e.epoch)),
      h("td", { class: e.passed ? "pos" : "neg" }, e.passed ? "passed" : "failed"), h("td", { class: "muted" }, e.expression), h("td", {}, fmt(e.values))));
    $("gates").replaceChildren(
      h("table", {}, h("thead", {}, h("tr", {}, ["gate", "", "outcome", "epoch", "require", "values"].map((t) => h("th", {}, t)))), h("tbody", {}, rows)),
      events.length ? h("details", {}, h("summary", {}, `${events.length} evaluations`),
        h("table", {}, h("tbody", {}, events))) : "");
  }

  function warnings(run) {
    if (!run.warnings.length) { $("warnings").replaceChildren(h("span", { class: "muted" }, "none")); return; }
    $("warnings").replaceChildren(h("table", {}, h("tbody", {}, run.warnings.map((w) => h("tr", {},
      h("td", {}, new Date(w.time * 1000).toISOString().replace("T", " ").slice(0, 19)),
      h("td", {}, w.event === "on_exception" ? "exception" : (w.code || w.sink || "warning")),
      h("td", {}, w.message || w.error || ""))))));
  }

  function figures(run) {
    $("figures").replaceChildren(...(run.figures.length
      ? run.figures.map((f) => h("a", { href: file(f.path, true), target: "_blank" }, h("img", { src: file(f.path, true), alt: f.path, title: f.path })))
      : [h("span", { class: "muted" }, "no figures")]));
  }

  function tree(value, label, depth = 0) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      const node = h("details", { class: "tree", open: depth < 1 }, h("summary", {}, label));
      for (const [k, v] of Object.entries(value)) node.append(tree(v, k, depth + 1));
      return node;
    }
    return h("div", { class: "leaf" }, h("span", { class: "muted" }, label + ": "), fmt(value));
  }

  function files(run) {
    $("files").replaceChildren(h("table", {}, h("tbody", {}, run.files.map((f) => h("tr", {},
      h("td", {}, h("a", { href: file(f.path), download: f.path.split("/").pop() }, f.path)),
      h("td", { class: "num muted" }, `${(f.size / 1024).toFixed(1)} KiB`))))));
  }

  async function stop() {
    if (!confirm("Stop this run at its next step? It saves last.pt and ends 'stopped'.")) return;
    try { const r = await api(`/api/runs/${encodeURIComponent(runId)}/stop`, { method: "POST" }); alert(r.detail); }
    catch (err) { $("error").textContent = err.message; }
  }
  $("stop").onclick = stop;

  // notes and tags: edited here (the token is needed), kept in notes.md and tags.json
  let edited = false;
  function annotations(run) {
    if (edited) return;  // what the person types is not replaced by a refresh
    $("tags").value = Object.entries(run.tags || {}).map(([k, v]) => `${k}=${v}`).join(" ");
    $("notes").value = run.notes || "";
  }
  $("tags").oninput = $("notes").oninput = () => { edited = true; $("saved").textContent = ""; };
  $("save-notes").onclick = async () => {
    const tags = {};
    for (const pair of $("tags").value.split(/\s+/).filter(Boolean)) {
      const at = pair.indexOf("=");
      if (at < 1) { $("annotate-error").textContent = `tag ${pair}: write key=value`; return; }
      tags[pair.slice(0, at)] = pair.slice(at + 1);
    }
    const put = (what, body) => api(`/api/runs/${encodeURIComponent(runId)}/${what}`, {
      method: "PUT", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    try {
      await put("tags", { tags });
      await put("notes", { text: $("notes").value });
      edited = false;
      $("annotate-error").textContent = "";
      $("saved").textContent = "saved";
    } catch (err) { $("annotate-error").textContent = err.message; }
  };

  let first = true;
  async function load() {
    try {
      const run = await api(`/api/runs/${encodeURIComponent(runId)}`);
      document.title = `runlab · ${run.name || run.id}`;
      $("name").textContent = run.name || run.id;
      $("status").replaceChildren(badge(run.status));
      $("stop").hidden = run.status !== "running";
      identity(run); summary(run); annotations(run); gates(run); warnings(run); figures(run); files(run);
      if (first) $("config").replaceChildren(tree(run.config, "config"));
      charts(await api(`/api/runs/${encodeURIComponent(runId)}/series?points=1000`));
      await backtests(run);
      $("stdout").textContent = (await api(`/api/runs/${encodeURIComponent(runId)}/stdout?lines=200`)).text;
      $("error").textContent = "";
      first = false;
      return run.status === "running" || run.status === "created";
    } catch (err) {
      $("error").textContent = err.message;
      return false;
    }
  }

  (async function poll() {
    const live = await load();
    if (live) setTimeout(poll, 2000);
  })();
})();
