// Forms that launch the recipes of `runlab ui --recipes DIR`: one per recipe, its fields as the
// recipe allows them (a choice, a number in a range; a sweep takes several). The server checks
// every value and preflights before queueing; a refusal is shown beside the field at fault.
"use strict";
(async () => {
  const { api, h } = RL;
  RL.nav("/launch");
  const $ = (id) => document.getElementById(id);
  const shown = (v) => (typeof v === "string" ? v : JSON.stringify(v));

  function input(recipe, f) {
    const sweep = recipe.kind === "sweep";
    if (f.kind === "choice") {
      if (sweep) {
        return h("span", { class: "choices" }, f.choices.map((c, i) => h("label", {},
          h("input", { type: "checkbox", "data-field": f.key, value: JSON.stringify(c), checked: i === 0 }), ` ${shown(c)} `)));
      }
      return h("select", { "data-field": f.key }, f.choices.map((c) => h("option", { value: JSON.stringify(c) }, shown(c))));
    }
    const range = `${f.low} to ${f.high}${f.log ? " (log)" : ""}${f.kind === "int" ? ", whole" : ""}`;
    return h("input", { "data-field": f.key, size: 24, value: String(f.low), placeholder: sweep ? `values, comma-separated: ${range}` : range });
  }

  function values(form, recipe) {
    const out = {};
    for (const f of recipe.fields) {
      const nodes = [...form.querySelectorAll(`[data-field="${CSS.escape(f.key)}"]`)];
      if (f.kind === "choice" && recipe.kind === "sweep") out[f.key] = nodes.filter((n) => n.checked).map((n) => JSON.parse(n.value));
      else if (f.kind === "choice") out[f.key] = JSON.parse(nodes[0].value);
      else if (recipe.kind === "sweep") out[f.key] = nodes[0].value.split(",").map((v) => v.trim()).filter(Boolean);
      else out[f.key] = nodes[0].value.trim();
    }
    return out;
  }

  function card(recipe) {
    const form = h("form", { class: "card launch", "data-recipe": recipe.name });
    const error = (key) => h("span", { class: "error", "data-error-for": key });
    const rows = recipe.kind === "tune"
      ? [h("p", { class: "muted" }, `searches ${recipe.fields.map((f) => f.key).join(", ")}`),
        h("label", {}, "trials ", h("input", { name: "trials", size: 6, value: String(Math.min(10, recipe.trials)) }), error("trials")),
        h("label", {}, "seed ", h("input", { name: "seed", size: 6, value: "0" }), error("seed"))]
      : recipe.fields.map((f) => h("label", {}, `${f.key} `, input(recipe, f), " ", error(f.key)));
    const launchers = h("select", { name: "launcher" }, recipe.launchers.map((l) => h("option", { value: l }, l)));
    const said = h("div", { class: "said", "data-testid": "said" });
    form.append(h("h2", {}, recipe.title, h("span", { class: "muted" }, ` · ${recipe.kind} · ${recipe.name}`)),
      ...rows, h("label", {}, "launcher ", launchers, " ", error("launcher")),
      h("div", {}, h("button", { type: "submit" }, "Launch"), " ", error("")), said);
    form.onsubmit = async (event) => {
      event.preventDefault();
      form.querySelectorAll("[data-error-for]").forEach((n) => { n.textContent = ""; });
      said.textContent = "checking (preflight)...";
      const body = { recipe: recipe.name, launcher: launchers.value };
      if (recipe.kind === "tune") { body.trials = form.trials.value; body.seed = form.seed.value; }
      else body.values = values(form, recipe);
      const response = await fetch("/api/launch", {
        method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", "X-Runlab-Token": RL.token() },
      });
      const answer = await response.json().catch(() => ({}));
      if (!response.ok) {
        said.textContent = "";
        const at = form.querySelector(`[data-error-for="${CSS.escape(answer.field || "")}"]`) || form.querySelector('[data-error-for=""]');
        at.textContent = answer.detail || `${response.status}`;
        return;
      }
      said.replaceChildren(`queued as ${answer.entry} (position ${answer.position}): `, h("a", { href: "/queue" }, "follow it on the Queue page"));
    };
    return form;
  }

  try {
    const found = await api("/api/recipes");
    if (!found.enabled) {
      $("launch").replaceChildren(h("p", { class: "muted" }, "launching is off: start runlab ui with --recipes DIR (and --worker, or run runlab worker)"));
      return;
    }
    $("launch").replaceChildren(...found.recipes.map(card),
      ...found.problems.map((p) => h("p", { class: "error" }, p)));
  } catch (err) { $("error").textContent = err.message; }
})();
