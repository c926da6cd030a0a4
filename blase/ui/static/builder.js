// blase ui: the pipeline builder (plain JavaScript; uses h, api, show, showError, fmt, table from app.js).
// The page edits blase.yaml as plain data (B.doc); the server checks it with `blase check`,
// previews data, writes the file keeping its comments, and runs the pipeline.
"use strict";

const B = { project: null, state: null, doc: null, dirty: false, step: "transform", job: null, timer: null, checkTimer: null };

// ------------------------------------------------------------------ forms from JSON schema

function resolveRef(s, defs) {
  while (s && s.$ref) s = (defs || {})[s.$ref.split("/").pop()];
  return s || {};
}

// A field's schema without its null branch (Optional[X] is anyOf [X, null]).
function fieldSchema(s, defs) {
  s = resolveRef(s, defs);
  if (!s.anyOf) return s;
  const opts = s.anyOf.map((x) => resolveRef(x, defs)).filter((x) => x.type !== "null");
  const base = { description: s.description, default: s.default, title: s.title };
  return opts.length === 1 ? { ...opts[0], ...base } : { ...base, union: opts };
}

function keyOf(prefix, name) { return prefix ? `${prefix}.${name}` : name; }

function parseLoose(text) {
  if (text === "true") return true;
  if (text === "false") return false;
  if (text !== "" && !Number.isNaN(Number(text))) return Number(text);
  return text;
}

// Set obj[name] to value, or remove it when the input is empty (the default then applies).
function setKey(obj, name, value) {
  if (value === undefined || value === "" || (Array.isArray(value) && !value.length)) delete obj[name];
  else obj[name] = value;
  changed();
}

function inputFor(name, s, obj) {
  const cur = obj[name];
  const hint = s.default !== undefined && s.default !== null ? `default: ${fmt(s.default)}` : "";
  const attrs = { name, placeholder: hint, "aria-label": name };
  if (s.enum || s.const !== undefined || (s.union && s.union.some((u) => u.const !== undefined) && s.union.some((u) => u.type === "boolean"))) {
    const values = s.enum || (s.const !== undefined ? [s.const] : [true, false, ...s.union.filter((u) => u.const !== undefined).map((u) => u.const)]);
    return h("select", { ...attrs, onchange: (e) => setKey(obj, name, e.target.value === "" ? undefined : parseLoose(e.target.value)) },
      h("option", { value: "" }, hint || "(not set)"), values.map((v) => h("option", { value: String(v), selected: cur !== undefined && String(cur) === String(v) }, String(v))));
  }
  if (s.type === "boolean") {
    return h("select", { ...attrs, onchange: (e) => setKey(obj, name, e.target.value === "" ? undefined : e.target.value === "true") },
      h("option", { value: "" }, hint || "(not set)"), ["true", "false"].map((v) => h("option", { value: v, selected: cur !== undefined && String(cur) === v }, v)));
  }
  if (s.type === "integer" || s.type === "number") {
    return h("input", { ...attrs, type: "number", step: s.type === "integer" ? "1" : "any", value: cur ?? "",
      onchange: (e) => setKey(obj, name, e.target.value === "" ? undefined : Number(e.target.value)) });
  }
  if (s.type === "array" && !(s.items && (s.items.type === "object" || s.items.$ref))) {
    const numeric = s.items && (s.items.type === "integer" || s.items.type === "number");
    return h("input", { ...attrs, placeholder: hint || "comma-separated", value: Array.isArray(cur) ? cur.join(", ") : (cur ?? ""),
      onchange: (e) => setKey(obj, name, e.target.value.split(",").map((x) => x.trim()).filter(Boolean).map((x) => numeric ? Number(x) : x)) });
  }
  if (s.type === "string") {
    return h("input", { ...attrs, value: cur ?? "", onchange: (e) => setKey(obj, name, e.target.value) });
  }
  if (s.union) {
    return h("input", { ...attrs, value: cur ?? "", onchange: (e) => setKey(obj, name, e.target.value === "" ? undefined : parseLoose(e.target.value)) });
  }
  // a free mapping (params, options, dtypes): JSON
  return h("textarea", { ...attrs, rows: 2, placeholder: "JSON, e.g. {\"key\": 1}",
    onchange: (e) => {
      if (!e.target.value.trim()) return setKey(obj, name, undefined);
      try { setKey(obj, name, JSON.parse(e.target.value)); } catch (err) { showError(new Error(`${name}: not JSON (${err.message})`)); }
    } }, cur === undefined ? "" : JSON.stringify(cur));
}

