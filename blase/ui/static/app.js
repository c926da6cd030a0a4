// blase ui: plain JavaScript, no build step, nothing fetched from outside this server.
"use strict";

const TOKEN = document.querySelector('meta[name="blase-token"]').content;
const app = document.getElementById("app");
let INFO = { read_only: true, projects: [], views: {} };

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

const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1d5fbf", "#c44e52", "#55a868", "#8172b2", "#ccb974", "#64b5cd", "#dd8452", "#937860", "#da8bc3", "#4c4c4c"];

function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// Several series [{name, points: [[x, y], ...]}] on one chart, each its own colour, with a legend.
function lineChart(series, opts) {
  const W = (opts && opts.width) || 420, H = (opts && opts.height) || 180, P = 34;
  const pts = series.flatMap((s) => s.points.map(([x, y]) => [Number(x), Number(y)])).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const chart = svg("svg", { class: "chart line-chart", width: W, height: H + 16 * Math.ceil(series.length / 3) });
  if (!pts.length) return chart;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs), y0 = Math.min(...ys), y1 = Math.max(...ys);
  const sx = (x) => P + ((x - x0) / (x1 - x0 || 1)) * (W - P - 8), sy = (y) => H - 18 - ((y - y0) / (y1 - y0 || 1)) * (H - 30);
  chart.append(svg("text", { x: 2, y: 12, class: "axis" }, fmt(y1)), svg("text", { x: 2, y: H - 18, class: "axis" }, fmt(y0)),
    svg("text", { x: P, y: H - 4, class: "axis" }, fmt(x0)), svg("text", { x: W - 40, y: H - 4, class: "axis" }, fmt(x1)));
  series.forEach((s, i) => {
    const d = s.points.filter(([x, y]) => Number.isFinite(Number(x)) && Number.isFinite(Number(y)))
      .map(([x, y]) => `${sx(Number(x)).toFixed(1)},${sy(Number(y)).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points: d, fill: "none", stroke: COLORS[i % COLORS.length], "stroke-width": 1.5, "data-series": s.name }));
    if (s.points.length <= 30) {  // few points (monitor checks): mark each one
      d.split(" ").filter(Boolean).forEach((xy) => {
        const [cx, cy] = xy.split(",");
        chart.append(svg("circle", { cx, cy, r: 2.5, fill: COLORS[i % COLORS.length] }));
      });
    }
    const lx = 4 + (i % 3) * (W / 3), ly = H + 12 + 16 * Math.floor(i / 3);
    chart.append(svg("rect", { x: lx, y: ly - 8, width: 10, height: 3, fill: COLORS[i % COLORS.length] }),
      svg("text", { x: lx + 14, y: ly - 4, class: "legend" }, s.name));
  });
  return chart;
}

// Parallel coordinates: one vertical axis per column (numbers scaled to their range), one line per run.
function parallelCoordinates(runs, axes) {
  const W = Math.max(360, 150 * axes.length), H = 240, T = 24, B = 30;
  const chart = svg("svg", { class: "chart parcoords", width: W, height: H });
  const xAt = (i) => 40 + (i * (W - 80)) / Math.max(1, axes.length - 1);
  // a positive axis spanning two decades or more (a learning rate) is drawn on a log scale
  const logAxis = axes.map((a) => {
    const vals = runs.map((r) => Number(a.values[r.index])).filter(Number.isFinite);
    return vals.length > 0 && Math.min(...vals) > 0 && Math.max(...vals) / Math.min(...vals) >= 100;
  });
  const scaled = (i, v) => (logAxis[i] ? Math.log10(v) : v);
  const ranges = axes.map((a, i) => {
    const vals = runs.map((r) => scaled(i, Number(a.values[r.index]))).filter(Number.isFinite);
    return [Math.min(...vals), Math.max(...vals)];
  });
  const label = (i, v) => fmt(logAxis[i] ? 10 ** v : v);
  axes.forEach((a, i) => {
    chart.append(svg("line", { x1: xAt(i), x2: xAt(i), y1: T, y2: H - B, stroke: "#999" }),
      svg("text", { x: xAt(i), y: H - 10, "text-anchor": "middle", class: "axis-name" }, a.name + (logAxis[i] ? " (log)" : "")),
      svg("text", { x: xAt(i) + 3, y: T - 6, class: "axis" }, label(i, ranges[i][1])),
      svg("text", { x: xAt(i) + 3, y: H - B + 12, class: "axis" }, label(i, ranges[i][0])));
  });
  runs.forEach((r) => {
    const coords = axes.map((a, i) => {
      const v = scaled(i, Number(a.values[r.index])), [lo, hi] = ranges[i];
      if (!Number.isFinite(v)) return null;
      return `${xAt(i).toFixed(1)},${(H - B - ((v - lo) / (hi - lo || 1)) * (H - B - T)).toFixed(1)}`;
    });
    if (coords.includes(null)) return;
    chart.append(svg("polyline", { points: coords.join(" "), fill: "none", stroke: COLORS[r.index % COLORS.length],
      "stroke-width": 2, class: "pc-line", "data-run": r.id }, svg("title", {}, `${r.name} (${r.id})`)));
  });
  return chart;
}

// ------------------------------------------------------------------ runs

const QUICK = ["where", "project", "status", "model", "since", "until", "hash", "cols"];

// The sort key of a column spec: "val_loss:min" -> "min(val_loss)", "acc" -> "metrics.acc".
function sortKey(col) {
  if (col.startsWith("params.") || col.startsWith("tags.")) return col;
  const [name, agg] = col.includes(":") ? [col.slice(0, col.lastIndexOf(":")), col.slice(col.lastIndexOf(":") + 1)] : [col, "latest"];
  return agg === "latest" ? "metrics." + name.replace(/^metrics\./, "") : `${agg}(${name.replace(/^metrics\./, "")})`;
}

async function runsPage() {
  const route = ROUTE;
  let q = new URLSearchParams(location.search);
  if (q.get("view") && INFO.views[q.get("view")] !== undefined) {
    q = new URLSearchParams(INFO.views[q.get("view")]);
    history.replaceState(null, "", "/runs?" + q);
  } else if (q.get("view")) {
    throw new Error(`no saved view ${q.get("view")}; saved views: ${Object.keys(INFO.views).join(", ") || "none yet"}`);
  }
  const data = await withIndexProgress(route, api("/api/runs?" + q.toString()));
  const metricCols = data.columns.length ? data.columns : data.metrics.filter((m) => m.startsWith("test.")).slice(0, 4);
  const input = (name, placeholder, extra) => h("input", { name, placeholder, value: q.get(name) || "", ...(extra || {}) });
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); go(form); } },
    input("where", "metrics.test.accuracy > 0.9 and status = 'finished'"),
    h("select", { name: "project" }, h("option", { value: "" }, "all projects"),
      INFO.projects.map((p) => h("option", { value: p.path, selected: q.get("project") === p.path }, p.name))),
    h("select", { name: "status" }, ["", "finished", "failed", "running", "interrupted"].map((s) =>
      h("option", { value: s, selected: (q.get("status") || "") === s }, s || "any status"))),
    input("model", "model", { size: 10 }), input("since", "from 2026-01-31", { size: 12 }), input("until", "to 2026-12-31", { size: 12 }),
    input("hash", "run id or hash prefix", { size: 14 }),
    input("cols", "columns: val_loss:min,test.accuracy:best,params.train.lr", { size: 40, list: "colnames" }),
    h("datalist", { id: "colnames" }, [...data.metrics.flatMap((m) => [m, m + ":min", m + ":max", m + ":best"]),
      ...data.params.map((p) => "params." + p)].slice(0, 2000).map((c) => h("option", { value: c }))),
    h("button", { type: "submit" }, "Filter"),
    h("button", { type: "button", onclick: compareSelected }, "Compare selected"));
  const views = h("p", { class: "views" }, "Views: ",
    Object.keys(INFO.views).sort().flatMap((v) => [link("/runs?view=" + encodeURIComponent(v), v), " "]),
    h("button", { type: "button", class: "save-view", onclick: () => saveView(q) }, "Save this view"));
  const sortBy = (col) => { const s = q.get("sort") === col ? "-" + col : col; q.set("sort", s); q.delete("page"); nav("/runs?" + q); };
  const head = [h("th", {}, ""), ...["id", "name", "project", "status", "started_at", "duration_s"].map((c) =>
    h("th", { class: "sortable", onclick: () => sortBy(c) }, c)),
  ...metricCols.map((m) => h("th", { class: "sortable", onclick: () => sortBy(sortKey(m)) }, m))];
  const value = (r, m) => (data.columns.length ? r.cols[m] : r.metrics[m]);
  const ix = data.index || {};
  const reading = ix.stats_pending ? `reading ${(ix.stats_done || 0).toLocaleString()} / ${(ix.stats_total || 0).toLocaleString()} runs' metrics` : "";
  // a min/max/best column of a run whose metrics.csv the index has not read yet
  const cell = (r, m) => (r.stats_pending && /:(min|max|best)$/.test(m) && value(r, m) == null
    ? h("span", { class: "pending-stat", title: "min/max not read yet: " + reading }, "…") : fmt(value(r, m)));
  const rows = data.runs.map((r) => h("tr", {},
    h("td", {}, h("input", { type: "checkbox", class: "pick", value: r.id })),
    h("td", {}, link("/run/" + encodeURIComponent(r.id), r.id)), h("td", {}, r.name), h("td", {}, r.project_name),
    h("td", { class: "status-" + r.status }, r.status), h("td", {}, r.started_at || ""),
    h("td", { class: "num" }, fmt(r.duration_s)),
    ...metricCols.map((m) => h("td", { class: "num" }, cell(r, m)))));
  const pages = Math.max(1, Math.ceil(data.total / data.per_page));
  const pager = h("p", {}, `${data.total} runs, page ${data.page} of ${pages} `,
    data.page > 1 ? h("button", { onclick: () => { q.set("page", data.page - 1); nav("/runs?" + q); } }, "previous") : "",
    data.page < pages ? h("button", { onclick: () => { q.set("page", data.page + 1); nav("/runs?" + q); } }, "next") : "");
  const note = ix.stats_pending ? h("p", { class: "index-progress" },
    `Indexing: ${reading} for their min, max and best (${ix.seconds} s so far; each run's metrics.csv is read once, `
    + "then kept in .blase/run-index.json). Sorting by min/max/best places the runs not read yet last.") : "";
  show(route, h("h1", {}, "Runs"), note, form, views,
    h("table", { id: "runs" }, h("thead", {}, h("tr", {}, head)), h("tbody", {}, rows)), pager);
  document.body.dataset.ready = "runs";
  // redraw as the index's min/max pass goes on (the page's query, filters and page kept)
  if (ix.stats_pending) setTimeout(() => redrawRuns(route), LIVE_EVERY);
}

// Draw the runs page again unless the user is typing in its filters; ticked runs stay ticked.
function redrawRuns(route) {
  if (route !== ROUTE) return;
  if (document.activeElement && document.activeElement.closest("form.filters")) {
    setTimeout(() => redrawRuns(route), LIVE_EVERY);
    return;
  }
  const ticked = new Set([...document.querySelectorAll("input.pick:checked")].map((x) => x.value));
  ROUTE = route + 1;  // this drawing is the current page now
  runsPage().then(() => {
    for (const box of document.querySelectorAll("input.pick")) box.checked = ticked.has(box.value);
  }).catch(showError);
}

// While `promise` (a runs query) waits for the index's first listing of the run folders,
// show how far that listing is (it can take seconds over thousands of runs never indexed).
async function withIndexProgress(route, promise) {
  let waiting = true;
  const poll = async () => {
    await new Promise((r) => setTimeout(r, 400));
    while (waiting && route === ROUTE) {
      try {
        const p = await api("/api/index");
        if (waiting && !p.ready) {
          show(route, h("h1", {}, "Runs"), h("p", { class: "index-progress" },
            `Indexing the run folders: ${p.listed.toLocaleString()} / ${(p.to_list || 0).toLocaleString()} read (${p.seconds} s)`));
        }
      } catch (err) { /* the runs query reports errors */ }
      await new Promise((r) => setTimeout(r, 500));
    }
  };
  poll();
  try { return await promise; } finally { waiting = false; }
}

async function saveView(q) {
  const name = prompt("Name of this view");
  if (!name) return;
  const query = new URLSearchParams(q);
  query.delete("page");
  try {
    const res = await api("/api/views", { name, query: query.toString() });
    INFO.views = res.views;
    nav("/runs?view=" + encodeURIComponent(name));
  } catch (err) { showError(err); }
}

function go(form) {
  const q = new URLSearchParams();
  for (const [k, v] of new FormData(form)) if (v && QUICK.includes(k)) q.set(k, v);
  const sort = new URLSearchParams(location.search).get("sort");
  if (sort) q.set("sort", sort);
  nav("/runs?" + q);
}

function compareSelected() {
  const ids = [...document.querySelectorAll("input.pick:checked")].map((x) => x.value);
  if (ids.length < 2 || ids.length > 10) return showError(new Error("pick 2 to 10 runs to compare"));
  nav("/compare?runs=" + ids.map(encodeURIComponent).join(","));
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

// How often a running run's page asks again (ms).
const LIVE_EVERY = 2000;

async function runPage(ref) {
  const route = ROUTE;
  const r = await api("/api/runs/" + encodeURIComponent(ref));
  const live = r.status === "running";
  const stream = live && window.EventSource && !FOLLOWING.failed.has(r.id);
  drawRun(route, r, live ? (stream ? "events" : "polling") : null);
  if (stream) followRun(route, ref, r);
  else if (live) setTimeout(() => { if (route === ROUTE) runPage(ref).catch(showError); }, LIVE_EVERY);
}

// A running run's page follows its Server-Sent Events (/api/runs/ID/events): new points,
// resource samples and log records are added to the run as drawn and the page is drawn again
// (at most every REDRAW_EVERY ms); a step's event or the run's end fetches the whole run again. Where the
// stream cannot open, the page falls back to asking again every LIVE_EVERY ms.
const FOLLOWING = { failed: new Set() };
const REDRAW_EVERY = 300;
const MAX_SHOWN_POINTS = 1000;

function followRun(route, ref, r) {
  stopFollowing();
  const es = FOLLOWING.es = new EventSource(`/api/runs/${encodeURIComponent(r.id)}/events?from=${encodeURIComponent(r.stream_from)}`);
  let scheduled = false;
  const alive = () => { if (route !== ROUTE) { es.close(); return false; } return true; };
  const redraw = (whole) => {
    if (scheduled) return;
    scheduled = true;
    setTimeout(() => {
      scheduled = false;
      // a stream closed meanwhile (the run's end read the whole run again): this run as drawn is stale
      if (!alive() || es.readyState === EventSource.CLOSED) return;
      if (whole) { es.close(); runPage(ref).catch(showError); } else drawRun(route, r, "events");
    }, REDRAW_EVERY);
  };
  es.addEventListener("metrics", (e) => { if (alive()) { addPoints(r, JSON.parse(e.data).points); redraw(false); } });
  es.addEventListener("resources", (e) => { if (alive()) { addSamples(r, JSON.parse(e.data).samples); redraw(false); } });
  es.addEventListener("log", (e) => { if (alive()) redraw(addRecords(r, JSON.parse(e.data).records)); });
  es.addEventListener("end", () => { es.close(); if (route === ROUTE) runPage(ref).catch(showError); });
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED || !alive()) return;  // CONNECTING: the browser retries itself
    FOLLOWING.failed.add(r.id);  // refused (or no server): poll instead
    runPage(ref).catch(showError);
  };
}

// Close the stream of the page left (a browser keeps at most 6 connections to one server).
function stopFollowing() {
  if (FOLLOWING.es) FOLLOWING.es.close();
  FOLLOWING.es = null;
}

function addPoints(r, points) {
  for (const p of points) {
    const hist = r.metric_history[p.name] || (r.metric_history[p.name] = []);
    if (hist.length && p.time <= hist[hist.length - 1].time) continue;  // already read with the page
    hist.push({ step: p.step, value: p.value, time: p.time });
    if (hist.length > MAX_SHOWN_POINTS) r.metric_history[p.name] = hist.filter((_, i) => i % 2 === 0 || i === hist.length - 1);
    r.metrics[p.name] = p.value;
    r.metric_counts[p.name] = (r.metric_counts[p.name] || 0) + 1;
  }
}

// The resource series the page draws, in seconds after the run's first sample.
const RESOURCE_SERIES = ["cpu_percent", "rss_bytes", "gpu_mem_bytes"];

function addSamples(r, samples) {
  const res = r.resource_series || (r.resource_series = {});
  for (const s of samples) {
    if (r.resource_start == null) r.resource_start = s.time;
    const t = Math.round((s.time - r.resource_start) * 1000) / 1000;
    for (const k of RESOURCE_SERIES) {
      if (s[k] == null) continue;
      const series = res[k] || (res[k] = []);
      if (series.length && t <= series[series.length - 1][0]) continue;  // already read with the page
      series.push([t, s[k]]);
      if (series.length > MAX_SHOWN_POINTS) res[k] = series.filter((_, i) => i % 2 === 0 || i === series.length - 1);
    }
  }
}

// Log records into the run as drawn; true when the whole run must be read again (a step
// started or ended, an artifact, the status: what the server derives the steps table from).
function addRecords(r, records) {
  let whole = false;
  for (const rec of records) {
    if (rec.kind === "param") r.params[rec.key] = rec.value;
    else if (rec.kind === "tag") r.tags[rec.key] = rec.value;
    else if (rec.kind === "event") {
      r.event_list.push({ t: rec.t, event: rec.event, step: (rec.data || {}).step, data: JSON.stringify(rec.data || {}) });
      whole = whole || String(rec.event).startsWith("step");
    } else if (rec.kind === "artifact" || rec.kind === "status") whole = true;
  }
  return whole;
}

function drawRun(route, r, liveMode) {
  const decisions = (s) => (s.decisions || []).map((d) => h("div", { class: "decision" },
    `assistant: ${d.tool || ""} ${d.summary || ""} → ${d.decision}${d.by && !["gate", "model"].includes(d.by) ? " by " + d.by : ""}`,
    d.reason ? h("div", { class: "muted" }, "why: " + d.reason) : ""));
  const steps = table(["step", "status", "cached / why it ran", "rows in", "rows out", "rejected", "seconds", "peak memory", "assistant"],
    r.steps.map((s) => [s.step, s.status, s.cached ? "cached" + (s.from_run ? " (run " + s.from_run + ")" : "") : (s.reasons || []).join("; "),
      fmt(s.rows_in), fmt(s.rows_out), fmt(s.rows_rejected), fmt(s.seconds), bytes(s.peak_rss_bytes), decisions(s)]));
  // a step's rows, seconds and peak memory are in the steps table above
  const metrics = table(["metric", "latest", "points", "history"], Object.entries(r.metrics)
    .filter(([k]) => !STEP_BOOKKEEPING.test(k)).map(([k, v]) =>
      [k, fmt(v), h("span", { class: "points", "data-metric": k }, fmt(r.metric_counts[k])), sparkline(r.metric_history[k] || [])]));
  const params = table(["param", "value"], Object.entries(r.params).map(([k, v]) => [k, fmt(v)]));
  const arts = r.artifacts.map((a) => {
    const url = `/api/runs/${encodeURIComponent(r.id)}/artifacts/${a.name.split("/").map(encodeURIComponent).join("/")}?token=${encodeURIComponent(TOKEN)}`;
    return h("div", {}, link(url, a.name), ` (${bytes(a.size)})`,
      a.type.startsWith("image/") ? h("img", { class: "artifact", src: url, alt: a.name }) : null);
  });
  const res = r.resource_series || {};
  const resources = Object.keys(res).length ? h("div", { class: "charts" },
    res.cpu_percent ? h("figure", {}, lineChart([{ name: "CPU %", points: res.cpu_percent }]), h("figcaption", {}, "CPU % over seconds")) : "",
    res.rss_bytes ? h("figure", {}, lineChart([{ name: "memory MB", points: res.rss_bytes.map(([t, v]) => [t, v / 1048576]) }]), h("figcaption", {}, "memory (RSS, MB)")) : "",
    res.gpu_mem_bytes ? h("figure", {}, lineChart([{ name: "GPU MB", points: res.gpu_mem_bytes.map(([t, v]) => [t, v / 1048576]) }]), h("figcaption", {}, "GPU memory (MB)")) : "")
    : h("p", { class: "muted" }, "no resource samples");
  // the newest sample in words (a live run's stream moves it)
  const [cpu, rss, gpu] = RESOURCE_SERIES.map((k) => (res[k] && res[k].length ? res[k][res[k].length - 1] : null));
  const newest = cpu || rss;
  const latestSample = newest ? h("p", { class: "muted", id: "resource-latest", "data-seconds": newest[0] },
    `latest sample, ${fmt(newest[0])} s after the first: ` + [cpu ? `CPU ${fmt(cpu[1])} %` : "",
      rss ? `memory ${fmt(rss[1] / 1048576)} MB` : "", gpu ? `GPU memory ${fmt(gpu[1] / 1048576)} MB` : ""].filter(Boolean).join(", ")) : "";
  const events = table(["time", "event", "step", "data"], r.event_list.map((e) =>
    [new Date(e.t * 1000).toISOString(), e.event, e.step || "", h("code", {}, e.data)]));
  show(route, h("h1", {}, `Run ${r.name} `, h("span", { class: "muted" }, r.id),
    liveMode ? h("span", { class: "live", id: "live-mode", title: liveMode === "events" ? "updated as the run writes (Server-Sent Events)" : `asked again every ${LIVE_EVERY / 1000} s` }, `live (${liveMode})`) : ""),
    h("p", {}, h("span", { class: "status-" + r.status, id: "run-status" }, r.status), ` · project ${r.project_name} · started ${r.started_at || "?"} · ${fmt(r.duration_s)} s`),
    r.error ? h("pre", {}, `${r.error.type}: ${r.error.message}`) : "",
    r.steps.length ? [h("h2", {}, "Steps"), steps] : "", r.lineage ? [h("h2", {}, "Lineage"), lineageGraph(r.lineage)] : "",
    h("h2", {}, "Metrics"), metrics, h("h2", {}, "Resources"), latestSample, resources, h("h2", {}, "Artifacts"),
    arts.length ? arts : h("p", { class: "muted" }, "none"), h("h2", {}, "Params"), params,
    h("h2", {}, "Events"), events);
  document.body.dataset.ready = "run";
}

// From raw files and code (left) through the steps to the model (right), as an SVG drawing.
function lineageGraph(g) {
  const cols = Math.max(...g.nodes.map((n) => n.col)) + 1, BW = 150, BH = 34, GX = 60, GY = 14;
  const byCol = {};
  g.nodes.forEach((n) => { (byCol[n.col] = byCol[n.col] || []).push(n); });
  const rows = Math.max(...Object.values(byCol).map((c) => c.length));
  const pos = {};
  Object.entries(byCol).forEach(([c, nodes]) => nodes.forEach((n, i) => {
    pos[n.id] = [10 + Number(c) * (BW + GX), 10 + i * (BH + GY)];
  }));
  const W = 20 + cols * (BW + GX), H = 20 + rows * (BH + GY);
  const chart = svg("svg", { class: "lineage", width: W, height: H });
  g.edges.forEach(([a, b]) => {
    if (!pos[a] || !pos[b]) return;
    const [x1, y1] = [pos[a][0] + BW, pos[a][1] + BH / 2], [x2, y2] = [pos[b][0], pos[b][1] + BH / 2];
    chart.append(svg("path", { d: `M${x1},${y1} C${x1 + GX / 2},${y1} ${x2 - GX / 2},${y2} ${x2},${y2}`, fill: "none", stroke: "#888" }));
  });
  g.nodes.forEach((n) => {
    const [x, y] = pos[n.id];
    chart.append(svg("g", { class: "node node-" + n.kind, "data-node": n.id },
      svg("rect", { x, y, width: BW, height: BH, rx: 5 }),
      svg("text", { x: x + 6, y: y + 14 }, n.label.length > 22 ? n.label.slice(0, 21) + "…" : n.label),
      svg("text", { x: x + 6, y: y + 28, class: "axis" }, `${n.kind} ${n.detail || ""}`.slice(0, 26)),
      svg("title", {}, `${n.kind}: ${n.label} ${n.detail || ""}`)));
  });
  return chart;
}

// ------------------------------------------------------------------ compare

async function comparePage() {
  const route = ROUTE;
  const q = new URLSearchParams(location.search);
  if (!q.get("runs") && q.get("a") && q.get("b")) q.set("runs", `${q.get("a")},${q.get("b")}`);
  const form = h("form", { class: "filters", onsubmit: (e) => { e.preventDefault(); nav("/compare?" + new URLSearchParams(new FormData(form))); } },
    h("input", { name: "runs", placeholder: "2 to 10 run ids, comma-separated", value: q.get("runs") || "", size: 60 }),
    h("input", { name: "metrics", placeholder: "metrics to overlay (default: the first shared ones)", value: q.get("metrics") || "", size: 40 }),
    h("button", { type: "submit" }, "Compare"));
  if (!q.get("runs")) { show(route, h("h1", {}, "Compare runs"), form, h("p", { class: "muted" }, "tick 2 to 10 runs in the runs table, then 'Compare selected'")); return; }
  const d = await api("/api/compare?" + new URLSearchParams({ runs: q.get("runs"), metrics: q.get("metrics") || "" }));
  const runs = d.runs.map((r, index) => ({ ...r, index }));
  const swatch = (i) => svg("svg", { width: 12, height: 12 }, svg("rect", { width: 12, height: 12, fill: COLORS[i % COLORS.length] }));
  const heads = ["", ...runs.map((r) => h("span", {}, swatch(r.index), " ", link("/run/" + encodeURIComponent(r.id), r.name), h("div", { class: "muted" }, r.id)))];
  const runTable = table(heads, [
    ["project", ...runs.map((r) => r.project_name)], ["status", ...runs.map((r) => r.status)], ["started", ...runs.map((r) => r.started_at || "")]]);
  const paramTable = Object.keys(d.params).length ? table(["param", ...runs.map((r) => r.name)],
    Object.entries(d.params).map(([k, vals]) => [k, ...vals.map(fmt)])) : h("p", { class: "muted" }, "the same params");
  const metricTable = table(["metric", ...runs.map((r) => r.name)], Object.entries(d.metrics)
    .filter(([k]) => !STEP_BOOKKEEPING.test(k)).map(([k, vals]) => [k, ...vals.map(fmt)]));
  const charts = h("div", { class: "charts" }, Object.entries(d.history).map(([m, per]) =>
    h("figure", { class: "overlay", "data-metric": m }, lineChart(per.map((points, i) => ({ name: runs[i].name, points }))), h("figcaption", {}, m))));
  const numeric = (vals) => vals.some((v) => typeof v === "number");
  const metricChoice = q.get("pc") || d.metric_names.find((m) => m.startsWith("test.")) || d.metric_names[0];
  const axes = [...d.axes.map((k) => ({ name: k, values: d.params[k] })),
    ...(metricChoice && numeric(d.metrics[metricChoice] || []) ? [{ name: metricChoice, values: d.metrics[metricChoice] }] : [])];
  const pcSelect = h("select", { name: "pc", onchange: (e) => { q.set("pc", e.target.value); nav("/compare?" + q); } },
    d.metric_names.map((m) => h("option", { value: m, selected: m === metricChoice }, m)));
  const parallel = axes.length >= 2 ? parallelCoordinates(runs, axes) : h("p", { class: "muted" }, "no numeric param differs between these runs");
  show(route, h("h1", {}, `Compare ${runs.length} runs`), form, runTable,
    h("h2", {}, "Params that differ"), paramTable,
    h("h2", {}, "Params against a metric"), h("p", {}, "metric: ", pcSelect), parallel,
    h("h2", {}, "Metric histories"), Object.keys(d.history).length ? charts : h("p", { class: "muted" }, "no metric with a history in every run"),
    h("h2", {}, "Latest metrics"), metricTable,
    d.diff ? diffSections(d.diff) : "");
  document.body.dataset.ready = "compare";
}

// What `blase diff` shows for two runs of one project.
function diffSections(d) {
  const pairs = (obj) => table(["key", `a (${d.a})`, `b (${d.b})`], Object.entries(obj).map(([k, [a, b]]) => [k, fmt(a), fmt(b)]));
  const section = (title, obj) => [h("h2", {}, title),
    Object.keys(obj).length ? pairs(obj) : h("p", { class: "muted" }, "the same")];
  const metrics = table(["metric", "a", "b", "delta"], Object.entries(d.metrics).map(([k, m]) =>
    [k, fmt(m.a), fmt(m.b), h("span", { class: deltaClass(k, m.delta) }, fmt(m.delta))]));
  const code = Object.entries(d.code).map(([f, text]) => [h("h3", {}, f), h("pre", {}, text)]);
  return [h("h2", { class: "diff-title" }, `What differs: ${d.names.a} (${d.a}) and ${d.names.b} (${d.b})`),
    ...section("Config", d.params), d.config_file ? h("pre", {}, d.config_file) : "",
    ...section("Run options", d.run), ...section("Data hashes per step", d.data),
    h("h2", {}, "Code"), code.length ? code : h("p", { class: "muted" }, "the same"),
    ...section("Environment", d.environment), h("h2", {}, "Metric deltas"), metrics,
    d.predictions ? h("p", {}, `Predictions agree on ${d.predictions.same} of ${d.predictions.rows} rows`) : "",
    d.notes.map((n) => h("p", { class: "muted" }, n))];
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
      history.length ? table(["time", "action", "from", "to", "by"], history) : "",
      monitorHistory(m)];
  });
  show(route, h("h1", {}, "Models"), data.read_only ? h("p", { class: "muted" }, "read-only: promote and rollback are off") : "",
    blocks.length ? blocks : h("p", { class: "muted" }, "no models yet: `blase run` deploys one"));
}

