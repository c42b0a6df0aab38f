// The runs table: server-side filter (runlab's expression language), sort and paging; polls
// every 3 s while the tab is visible so running runs update without a reload.
"use strict";
(() => {
  const { api, h, fmt, duration, when, badge } = RL;
  RL.nav("/");
  const url = new URLSearchParams(location.search);
  const state = {
    where: url.get("where") || "", sort: url.get("sort") || "-created",
    offset: +(url.get("offset") || 0), limit: 50, selected: new Set(),
  };
  const $ = (id) => document.getElementById(id);
  $("where").value = state.where;

  function remember() {
    const q = new URLSearchParams();
    if (state.where) q.set("where", state.where);
    if (state.sort !== "-created") q.set("sort", state.sort);
    if (state.offset) q.set("offset", state.offset);
    history.replaceState(null, "", "/" + (q.toString() ? "?" + q : ""));
  }

  function header(key, label, numeric) {
    const sorted = state.sort.replace(/^-/, "") === key;
    const arrow = sorted ? (state.sort.startsWith("-") ? " ▼" : " ▲") : "";
    return h("th", {
      class: "sortable" + (sorted ? " sorted" : "") + (numeric ? " num" : ""), "data-key": key,
      onclick: () => {
        state.sort = sorted && !state.sort.startsWith("-") ? "-" + key : (sorted ? key : (numeric ? key : "-" + key));
        state.offset = 0; load();
      },
    }, label + arrow);
  }

  function render(page) {
    $("total").textContent = `${page.total} matching`;
    $("warnings").textContent = page.warnings.join("; ");  // run directories the index skipped
    const thead = $("runs").querySelector("thead");
    thead.replaceChildren(h("tr", {},
      h("th", {}, ""), header("status", "status"), header("name", "name"), h("th", {}, "tags"),
      header("created", "created"), header("duration", "duration", true),
      page.metric_columns.map((m) => header("metrics." + m, m, true)),
      page.param_columns.map((p) => header("config." + p, p, true))));
    const rows = page.rows.map((r) => {
      const box = h("input", { type: "checkbox", "data-id": r.id, checked: state.selected.has(r.id),
        onchange: (e) => { e.target.checked ? state.selected.add(r.id) : state.selected.delete(r.id); update(); } });
      const tags = Object.entries(r.tags || {}).map(([k, v]) => `${k}=${fmt(v)}`).join(" ");
      const progress = r.progress !== null && r.progress !== undefined
        ? h("span", { class: "progress", title: `epoch ${r.epoch}` }, h("span", { style: `width:${Math.round(r.progress * 100)}%` }))
        : null;
      return h("tr", { "data-id": r.id },
        h("td", {}, box), h("td", {}, badge(r.status), progress),
        h("td", {}, h("a", { href: `/run/${encodeURIComponent(r.id)}`, title: r.id }, r.name || r.id)),
        h("td", { class: "muted" }, tags), h("td", {}, when(r.created)),
        h("td", { class: "num" }, duration(r.duration)),
        page.metric_columns.map((m) => h("td", { class: "num" }, fmt(r.metrics[m]))),
        page.param_columns.map((p) => h("td", { class: "num" }, fmt(r.params[p]))));
    });
    $("runs").querySelector("tbody").replaceChildren(...rows);
    const last = Math.min(page.offset + page.limit, page.total);
    $("page").textContent = page.total ? `${page.offset + 1}–${last} of ${page.total}` : "no runs";
    $("prev").disabled = page.offset === 0;
    $("next").disabled = last >= page.total;
    const live = page.rows.some((r) => r.status === "running" || r.status === "created");
    $("live").textContent = live ? "● live" : "";
  }

  function update() {
    $("compare").disabled = state.selected.size < 2;
    $("compare").textContent = `Compare selected (${state.selected.size})`;
  }

  let seq = 0;
  async function load() {
    const mine = ++seq;
    const q = new URLSearchParams({ sort: state.sort, offset: state.offset, limit: state.limit });
    if (state.where) q.set("where", state.where);
    try {
      const page = await api("/api/runs?" + q);
      if (mine !== seq) return;
      $("error").textContent = "";
      render(page);
      remember();
    } catch (err) {
      if (mine === seq) $("error").textContent = err.message;
    }
  }

  $("apply").onclick = () => { state.where = $("where").value.trim(); state.offset = 0; load(); };
  $("where").addEventListener("keydown", (e) => { if (e.key === "Enter") $("apply").onclick(); });
  $("prev").onclick = () => { state.offset = Math.max(0, state.offset - state.limit); load(); };
  $("next").onclick = () => { state.offset += state.limit; load(); };
  $("compare").onclick = () => { location.href = "/compare?ids=" + [...state.selected].join(","); };
  update();
  load();
  setInterval(() => { if (document.visibilityState === "visible") load(); }, 3000);
})();