// `target` edited in place; `attach(target)` puts it into its parent on the first change,
// `detach()` removes it when its last key goes (an empty section is no section).
function bound(target, attach, detach) {
  return new Proxy(target, {
    set(t, k, v) { t[k] = v; attach(t); return true; },
    deleteProperty(t, k) { delete t[k]; if (!Object.keys(t).length) detach(); return true; },
  });
}

// A form for `obj` (edited in place) from an object schema; keys are `blase check`'s key paths.
function schemaForm(schema, obj, prefix, defs) {
  defs = defs || schema.$defs;
  const required = schema.required || [];
  return Object.entries(schema.properties || {}).map(([name, raw]) => {
    const s = fieldSchema(raw, defs);
    const key = keyOf(prefix, name);
    if (s.type === "object" && s.properties) {
      const sub = obj[name] && typeof obj[name] === "object" ? obj[name] : {};
      const proxy = bound(sub, (t) => { obj[name] = t; }, () => { delete obj[name]; });
      return h("fieldset", { class: "field", "data-key": key }, h("legend", {}, name), schemaForm(s, proxy, key, defs), h("span", { class: "problem" }));
    }
    const input = inputFor(name, s, obj);
    if (key === "data.source") input.setAttribute("list", "data-files");
    return h("label", { class: "field", "data-key": key, title: s.description || "" },
      h("span", { class: "name" }, name + (required.includes(name) ? " *" : "")), input,
      s.description ? h("small", { class: "muted" }, s.description) : "", h("span", { class: "problem" }));
  });
}

// ------------------------------------------------------------------ checking

function changed() {
  B.dirty = true;
  const st = document.getElementById("save-state");
  if (st) st.textContent = "unsaved changes";
  clearTimeout(B.checkTimer);
  B.checkTimer = setTimeout(check, 250);
}

async function check() {
  try { showProblems(await api("/api/builder/check", { project: B.project, doc: B.doc })); } catch (err) { showError(err); }
}

// Each problem next to the field it names (or the nearest enclosing one); the rest on top.
function showProblems(result) {
  B.problems = result.problems;
  document.querySelectorAll(".problem").forEach((el) => { el.textContent = ""; });
  document.querySelectorAll(".has-problem").forEach((el) => el.classList.remove("has-problem"));
  for (const p of result.problems) {
    let key = p.key, el = null;
    while (key && !(el = document.querySelector(`[data-key="${CSS.escape(key)}"]`))) key = parentKey(key);
    if (el) { el.classList.add("has-problem"); el.querySelector(".problem").textContent = p.message; }
  }
  const box = document.getElementById("problems");
  if (!box) return;
  box.replaceChildren(...(result.problems.length ? [h("strong", {}, `blase check: ${result.problems.length} problem(s)`),
    h("ul", {}, result.problems.map((p) => h("li", {}, p.message)))] : [h("span", { class: "pos" }, "blase check: valid")]),
  ...(result.warnings || []).map((w) => h("div", { class: "muted" }, "warning: " + w)));
  box.className = result.problems.length ? "problems bad" : "problems";
  document.querySelectorAll("#steps li[data-step]").forEach((li) => {
    const sec = li.dataset.section;
    const n = result.problems.filter((p) => sec && (p.key === sec || p.key.startsWith(sec + ".") || p.key.startsWith(sec + "["))).length;
    li.querySelector(".badge").textContent = n ? String(n) : "";
  });
}

// "transform[2].columns" -> "transform[2]" -> "transform" -> ""
function parentKey(key) {
  const m = key.match(/^(.*)(\.[^.[\]]+|\[\d+\])$/);
  return m ? m[1] : "";
}

// ------------------------------------------------------------------ transform operations

function moveOp(from, to) {
  const ops = B.doc.transform;
  const [item] = ops.splice(from, 1);
  ops.splice(to > from ? to - 1 : to, 0, item);
  renderPanel(); changed();
}