// Drift per column over a model's `blase monitor` checks, oldest first, each with its HTML report.
function monitorHistory(m) {
  const checks = m.monitor || [];
  if (!checks.length) return h("p", { class: "muted" }, `no monitor checks yet: \`blase monitor ${m.name} NEW_DATA\``);
  const columns = [...new Set(checks.flatMap((c) => Object.keys(c.columns)))].sort();
  const cell = (c, col) => h("td", { class: "num drift" + (c.drifted.includes(col) ? " neg drifted" : ""),
    title: c.tests[col] ? `${c.tests[col].test}, threshold ${fmt(c.tests[col].threshold)}` : null }, fmt(c.columns[col]));
  const rows = checks.map((c) => h("tr", {}, h("td", {}, c.started_at || ""), h("td", {}, c.version || ""),
    h("td", { class: "num" }, fmt(c.drift_share)), h("td", {}, c.dataset_drift ? "drift" : "ok"),
    columns.map((col) => cell(c, col)),
    h("td", {}, link(`/api/runs/${encodeURIComponent(c.run_id)}/artifacts/monitor/report.html?token=${encodeURIComponent(TOKEN)}`, "report"))));
  const share = lineChart([{ name: "drift share", points: checks.map((c, i) => [i + 1, c.drift_share]) },
    ...columns.slice(0, 8).map((col) => ({ name: col, points: checks.map((c, i) => [i + 1, c.columns[col]]) }))]);
  return [h("h3", {}, "Monitor history"), share,
    h("table", { class: "monitor" }, h("thead", {}, h("tr", {}, ["checked", "version", "drift share", "", ...columns, ""].map((x) => h("th", {}, x)))),
      h("tbody", {}, rows))];
}

