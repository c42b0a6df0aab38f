// The launch queue: each entry's state (pending with its position, claimed, running, done),
// who launched it, what it made (a link to its run, sweep or study), and Cancel.
"use strict";
(() => {
  const { api, h, badge, when } = RL;
  RL.nav("/queue");
  const $ = (id) => document.getElementById(id);

  function made(e) {
    if (e.run_id) return h("a", { href: `/run/${encodeURIComponent(e.run_id)}` }, e.run_id);
    if (e.sweep_id) return h("a", { href: `/study/sweep/${encodeURIComponent(e.sweep_id)}` }, e.sweep_id);
    if (e.study) return h("a", { href: `/study/study/${encodeURIComponent(e.study)}` }, e.study);
    return "";
  }

  async function cancel(id) {
    try {
      const r = await api(`/api/queue/${encodeURIComponent(id)}/cancel`, { method: "POST", headers: { "Content-Type": "application/json" }, body: "{}" });
      $("error").textContent = r.detail;
    } catch (err) { $("error").textContent = err.message; }
    load();
  }

  async function load() {
    try {
      const found = await api("/api/queue");
      const rows = found.entries.map((e) => h("tr", { "data-entry": e.id },
        h("td", {}, e.id), h("td", {}, badge(e.state === "done" ? (e.status || "done") : e.state)),
        h("td", { class: "num" }, e.position || ""), h("td", {}, e.recipe), h("td", {}, e.kind),
        h("td", {}, e.launcher), h("td", { class: "muted" }, JSON.stringify(e.values)),
        h("td", {}, e.launched_by || ""), h("td", {}, made(e)),
        h("td", {}, e.state !== "done" ? h("button", { onclick: () => cancel(e.id) }, "Cancel") : "")));
      $("queue").replaceChildren(rows.length ? h("div", { class: "card scroll" }, h("table", { "data-testid": "queue" },
        h("thead", {}, h("tr", {}, ["entry", "state", "position", "recipe", "kind", "launcher", "values", "launched by", "made", ""].map((t) => h("th", {}, t)))),
        h("tbody", {}, rows)))
        : h("p", { class: "muted" }, "nothing queued: launch from the Launch page"));
    } catch (err) { $("error").textContent = err.message; }
  }
  load();
  setInterval(() => { if (!document.hidden) load(); }, 2000);
})();