function addOp(op, at) {
  B.doc.transform = B.doc.transform || [];
  const item = op === "call" ? { call: "scripts/transforms.py:FUNCTION" } : { op };
  B.doc.transform.splice(at === undefined ? B.doc.transform.length : at, 0, item);
  renderPanel(); changed();
}

function dropTarget(at) {
  return {
    ondragover: (e) => { e.preventDefault(); e.currentTarget.classList.add("over"); },
    ondragleave: (e) => e.currentTarget.classList.remove("over"),
    ondrop: (e) => {
      e.preventDefault();
      e.currentTarget.classList.remove("over");
      const [kind, what] = e.dataTransfer.getData("text/plain").split(":");
      if (kind === "new") addOp(what, at);
      else if (kind === "move") moveOp(Number(what), at);
    },
  };
}

function opName(item) { return item.op || (item.call ? "call" : "?"); }

function opCard(item, i, n) {
  const name = opName(item);
  const form = (B.state.operations[name] || {}).schema;
  const body = form ? schemaForm(form, item, `transform[${i}]`) : h("p", { class: "muted" }, `no form for ${name}: edit blase.yaml`);
  return h("li", { class: "op", draggable: "true", "data-key": `transform[${i}]`, "data-op": name,
    ondragstart: (e) => e.dataTransfer.setData("text/plain", `move:${i}`), ...dropTarget(i) },
  h("div", { class: "op-head" }, h("span", { class: "grip", "aria-hidden": "true" }, "⠿"), h("strong", {}, `${i + 1}. ${name}`),
    h("button", { type: "button", title: "move up", "aria-label": `move ${name} up`, disabled: i === 0, onclick: () => moveOp(i, i - 1) }, "↑"),
    h("button", { type: "button", title: "move down", "aria-label": `move ${name} down`, disabled: i === n - 1, onclick: () => moveOp(i, i + 2) }, "↓"),
    h("button", { type: "button", class: "remove", "aria-label": `remove ${name}`, onclick: () => { B.doc.transform.splice(i, 1); renderPanel(); changed(); } }, "remove"),
    h("button", { type: "button", class: "preview-op", onclick: () => previewOp(i) }, "Preview after this")),
  h("small", { class: "muted help" }, (B.state.operations[name] || {}).help || ""), h("span", { class: "problem" }), body);
}

async function previewOp(i) {
  const out = document.getElementById("preview");
  out.replaceChildren(h("p", { class: "muted" }, "fitting on a sample…"));
  try {
    const r = await api("/api/builder/preview", { project: B.project, doc: B.doc, upto: i, rows: B.rows });
    out.replaceChildren(h("h3", {}, `After operation ${i + 1}: ${r.rows_out} of ${r.rows_in} rows, ${r.columns.length} columns (${fmt(r.seconds)} s)`),
      sampleNote(r.sample), rowsToggle(() => previewOp(i)), ...r.notes.map((n) => h("p", { class: "muted" }, n)), dataTable(r));
  } catch (err) { out.replaceChildren(h("pre", { class: "bad" }, String(err.message || err))); }
}

// Which rows the previews read: "sample" (a seeded random sample of the whole source) or "first".
B.rows = "sample";

function sampleNote(s) {
  if (!s) return "";
  const of = s.of_about ? ` of about ${s.of_about.toLocaleString()}` : "";
  if (s.kind === "all") return h("p", { class: "sample-note" }, `All ${s.rows.toLocaleString()} rows of the source.`);
  return h("p", { class: "sample-note" }, s.kind === "first"
    ? `The first ${s.rows.toLocaleString()} rows${of} (not a sample: the rest of the file may differ).`
    : s.method === "blocks"
      ? `A sample of ${s.rows.toLocaleString()} rows${of}: runs of rows from 64 places spread evenly over the whole file (a large CSV: a few hundred KB of it read; the same rows each time).`
      : `A random sample of ${s.rows.toLocaleString()} rows${of}, drawn from the whole source (seed ${s.seed}: the same rows each time).`);
}

