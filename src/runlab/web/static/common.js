// Shared by every page: the API client (token from ?token=, kept in sessionStorage), small DOM
// helpers, number formatting and uPlot charts.
"use strict";

const RL = (() => {
  const query = new URLSearchParams(location.search);
  if (query.get("token")) {
    sessionStorage.setItem("runlab_token", query.get("token"));
    query.delete("token");
    const rest = query.toString();
    history.replaceState(null, "", location.pathname + (rest ? "?" + rest : "") + location.hash);
  }
  const token = () => sessionStorage.getItem("runlab_token") || "";

  async function api(path, options = {}) {
    const headers = Object.assign({}, options.headers || {});
    if (token()) headers["X-Runlab-Token"] = token();
    const response = await fetch(path, Object.assign({}, options, { headers }));
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.detail || `${response.status} ${response.statusText}`);
    return body;
  }

  function h(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmt(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number") return Number.isInteger(value) ? String(value) : String(+value.toPrecision(4));
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const s = Math.round(seconds);
    if (s < 60) return `${s}s`;
    if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
    return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  }

  const when = (iso) => (iso ? iso.replace("T", " ").slice(0, 19) : "");
  const badge = (status) => h("span", { class: `badge ${status}`, text: status });

  function nav(here) {
    const link = (href, label) => h("a", { href, class: here === href ? "here" : null, text: label });
    document.body.prepend(
      h("header", { class: "top" }, h("span", { class: "brand", text: "runlab" }),
        link("/", "Runs"), link("/studies", "Studies & sweeps"), link("/flows", "Flows"),
        link("/launch", "Launch"), link("/queue", "Queue"))
    );
  }

  const COLORS = ["#2f6fed", "#e8590c", "#2b8a3e", "#ae3ec9", "#c92a2a", "#0b7285", "#5f3dc4",
    "#d6336c", "#495057", "#74b816"];

  // series: [{label, xs, ys}] on one x axis (union of their xs). Returns the uPlot instance;
  // called again with the same container it updates the data and keeps the zoom.
  function lineChart(container, title, series, opts = {}) {
    const xs = [...new Set(series.flatMap((s) => s.xs))].sort((a, b) => a - b);
    const position = new Map(xs.map((x, i) => [x, i]));
    const columns = series.map((s) => {
      const col = new Array(xs.length).fill(null);
      s.xs.forEach((x, i) => { col[position.get(x)] = s.ys[i]; });
      return col;
    });
    const data = [xs, ...columns];
    if (container._chart && container._chart.series.length === series.length + 1) {
      container._chart.setData(data, false);
      return container._chart;
    }
    if (container._chart) container._chart.destroy();
    container.innerHTML = "";
    container.append(h("div", { class: "title", text: title }));
    const width = Math.max(300, (container.clientWidth || 460) - 16);
    const scatter = (s) => (s.points !== undefined ? s.points : opts.points || false);
    const options = {
      width, height: opts.height || 220,
      scales: { x: { time: false } },
      axes: [{ label: opts.xLabel || "" }, { size: 64, values: (u, ticks) => ticks.map(fmt) }],
      cursor: { drag: { x: true, y: false } },
      series: [{ label: opts.xLabel || "x" }, ...series.map((s, i) => ({
        label: s.label, stroke: s.color || COLORS[i % COLORS.length], width: s.width || 1.5, spanGaps: true,
        points: { show: scatter(s) || xs.length < 40, size: scatter(s) ? 6 : 4 },
        paths: scatter(s) ? () => null : undefined,
      }))],
    };
    if (opts.bands) options.bands = opts.bands;  // [{series: [upper, lower], fill}]: 1-based
    container._chart = new uPlot(options, data, container);
    return container._chart;
  }

  return { api, h, fmt, duration, when, badge, nav, lineChart, COLORS, token };
})();