// ------------------------------------------------------------------ the assistant

async function assistantPage() {
  const route = ROUTE;
  const data = await api("/api/sessions");
  const rows = data.sessions.map((x) => [link("/session/" + encodeURIComponent(x.session), x.session), x.project_name,
    x.started_at || "", x.autonomy || "", x.model || "", String(x.runs.length),
    x.pending ? h("strong", { class: "pending" }, `waits: ${x.pending.tool}`) : ""]);
  show(route, h("h1", {}, "Assistant sessions"),
    rows.length ? table(["session", "project", "started", "autonomy", "model", "runs", ""], rows)
      : h("p", { class: "muted" }, "no sessions yet: `blase chat` starts one"));
  document.body.dataset.ready = "assistant";
}

async function sessionPage(sid) {
  const route = ROUTE;
  const d = await api("/api/sessions/" + encodeURIComponent(sid));
  const events = table(["time", "event", "data"], d.events.map((e) =>
    [new Date(e.t * 1000).toISOString(), e.event, h("code", {}, e.data)]));
  show(route, h("h1", {}, `Session ${d.session}`), d.pending ? pendingBox(d) : h("p", { class: "muted" }, "nothing waits for a person"),
    h("h2", {}, "Replay"), events);
  document.body.dataset.ready = "session";
  // a `blase run --autonomy` process goes on in its own time (its terminal may answer first, and its next
  // proposal may come at any step): look again while it runs or waits
  if (d.autopilot && (d.pending || d.live)) setTimeout(() => { if (route === ROUTE) sessionPage(sid).catch(showError); }, LIVE_EVERY);
}