function rowsToggle(again) {
  return h("label", { class: "rows-toggle" }, h("input", { type: "checkbox", id: "first-rows", checked: B.rows === "first",
    onchange: (e) => { B.rows = e.target.checked ? "first" : "sample"; again(); } }), " first rows instead of a random sample");
}

function dataTable(r) {
  return h("div", { class: "scroll" }, h("table", { class: "data" },
    h("thead", {}, h("tr", {}, r.columns.map((c) => h("th", {}, c.name, h("br"), h("small", { class: "muted" }, c.type))))),
    h("tbody", {}, r.rows.map((row) => h("tr", {}, row.map((v) => h("td", {}, fmt(v))))))));
}

function transformPanel() {
  const ops = B.doc.transform || [];
  const palette = Object.entries(B.state.operations).map(([name, o]) => h("li", { class: "palette-op", draggable: "true", "data-op": name,
    title: o.help || "",
    ondragstart: (e) => e.dataTransfer.setData("text/plain", `new:${name}`) },
  name, h("button", { type: "button", "aria-label": `add ${name}`, onclick: () => addOp(name) }, "+")));
  return [h("h2", {}, "transform"), h("p", { class: "muted" }, "Drag an operation from the palette into the list (or press +), drag cards to reorder (or ↑ ↓)."),
    h("div", { class: "transform" }, h("ul", { id: "palette" }, palette),
      h("ol", { id: "ops" }, ops.map((item, i) => opCard(item, i, ops.length)),
        h("li", { class: "op-end", ...dropTarget(ops.length) }, ops.length ? "drop here to add at the end" : "drop an operation here"))),
    h("div", { id: "preview" })];
}

// ------------------------------------------------------------------ the data source

function sourcePanel(step) {
  B.doc.data = B.doc.data || {};
  const data = B.doc.data;
  const out = h("div", { id: "source-preview" });
  const preview = async () => {
    out.replaceChildren(h("p", { class: "muted" }, "reading…"));
    try {
      const r = await api("/api/builder/source", { project: B.project, source: data.source || "", data, rows: B.rows });
      out.replaceChildren(h("h3", {}, `${r.source}: ${r.rows.length} rows shown, ${r.columns.length} columns`),
        sampleNote(r.sample), rowsToggle(preview), dataTable(r));
    } catch (err) { out.replaceChildren(h("pre", { class: "bad" }, String(err.message || err))); }
  };
  const suggest = async () => {
    out.replaceChildren(h("p", { class: "muted" }, "profiling…"));
    try {
      const r = await api("/api/builder/suggest", { project: B.project, source: data.source || "", label: data.label || null });
      const rows = r.columns.map((c) => [c.name, c.dtype, c.kind, fmt(c.null_share), (c.suggestions || []).map((s) => s.action + (s.detail ? ` ${s.detail}` : "")).join(", ")]);
      out.replaceChildren(h("h3", {}, `Schema suggestion (${r.rows} rows)`), table(["column", "type", "kind", "null share", "suggested"], rows),
        ...r.warnings.map((w) => h("p", { class: "muted" }, "warning: " + w)),
        h("button", { type: "button", id: "use-suggestion", onclick: () => { B.doc.transform = r.transform; if (r.label && !data.label) data.label = r.label; B.step = "transform"; renderPanel(); changed(); } },
          "Use the suggested transform"));
    } catch (err) { out.replaceChildren(h("pre", { class: "bad" }, String(err.message || err))); }
  };
  return [h("h2", {}, `${step.name} (data:)`), h("div", { class: "form" }, schemaForm(step.schema, data, "data")),
    h("p", {}, h("button", { type: "button", id: "preview-source", onclick: preview }, "Preview data"), " ",
      h("button", { type: "button", id: "suggest-schema", onclick: suggest }, "Suggest schema")), out];
}

// ------------------------------------------------------------------ steps, save, run

