// A study or sweep: the best trial, objective by trial (with the best so far), one param
// against the objective, parallel coordinates (SVG) and the trials table.
"use strict";
(() => {
  const { api, h, fmt, badge, lineChart } = RL;
  RL.nav("/studies");
  const [, , kind, name] = location.pathname.split("/").map(decodeURIComponent);
  const $ = (id) => document.getElementById(id);
  const objective = (t) => (t.values && t.values.length ? t.values[0] : null);
  const stateClass = (s) => ({ COMPLETE: "finished", FINISHED: "finished", FAIL: "failed", FAILED: "failed", PRUNED: "pruned", RUNNING: "running" }[s] || "created");

  function byTrial(study, scored) {
    let best = null;
    const better = (a, b) => (study.direction === "maximize" ? a > b : a < b);
    const bestSoFar = scored.map((t) => { const v = objective(t); if (best === null || better(v, best)) best = v; return best; });
    const xs = scored.map((t) => t.number);
    lineChart($("by-trial"), `${study.objectives[0]} by trial (${study.direction})`, [
      { label: "trial", xs, ys: scored.map(objective), points: true },
      { label: "best so far", xs, ys: bestSoFar, points: false, color: "#2b8a3e" },
    ], { xLabel: "trial" });
  }

  function numeric(value) { return typeof value === "number" ? value : null; }

  function byParam(study, scored) {
    const param = $("param").value;
    const pairs = scored.map((t) => [t.params[param], objective(t)]);
    const key = (p) => (typeof p === "string" ? p : JSON.stringify(p));
    const categories = [...new Set(pairs.map(([p]) => p).filter((p) => typeof p !== "number").map(key))];
    const x = (p) => (typeof p === "number" ? p : categories.indexOf(key(p)));
    const box = $("by-param");
    if (box._chart) { box._chart.destroy(); box._chart = null; }
    const sorted = pairs.map(([p, v]) => [x(p), v]).sort((a, b) => a[0] - b[0]);
    // trials with the same value would share one x (one point drawn): nudge them apart
    const span = (sorted[sorted.length - 1][0] - sorted[0][0]) || 1;
    sorted.forEach((p, i) => { if (i && p[0] <= sorted[i - 1][0]) p[0] = sorted[i - 1][0] + span * 1e-6; });
    lineChart(box, `${study.objectives[0]} against ${param}` + (categories.length ? ` (${categories.join(", ")})` : ""),
      [{ label: study.objectives[0], xs: sorted.map((p) => p[0]), ys: sorted.map((p) => p[1]) }], { xLabel: param, points: true });
  }

  function parallel(study, scored) {
    const axes = [...study.params, study.objectives[0]];
    const width = Math.max(600, axes.length * 160), height = 300, top = 24, bottom = 30;
    const ns = "http://www.w3.org/2000/svg";
    const el = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); return n; };
    const svg = el("svg", { width, height, class: "pc", "data-testid": "parallel" });
    const key = (v) => (typeof v === "string" ? v : JSON.stringify(v));
    const ticks = [];
    const scales = axes.map((axis, i) => {
      const values = scored.map((t) => (i === axes.length - 1 ? objective(t) : t.params[axis]));
      const nums = values.filter((v) => typeof v === "number");
      const cats = [...new Set(values.filter((v) => typeof v !== "number").map(key))];
      const lo = Math.min(...nums), hi = Math.max(...nums);
      const log = lo > 0 && hi / lo >= 100;  // learning rates and the like: decades apart
      const t = (v) => (log ? Math.log10(v) : v);
      const y = (f) => top + (1 - f) * (height - top - bottom);
      const scale = (v) => y(typeof v === "number" ? (hi > lo ? (t(v) - t(lo)) / (t(hi) - t(lo)) : 0.5)
        : (cats.length > 1 ? cats.indexOf(key(v)) / (cats.length - 1) : 0.5));
      const catTicks = cats.map((c, j) => [c, y(cats.length > 1 ? j / (cats.length - 1) : 0.5)]);
      ticks.push(nums.length ? [[lo, scale(lo)], [hi, scale(hi)], ...catTicks] : catTicks);
      return scale;
    });
    const x = (i) => 60 + i * ((width - 120) / Math.max(1, axes.length - 1));
    const values = scored.map(objective);
    const lo = Math.min(...values), hi = Math.max(...values);
    scored.forEach((t) => {
      const v = objective(t);
      const f = hi > lo ? (v - lo) / (hi - lo) : 0.5;
      const good = study.direction === "maximize" ? f : 1 - f;
      const points = axes.map((axis, i) => `${x(i)},${scales[i](i === axes.length - 1 ? v : t.params[axis])}`).join(" ");
      svg.append(el("polyline", { points, fill: "none", stroke: `hsl(${Math.round(good * 120)},70%,42%)`, "stroke-width": 1.5, opacity: 0.75 }));
    });
    axes.forEach((axis, i) => {
      svg.append(el("line", { x1: x(i), x2: x(i), y1: top, y2: height - bottom, stroke: "#98a2b3" }));
      const label = el("text", { x: x(i), y: height - 10, "text-anchor": "middle" }); label.textContent = axis; svg.append(label);
      for (const [value, y] of ticks[i]) {
        const tick = el("text", { x: x(i) + 4, y: y - 3 }); tick.textContent = typeof value === "number" ? fmt(value) : value; svg.append(tick);
      }
    });
    $("parallel").replaceChildren(svg);
  }

  function table(study) {
    $("trials").replaceChildren(
      h("thead", {}, h("tr", {}, h("th", {}, "#"), h("th", {}, "state"), study.params.map((p) => h("th", {}, p)),
        h("th", {}, study.objectives.join(", ")), h("th", {}, "run"), h("th", {}, "reason"))),
      h("tbody", {}, study.trials.map((t) => h("tr", {}, h("td", {}, t.number), h("td", {}, badge(stateClass(t.state))),
        study.params.map((p) => h("td", { class: "num" }, fmt(t.params[p]))),
        h("td", { class: "num" }, (t.values || []).map(fmt).join(", ")),
        h("td", {}, t.run_id ? h("a", { href: `/run/${encodeURIComponent(t.run_id)}` }, t.run_id) : ""),
        h("td", { class: "reason" }, t.reason || "")))));
  }

  // a study's fANOVA importance (runlab importance): one bar per parameter, largest first
  async function importance() {
    const found = await api(`/api/studies/study/${encodeURIComponent(name)}/importance`);
    const items = Object.entries(found.importances || {});
    $("importance-title").hidden = $("importance").hidden = false;
    if (!items.length) { $("importance").replaceChildren(h("p", { class: "muted" }, found.reason || "")); return; }
    $("importance").replaceChildren(h("table", {}, h("tbody", {}, items.map(([p, v]) => h("tr", {},
      h("td", {}, p), h("td", { class: "num" }, fmt(v)),
      h("td", {}, h("div", { class: "bar", style: `width:${Math.round(300 * v)}px` })))))));
  }

  (async function load() {
    try {
      const study = await api(`/api/studies/${encodeURIComponent(kind)}/${encodeURIComponent(name)}`);
      $("title").textContent = `${kind} ${study.name}`;
      const b = study.best;
      $("best").replaceChildren(...(b ? [h("div", {}, "best trial"), h("div", {}, `#${b.number}`),
        h("div", {}, study.objectives.join(", ")), h("div", {}, (b.values || []).map(fmt).join(", ")),
        h("div", {}, "params"), h("div", {}, fmt(b.params)),
        h("div", {}, "run"), h("div", {}, b.run_id ? h("a", { href: `/run/${encodeURIComponent(b.run_id)}` }, b.run_id) : "")]
        : [h("div", { class: "muted" }, "no complete trial yet")]));
      const scored = study.trials.filter((t) => objective(t) !== null);
      table(study);
      // a study still running: look again in 5 s (trials.jsonl is rewritten after each trial)
      if (study.trials.some((t) => t.state === "RUNNING" || t.state === "PENDING")) setTimeout(load, 5000);
      if (!scored.length) return;
      byTrial(study, scored);
      const chosen = $("param").value;
      $("param").replaceChildren(...study.params.map((p) => h("option", { value: p, selected: p === chosen }, p)));
      $("param").onchange = () => byParam(study, scored);
      if (study.params.length) byParam(study, scored);
      parallel(study, scored);
      if (kind === "study" && !study.trials.some((t) => t.state === "RUNNING")) await importance();
    } catch (err) { $("error").textContent = err.message; }
  })();
})();
