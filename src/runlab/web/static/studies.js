"use strict";
(async () => {
  const { api, h } = RL;
  RL.nav("/studies");
  try {
    const items = await api("/api/studies");
    document.getElementById("studies").replaceChildren(
      h("thead", {}, h("tr", {}, ["name", "kind", "trials", "complete", "modified"].map((t) => h("th", {}, t)))),
      h("tbody", {}, items.length ? items.map((s) => h("tr", {},
        h("td", {}, h("a", { href: `/study/${s.kind}/${encodeURIComponent(s.name)}` }, s.name)),
        h("td", {}, s.kind), h("td", { class: "num" }, s.trials), h("td", { class: "num" }, s.complete),
        h("td", {}, new Date(s.modified * 1000).toISOString().replace("T", " ").slice(0, 19))))
        : h("tr", {}, h("td", { class: "muted" }, "no studies or sweeps: runlab tune / runlab sweep write them here"))));
  } catch (err) { document.getElementById("error").textContent = err.message; }
})();