function renderPanel() {
  const panel = document.getElementById("panel");
  if (!panel) return;
  const step = B.state.steps.find((s) => s.name === B.step) || B.state.sections.find((s) => s.name === B.step) || B.state.steps[0];
  let parts;
  if (step.section === "") parts = [h("h2", {}, "project (top-level keys)"), h("div", { class: "form" }, schemaForm(step.schema, B.doc, ""))];
  else if (step.name === "transform") parts = transformPanel();
  else if (step.section === "data") parts = sourcePanel(step);
  else if (step.entry !== undefined) parts = pluginStepPanel(step);
  else if (step.schema) {
    const obj = B.doc[step.section] || {};
    const proxy = bound(obj, (t) => { B.doc[step.section] = t; }, () => { delete B.doc[step.section]; });
    parts = [h("h2", {}, `${step.name} (${step.section}:)`), h("div", { class: "form" }, schemaForm(step.schema, proxy, step.section))];
  } else parts = [h("h2", {}, step.name), h("p", { class: "muted" }, `a plugin step (${step.origin}): its options are under plugins: in blase.yaml`)];
  panel.replaceChildren(...parts.flat(Infinity));
  document.querySelectorAll("#steps li").forEach((li) => li.classList.toggle("current", li.dataset.step === step.name));
  if (B.problems) showProblems({ problems: B.problems, warnings: [] });
}

// A plugin step's options, under its entry of `plugins:` (a shorthand `- name` becomes a mapping
// only once an option is set).
function pluginStepPanel(step) {
  const at = step.entry;
  const raw = B.doc.plugins[at];
  const entry = () => {
    const e = B.doc.plugins[at];
    if (typeof e !== "string") return e;
    return (B.doc.plugins[at] = e.endsWith(".py") ? { path: e } : { name: e });
  };
  const proxy = bound((typeof raw === "object" && raw.options) || {}, (t) => { entry().options = t; },
    () => { if (typeof B.doc.plugins[at] === "object") delete B.doc.plugins[at].options; });
  return [h("h2", {}, `${step.name} (${step.section}.options)`), h("p", { class: "muted" }, step.origin),
    h("div", { class: "form" }, schemaForm(step.schema, proxy, `${step.section}.options`))];
}

async function showDiff() {
  const box = document.getElementById("diff-box");
  try {
    const d = await api("/api/builder/diff", { project: B.project, doc: B.doc });
    showProblems(d);
    box.hidden = false;
    box.replaceChildren(h("h3", {}, "Changes to blase.yaml"), h("pre", { id: "diff" }, d.diff ? diffLines(d.diff) : "(no changes)"),
      h("button", { type: "button", id: "confirm-save", disabled: !d.valid || !d.diff || B.state.read_only, onclick: save }, "Write blase.yaml"), " ",
      h("button", { type: "button", onclick: () => { box.hidden = true; } }, "Cancel"),
      d.valid ? "" : h("p", { class: "neg" }, "fix the problems above first"));
  } catch (err) { showError(err); }
}

// A unified diff with its added and removed lines marked (for colour).
function diffLines(text) {
  return text.split("\n").map((line) => {
    const kind = line.startsWith("+") && !line.startsWith("+++") ? "add" : line.startsWith("-") && !line.startsWith("---") ? "del" : "";
    return h("span", { class: kind || null }, line + "\n");
  });
}

async function save() {
  try {
    await api("/api/builder/save", { project: B.project, doc: B.doc, base: B.state.base });
    document.getElementById("diff-box").hidden = true;
    await load(B.project);
    renderPanel();
    document.getElementById("save-state").textContent = "saved";
  } catch (err) { showError(err); }
}

async function runFrom(step) {
  if (B.dirty) return showError(new Error("save blase.yaml first: Run from here runs the saved file"));
  try { B.job = await api("/api/builder/run", { project: B.project, from_step: step }); renderJob(); poll(); } catch (err) { showError(err); }
}

function poll() {
  clearTimeout(B.timer);
  B.timer = setTimeout(async () => {
    if (!B.job || location.pathname !== "/builder") return;
    try { B.job = await api("/api/builder/job?id=" + encodeURIComponent(B.job.id)); } catch (err) { return showError(err); }
    renderJob();
    if (B.job.status === "running") poll();
  }, 400);
}

