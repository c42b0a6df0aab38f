// Runs side by side: one metric overlaid for every run, summary metrics with deltas against a
// baseline, and the config values that differ.
"use strict";
(() => {
  const { api, h, fmt, badge, lineChart } = RL;
  RL.nav("");
  const $ = (id) => document.getElementById(id);
  const query = new URLSearchParams(location.search);
  const ids = (query.get("ids") || "").split(",").filter(Boolean);
  let baseline = query.get("baseline") || ids[0] || "";
  const series = {};
  const labels = {};  // run name, with the id's tail where two runs share a name

  function tables(table) {
    const names = Object.fromEntries(table.rows.map((r) => [r.id, r.name || r.id]));
    const head = (first) => h("thead", {}, h("tr", {}, h("th", {}, first),
      table.rows.map((r) => h("th", {}, h("a", { href: `/run/${encodeURIComponent(r.id)}` }, names[r.id]), r.baseline ? " (baseline)" : ""))));
    $("metrics").replaceChildren(head("metric"), h("tbody", {},
      h("tr", {}, h("td", {}, "status"), table.rows.map((r) => h("td", {}, badge(r.status)))),
      table.metrics.map((m) => h("tr", {}, h("td", {}, m), table.rows.map((r) => {
        const d = r.delta ? r.delta[m] : null;
        const delta = d !== null && d !== undefined && !r.baseline
          ? h("span", { class: "muted" }, ` (${d > 0 ? "+" : ""}${fmt(d)})`) : "";
        return h("td", { class: "num" }, fmt(r.metrics[m]), delta);
      })))));
    $("params").replaceChildren(head("param"), h("tbody", {}, table.params.length
      ? table.params.map((p) => h("tr", {}, h("td", {}, p), table.rows.map((r) => h("td", { class: "num" }, fmt(r.config[p])))))
      : h("tr", {}, h("td", { class: "muted" }, "the configs are the same"))));
  }

  // runs in groups (runlab compare --group-by): a table of mean ± std per metric, and for an
  // epoch metric one band per group, its mean and mean ± one standard deviation
  async function groups(kind, metric, split) {
    const spec = $("group-by").value.trim();
    const box = $("overlay");
    const curve = kind === "epoch" ? `${split}.${metric}` : "";
    const found = await api(`/api/compare/groups?ids=${ids.map(encodeURIComponent).join(",")}` +
      `&group_by=${encodeURIComponent(spec)}&curve=${encodeURIComponent(curve)}`);
    $("group-error").textContent = "";
    const shown = found.metrics.slice(0, 8);
    const cell = (st) => st.mean === null ? "" : fmt(st.mean) + (st.std === null ? "" : ` ± ${fmt(st.std)}`);
    $("groups-card").hidden = false;
    $("groups").replaceChildren(
      h("thead", {}, h("tr", {}, h("th", {}, "group"), h("th", {}, "runs"), shown.map((m) => h("th", {}, m)))),
      h("tbody", {}, found.groups.map((g) => h("tr", {}, h("td", {}, g.label), h("td", { class: "num" }, g.count),
        shown.map((m) => h("td", { class: "num" }, cell(g.stats[m])))))));
    if (box._chart) { box._chart.destroy(); box._chart = null; }
    if (!found.curve) { box.replaceChildren(h("p", { class: "muted" }, "bands are drawn for epoch metrics")); return; }
    const lines = [], bands = [];
    found.curve.groups.forEach((g, i) => {
      const color = RL.COLORS[i % RL.COLORS.length];
      const hi = g.mean.map((m, j) => (m === null || g.std[j] === null ? m : m + g.std[j]));
      const lo = g.mean.map((m, j) => (m === null || g.std[j] === null ? m : m - g.std[j]));
      lines.push({ label: `${g.label} (mean)`, xs: g.epoch, ys: g.mean, color, width: 2 });
      lines.push({ label: "+1 std", xs: g.epoch, ys: hi, color, width: 0.5 });
      lines.push({ label: "-1 std", xs: g.epoch, ys: lo, color, width: 0.5 });
      bands.push({ series: [lines.length - 1, lines.length], fill: color + "33" });
    });
    lineChart(box, `${split} ${metric} by epoch: mean ± std per group`, lines, { xLabel: "epoch", height: 300, bands });
  }

  function chart() {
    const [kind, metric, split] = $("metric").value.split("|");
    if ($("group-by").value.trim()) {
      groups(kind, metric, split).catch((err) => { $("group-error").textContent = err.message; });
      return;
    }
    $("groups-card").hidden = true;
    const lines = ids.filter((id) => series[id]).map((id) => {
      const s = series[id][kind][metric];
      const [xs, ys] = kind === "epoch" ? (s && s[split]) || [[], []] : s || [[], []];
      return { label: labels[id] || id, xs, ys };
    });
    const box = $("overlay");
    if (box._chart) { box._chart.destroy(); box._chart = null; }
    lineChart(box, `${kind === "epoch" ? split + " " : ""}${metric} by ${kind}`, lines, { xLabel: kind, height: 300 });
  }

  async function load() {
    if (ids.length < 1) { $("error").textContent = "select runs on the runs page, then Compare"; return; }
    try {
      const table = await api(`/api/compare?ids=${ids.map(encodeURIComponent).join(",")}&baseline=${encodeURIComponent(baseline)}`);
      $("count").textContent = `${ids.length} runs`;
      $("baseline").replaceChildren(...table.rows.map((r) => h("option", { value: r.id, selected: r.id === baseline }, r.name ? `${r.name} · ${r.id}` : r.id)));
      tables(table);
      for (const r of table.rows) {
        const twins = table.rows.filter((o) => o.name === r.name).length > 1;
        labels[r.id] = r.name ? (twins ? `${r.name} · ${r.id.slice(-4)}` : r.name) : r.id;
      }
      await Promise.all(ids.map(async (id) => { series[id] = await api(`/api/runs/${encodeURIComponent(id)}/series?points=1000`); }));
      const options = new Map();
      for (const s of Object.values(series)) {
        for (const [metric, splits] of Object.entries(s.epoch)) for (const split of Object.keys(splits)) options.set(`epoch|${metric}|${split}`, `${split} ${metric} (epoch)`);
        for (const name of Object.keys(s.step)) options.set(`step|${name}|`, `${name} (step)`);
      }
      const previous = $("metric").value;
      $("metric").replaceChildren(...[...options].map(([value, label]) => h("option", { value }, label)));
      const preferred = [previous, "epoch|loss|val", "epoch|loss|train"].find((v) => options.has(v));
      if (preferred) $("metric").value = preferred;
      if (options.size) chart();
      $("error").textContent = "";
    } catch (err) { $("error").textContent = err.message; }
  }

  $("baseline").onchange = () => {
    baseline = $("baseline").value;
    query.set("baseline", baseline);
    history.replaceState(null, "", "/compare?" + query);
    load();
  };
  $("metric").onchange = chart;
  $("group-by").value = query.get("group_by") || "";
  $("group-by").onchange = () => {
    const spec = $("group-by").value.trim();
    if (spec) query.set("group_by", spec); else query.delete("group_by");
    history.replaceState(null, "", "/compare?" + query);
    chart();
  };
  load();
})();
