// blase ui: plain JavaScript, no build step, nothing fetched from outside this server.
"use strict";

const TOKEN = document.querySelector('meta[name="blase-token"]').content;
const app = document.getElementById("app");
let INFO = { read_only: true, projects: [] };

// ------------------------------------------------------------------ helpers

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

async function api(path, body) {
  const opts = { headers: { "X-Blase-Token": TOKEN } };
  if (body !== undefined) {
    opts.method = "POST";
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const data = await res.json();
  if (!res.ok) throw new Error(data.error + (data.hint ? "\nhint: " + data.hint : ""));
  return data;
}

function showError(err) {
  const box = document.getElementById("error");
  box.textContent = String(err.message || err);
  box.hidden = false;
  setTimeout(() => { box.hidden = true; }, 8000);
}

function fmt(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : v.toPrecision(4);
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

function bytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return n.toFixed(i ? 1 : 0) + " " + units[i];
}

function table(headers, rows) {
  return h("table", {}, h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

// Put a page's parts (nested arrays flattened) in place of the current one.
// Each navigation gets a number; a page renders only while it is still the current one, so a
// slow answer for the page the user left (a sort, then a click on a run) never paints over
// the page they went to.
let ROUTE = 0;

function show(route, ...parts) {
  if (route !== ROUTE) return;
  app.replaceChildren(...parts.flat(Infinity).filter((x) => x !== null && x !== undefined));
}

function link(href, text) { return h("a", { href }, text); }

// A small line chart of a metric's history (inline SVG, no library).
function sparkline(points) {
  const W = 160, H = 36, ys = points.map((p) => Number(p.value)).filter(Number.isFinite);
  if (ys.length < 2) return "";
  const lo = Math.min(...ys), hi = Math.max(...ys), span = hi - lo || 1;
  const d = ys.map((y, i) => `${(i / (ys.length - 1)) * W},${H - 2 - ((y - lo) / span) * (H - 4)}`).join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", W); svg.setAttribute("height", H);
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", d); line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#1d5fbf"); line.setAttribute("stroke-width", "1.5");
  svg.append(line);
  return svg;
}

// ------------------------------------------------------------------ runs

async function runsPage() {
  const route = ROUTE;
  const q = new URLSearchParams(location.search);
  const data = await api("/api/runs?" + q.toString());
  const cols = (q.get("cols") || "").split(",").filter(Boolean);
  const metrics = cols.length ? cols : data.metrics.filter((m) => m.startsWith("test.")).slice(0, 4);
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); go(form); } },
    h("input", { name: "where", placeholder: "metrics.test.accuracy > 0.9 and status = 'finished'", value: q.get("where") || "" }),
    h("select", { name: "project" }, h("option", { value: "" }, "all projects"),
      INFO.projects.map((p) => h("option", { value: p.path, selected: q.get("project") === p.path }, p.name))),
    h("select", { name: "status" }, ["", "finished", "failed", "running", "interrupted"].map((s) =>
      h("option", { value: s, selected: (q.get("status") || "") === s }, s || "any status"))),
    h("input", { name: "cols", placeholder: "metric columns, comma-separated", value: q.get("cols") || "" }),
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", onclick: compareSelected }, "Compare selected"));
  const sortBy = (col) => { const s = q.get("sort") === col ? "-" + col : col; q.set("sort", s); q.delete("page"); nav("/runs?" + q); };
  const head = [h("th", {}, ""), ...["id", "name", "project", "status", "started_at", "duration_s"].map((c) =>
    h("th", { class: "sortable", onclick: () => sortBy(c) }, c)),
  ...metrics.map((m) => h("th", { class: "sortable", onclick: () => sortBy("metrics." + m) }, m))];
  const rows = data.runs.map((r) => h("tr", {},
    h("td", {}, h("input", { type: "checkbox", class: "pick", value: r.id })),
    h("td", {}, link("/run/" + encodeURIComponent(r.id), r.id)), h("td", {}, r.name), h("td", {}, r.project_name),
    h("td", { class: "status-" + r.status }, r.status), h("td", {}, r.started_at || ""),
    h("td", { class: "num" }, fmt(r.duration_s)),
    ...metrics.map((m) => h("td", { class: "num" }, fmt(r.metrics[m])))));
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  const pager = h("p", {}, `${data.total} runs, page ${data.page} of ${pages} `,
    data.page > 1 ? h("button", { onclick: () => { q.set("page", data.page - 1); nav("/runs?" + q); } }, "previous") : "",
    data.page < pages ? h("button", { onclick: () => { q.set("page", data.page + 1); nav("/runs?" + q); } }, "next") : "");
  show(route, h("h1", {}, "Runs"), form,
    h("table", { id: "runs" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)), pager);
}