function renderJob() {
  const box = document.getElementById("job");
  const j = B.job;
  if (!box || !j) return;
  const epochs = j.epochs.done ? ` · train epoch ${j.epochs.done} of ${j.epochs.total}` : "";
  const rows = j.steps.map((s) => [s.step, h("span", { class: "state-" + s.state }, s.state),
    s.cached ? "cached" : (s.reasons || []).join("; "), fmt(s.rows_in), fmt(s.rows_out), fmt(s.seconds)]);
  box.replaceChildren(h("h2", {}, `Run from ${j.from_step}`),
    h("p", { id: "job-status" }, h("span", { class: "status-" + j.status }, j.status), ` · ${fmt(j.seconds)} s${epochs}`,
      j.run_id ? [" · ", link("/run/" + encodeURIComponent(j.run_id), "run " + j.run_id)] : "",
      j.status === "running" ? [" ", h("button", { type: "button", id: "stop-run", disabled: j.stopping, onclick: stopRun },
        j.stopping ? "stopping after this step…" : "Stop after this step")] : ""),
    j.error ? h("pre", { class: "bad" }, j.error.error + (j.error.hint ? "\nhint: " + j.error.hint : "")) : "",
    table(["step", "state", "cached / why it ran", "rows in", "rows out", "seconds"], rows));
}

async function stopRun() {
  try { B.job = await api("/api/builder/stop", { id: B.job.id }); renderJob(); } catch (err) { showError(err); }
}

async function newProject(form) {
  const name = form.elements.name.value.trim();
  if (!name) return showError(new Error("give the new project a name"));
  try {
    const made = await api("/api/builder/new", { name, example: form.elements.example.checked });
    INFO.projects.push(made);
    nav("/builder?project=" + encodeURIComponent(made.path));
  } catch (err) { showError(err); }
}

async function load(project) {
  B.state = await api("/api/builder/state?project=" + encodeURIComponent(project || ""));
  B.project = B.state.project.path;
  B.doc = B.state.doc;
  B.dirty = false;
  B.problems = B.state.problems;
}

async function builderPage(route) {
  await load(new URLSearchParams(location.search).get("project"));
  const ro = B.state.read_only;
  const steps = B.state.steps.map((s) => h("li", { "data-step": s.name, "data-section": s.section || "" },
    h("button", { type: "button", class: "step", onclick: () => { B.step = s.name; renderPanel(); } }, s.name),
    h("span", { class: "badge" }), s.origin !== "blase" ? h("small", { class: "muted" }, s.origin) : "",
    h("button", { type: "button", class: "run-from", disabled: ro, title: "run the saved pipeline from this step", onclick: () => runFrom(s.name) }, "Run from here")));
  const others = B.state.sections.map((s) => h("li", { "data-step": s.name, "data-section": s.section },
    h("button", { type: "button", class: "step", onclick: () => { B.step = s.name; renderPanel(); } }, s.name), h("span", { class: "badge" })));
  const newForm = h("form", { class: "filters", id: "new-project", onsubmit: (e) => { e.preventDefault(); newProject(newForm); } },
    h("input", { name: "name", placeholder: "new project name", disabled: ro }),
    h("label", {}, h("input", { type: "checkbox", name: "example", checked: true }), " with the example data"),
    h("button", { type: "submit", disabled: ro }, "New project"));
  show(route, h("h1", {}, `Pipeline builder: ${B.state.project.name}`),
    h("div", { class: "filters" },
      h("select", { id: "builder-project", onchange: (e) => nav("/builder?project=" + encodeURIComponent(e.target.value)) },
        INFO.projects.map((p) => h("option", { value: p.path, selected: p.path === B.project }, p.name))),
      h("button", { type: "button", id: "check", onclick: check }, "Check"),
      h("button", { type: "button", id: "save", disabled: ro, onclick: showDiff }, "Save…"),
      h("span", { id: "save-state", class: "muted" }, ro ? "read-only: save, run and new project are off" : "")),
    newForm, h("datalist", { id: "data-files" }, (B.state.data_files || []).map((f) => h("option", { value: f }))),
    h("div", { id: "problems", class: "problems" }), h("div", { id: "diff-box", hidden: true }),
    h("div", { class: "builder" }, h("div", {}, h("ol", { id: "steps" }, steps, h("li", { class: "muted sep" }, "other sections"), others)), h("section", { id: "panel" })), h("div", { id: "job" }));
  renderPanel();
  showProblems(B.state);
  renderJob();
  if (B.job && B.job.status === "running") poll();
}