function pendingBox(d) {
  const p = d.pending;
  const args = h("textarea", { name: "args", rows: 4, cols: 60 }, JSON.stringify(p.args, null, 1));
  const note = h("input", { name: "note", placeholder: "note for the assistant (with reject)", size: 50 });
  const decide = async (action) => {
    const body = { action };
    if (action === "edit") {
      try { body.args = JSON.parse(args.value); } catch (err) { return showError(new Error("the arguments are not JSON: " + err.message)); }
    }
    if (action === "reject" && note.value) body.note = note.value;
    try {
      const turn = await api(`/api/sessions/${encodeURIComponent(d.session)}/decide`, body);
      ++ROUTE;  // the page drawn next replaces this one (and stops its polling)
      await sessionPage(d.session);
      if (turn.answer) document.getElementById("app").prepend(h("p", { class: "answer" }, (d.autopilot ? "" : "assistant: ") + turn.answer));
    } catch (err) { showError(err); if (d.autopilot) sessionPage(d.session).catch(showError); }
  };
  const answered = p.answered;
  return h("div", { class: "pending-box" }, h("h2", {}, "Waiting for you"),
    h("p", {}, h("strong", {}, p.tool), ` (${p.risk}) · ${p.reason}`), p.command ? h("pre", {}, p.command) : "",
    h("p", {}, "arguments:"), args, h("p", {}, note),
    h("p", {}, ["approve", "reject", "edit"].map((a) =>
      h("button", { class: "decide-" + a, disabled: d.read_only || !!answered, onclick: () => decide(a) }, a === "edit" ? "run with these arguments" : a))),
    d.read_only ? h("p", { class: "muted" }, "read-only: decisions are off") : "",
    answered ? h("p", { class: "answered" }, `answered: ${answered.action} by ${answered.by}; the pipeline goes on`)
      : d.autopilot ? h("p", { class: "muted" }, "a `blase run --autonomy` pipeline: answer here or in its terminal (the first answer counts)") : "");
}

// ------------------------------------------------------------------ routing

function nav(url) { history.pushState(null, "", url); route(); }

async function route() {
  const current = ++ROUTE;
  stopFollowing();
  const path = location.pathname;
  try {
    if (path.startsWith("/run/")) await runPage(decodeURIComponent(path.slice(5)));
    else if (path.startsWith("/session/")) await sessionPage(decodeURIComponent(path.slice(9)));
    else if (path === "/compare") await comparePage();
    else if (path === "/models") await modelsPage();
    else if (path === "/assistant") await assistantPage();
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