function go(form) {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v) q.set(k, v);
  const sort = new URLSearchParams(location.search).get("sort");
  if (sort) q.set("sort", sort);
  nav("/runs?" + q);
}

function compareSelected() {
  const ids = [...document.querySelectorAll("input.pick:checked")].map((x) => x.value);
  if (ids.length !== 2) return showError(new Error("pick two runs to compare"));
  nav(`/compare?a=${encodeURIComponent(ids[0])}&b=${encodeURIComponent(ids[1])}`);
}

// ------------------------------------------------------------------ a run

const STEP_BOOKKEEPING = /^(extract|transform|prepare|train|evaluate|deploy)\.(rows_in|rows_out|rows_rejected|seconds|peak_rss_bytes)$/;
// metrics where smaller is better (losses, errors, time, memory): a drop is shown as good
const LOWER_IS_BETTER = /(loss|rmse|mse|mae|mape|error|seconds|_s$|peak_rss|wait_share)/;
// counts and settings (rows, n, threads, lr) have no better direction
const NO_DIRECTION = /(\.n$|rows_|threads|^lr$|baseline\.)/;

function deltaClass(name, delta) {
  if (!delta || NO_DIRECTION.test(name)) return "";
  const better = LOWER_IS_BETTER.test(name) ? delta < 0 : delta > 0;
  return better ? "pos" : "neg";
}

async function runPage(ref) {
  const route = ROUTE;
  const r = await api("/api/runs/" + encodeURIComponent(ref));
  const steps = table(["step", "status", "cached / why it ran", "rows in", "rows out", "rejected", "seconds", "peak memory"],
    r.steps.map((s) => [s.step, s.status, s.cached ? "cached" + (s.from_run ? " (run " + s.from_run + ")" : "") : (s.reasons || []).join("; "),
      fmt(s.rows_in), fmt(s.rows_out), fmt(s.rows_rejected), fmt(s.seconds), bytes(s.peak_rss_bytes)]));
  // a step's rows, seconds and peak memory are in the steps table above
  const metrics = table(["metric", "latest", "points", "history"], Object.entries(r.metrics)
    .filter(([k]) => !STEP_BOOKKEEPING.test(k)).map(([k, v]) =>
      [k, fmt(v), fmt(r.metric_counts[k]), sparkline(r.metric_history[k] || [])]));
  const params = table(["param", "value"], Object.entries(r.params).map(([k, v]) => [k, fmt(v)]));
  const arts = r.artifacts.map((a) => {
    const url = `/api/runs/${encodeURIComponent(r.id)}/artifacts/${a.name.split("/").map(encodeURIComponent).join("/")}?token=${encodeURIComponent(TOKEN)}`;
    return h("div", {}, link(url, a.name), ` (${bytes(a.size)})`,
      a.type.startsWith("image/") ? h("img", { class: "artifact", src: url, alt: a.name }) : null);
  });
  const events = table(["time", "event", "step", "data"], r.event_list.map((e) =>
    [new Date(e.t * 1000).toISOString(), e.event, e.step || "", h("code", {}, e.data)]));
  show(route, h("h1", {}, `Run ${r.name} `, h("span", { class: "muted" }, r.id)),
    h("p", {}, h("span", { class: "status-" + r.status }, r.status), ` · project ${r.project_name} · started ${r.started_at || "?"} · ${fmt(r.duration_s)} s`),
    r.error ? h("pre", {}, `${r.error.type}: ${r.error.message}`) : "",
    h("h2", {}, "Steps"), steps, h("h2", {}, "Metrics"), metrics, h("h2", {}, "Artifacts"),
    arts.length ? arts : h("p", { class: "muted" }, "none"), h("h2", {}, "Params"), params,
    h("h2", {}, "Events"), events);
}

// ------------------------------------------------------------------ compare

