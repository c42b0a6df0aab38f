"use strict";
(async () => {
  const { api, h } = RL;
  RL.nav("/flows");
  const step = (s) => h("tr", {},
    h("td", {}, s.step),
    h("td", {}, s.status),
    h("td", { class: "num" }, s.seconds == null ? "" : s.seconds.toFixed(1)),
    h("td", {}, s.run ? h("a", { href: `/run/${encodeURIComponent(s.run)}` }, s.run) : ""),
    h("td", { class: "muted" }, s.key),
    h("td", {}, s.error || ""));
  try {
    const flows = await api("/api/flows");
    document.getElementById("flows").replaceChildren(...(flows.length ? flows.map((f) =>
      h("div", { class: "card scroll", "data-testid": "flow" },
        h("h2", {}, f.name),
        f.damaged ? h("p", { class: "error" }, f.damaged) :
          h("table", {},
            h("thead", {}, h("tr", {}, ["step", "status", "seconds", "run", "key", "error"].map((t) => h("th", {}, t)))),
            h("tbody", {}, f.steps.map(step)))))
      : [h("p", { class: "muted" }, "no flows: runlab flow FLOW.yaml records them here")]));
  } catch (err) { document.getElementById("error").textContent = err.message; }
})();