async function comparePage() {
  const route = ROUTE;
  const q = new URLSearchParams(location.search);
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); nav("/compare?" + new URLSearchParams(new FormData(form))); } },
    h("input", { name: "a", placeholder: "run a", value: q.get("a") || "" }),
    h("input", { name: "b", placeholder: "run b", value: q.get("b") || "" }), h("button", { type: "submit" }, "Compare"));
  if (!q.get("a") || !q.get("b")) { show(route, h("h1", {}, "Compare two runs"), form); return; }
  const d = await api("/api/compare?" + q.toString());
  const pairs = (obj) => table(["key", `a (${d.a})`, `b (${d.b})`], Object.entries(obj).map(([k, [a, b]]) => [k, fmt(a), fmt(b)]));
  const section = (title, obj) => [h("h2", {}, title),
    Object.keys(obj).length ? pairs(obj) : h("p", { class: "muted" }, "the same")];
  const metrics = table(["metric", "a", "b", "delta"], Object.entries(d.metrics).map(([k, m]) =>
    [k, fmt(m.a), fmt(m.b), h("span", { class: deltaClass(k, m.delta) }, fmt(m.delta))]));
  const code = Object.entries(d.code).map(([f, text]) => [h("h3", {}, f), h("pre", {}, text)]);
  show(route, h("h1", {}, `Compare ${d.names.a} (${d.a}) and ${d.names.b} (${d.b})`), form,
    ...section("Config", d.params), d.config_file ? h("pre", {}, d.config_file) : "",
    ...section("Run options", d.run), ...section("Data hashes per step", d.data),
    h("h2", {}, "Code"), code.length ? code : h("p", { class: "muted" }, "the same"),
    ...section("Environment", d.environment), h("h2", {}, "Metrics"), metrics,
    d.predictions ? h("p", {}, `Predictions agree on ${d.predictions.same} of ${d.predictions.rows} rows`) : "",
    d.notes.map((n) => h("p", { class: "muted" }, n)));
}

// ------------------------------------------------------------------ models

async function modelsPage() {
  const route = ROUTE;
  const data = await api("/api/models");
  const act = async (what, body, question) => {
    if (!confirm(question)) return;
    try { await api("/api/models/" + what, body); await modelsPage(); } catch (err) { showError(err); }
  };
  const blocks = data.models.map((m) => {
    const shown = (v) => Object.entries((m.metrics || {})[v] || {}).map(([k, x]) => `${k} ${fmt(x)}`).join(", ");
    const rows = m.versions.map((v) => [v, v === m.current ? h("strong", {}, "current") : "", shown(v),
      h("button", { class: "promote", disabled: data.read_only || v === m.current,
        onclick: () => act("promote", { project: m.project, model: m.name, version: v }, `Make ${m.name} ${v} current?`) }, "Promote")]);
    const history = m.history.slice().reverse().map((x) =>
      [new Date(x.t * 1000).toISOString(), x.action, fmt(x.from), fmt(x.to), x.reason || ""]);
    return [h("h2", {}, `${m.name} `, h("span", { class: "muted" }, m.project_name)), table(["version", "", "test metrics", ""], rows),
      h("button", { class: "rollback", disabled: data.read_only || !m.current || m.versions.length < 2,
        onclick: () => act("rollback", { project: m.project, model: m.name }, `Roll ${m.name} back from ${m.current}?`) }, "Roll back"),
      history.length ? table(["time", "action", "from", "to", "by"], history) : ""];
  });
  show(route, h("h1", {}, "Models"), data.read_only ? h("p", { class: "muted" }, "read-only: promote and rollback are off") : "",
    blocks.length ? blocks : h("p", { class: "muted" }, "no models yet: `blase run` deploys one"));
}

// ------------------------------------------------------------------ routing

function nav(url) { history.pushState(null, "", url); route(); }

async function route() {
  const current = ++ROUTE;
  const path = location.pathname;
  try {
    if (path.startsWith("/run/")) await runPage(decodeURIComponent(path.slice(5)));
    else if (path === "/compare") await comparePage();
    else if (path === "/models") await modelsPage();
    else if (path === "/builder") await builderPage(current);  // builder.js
    else await runsPage();
    document.body.dataset.page = path.split("/")[1] || "runs";
  } catch (err) {
    show(current, h("h1", {}, "Error"), h("pre", {}, String(err.message || err)));
  }
}

document.addEventListener("click", (e) => {
  const a = e.target.closest("a");
  if (a && a.origin === location.origin && !a.pathname.startsWith("/api/")) { e.preventDefault(); nav(a.pathname + a.search); }
});
window.addEventListener("popstate", route);
api("/api/info").then((info) => {
  INFO = info;
  document.getElementById("mode").textContent = info.projects.map((p) => p.name).join(", ") + (info.read_only ? " · read-only" : "");
}).catch(showError).finally(route);
