// vaelab dashboard: experiments, one experiment's live curves, one run in full.
// Written for vaelab and served from its binary; it draws its own charts on <canvas>.
"use strict";

const COLORS = ["#0969da", "#cf222e", "#1a7f37", "#8250df", "#bc4c00", "#1b7c83", "#bf3989", "#57606a"];
// The charts, as the server declares them (one per plotted metric); fetched once.
let chartList = null;
const main = document.getElementById("main");
const selected = new Set();

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value; else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function fmt(value, digits) {
  return value === null || value === undefined || !isFinite(value) ? "–" : Number(value).toFixed(digits);
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return s + "s";
  if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
  return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
}

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error(url + ": " + response.status);
  return response.json();
}

function stamp() {
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

// A line chart: each series {name, color, x, y, lo, hi, width}; lo/hi draw a band.
function drawChart(canvas, series) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = width * ratio; canvas.height = height * ratio;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const xs = [], ys = [];
  for (const s of series) {
    s.x.forEach((x, i) => {
      for (const v of [s.y[i], s.lo && s.lo[i], s.hi && s.hi[i]]) {
        if (v !== undefined && v !== null && isFinite(v)) { xs.push(x); ys.push(v); }
      }
    });
  }
  // How many values the chart holds, for a reader that cannot see the canvas (tests).
  canvas.dataset.points = String(xs.length);
  if (!xs.length) { ctx.fillStyle = "#57606a"; ctx.fillText("no epochs yet", 10, 20); return; }
  const pad = { left: 52, right: 8, top: 8, bottom: 22 };
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const px = x => pad.left + (x - x0) / (x1 - x0) * (width - pad.left - pad.right);
  const py = y => height - pad.bottom - (y - y0) / (y1 - y0) * (height - pad.top - pad.bottom);
  ctx.strokeStyle = "#d0d7de"; ctx.fillStyle = "#57606a"; ctx.font = "11px system-ui";
  for (let i = 0; i <= 4; i++) {
    const y = y0 + (y1 - y0) * i / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, py(y)); ctx.lineTo(width - pad.right, py(y)); ctx.stroke();
    ctx.fillText(Number(y.toPrecision(4)).toString(), 2, py(y) + 4);
  }
  ctx.fillText("epoch " + x0, pad.left, height - 6);
  ctx.fillText(String(x1), width - pad.right - 20, height - 6);
  for (const s of series) {
    if (s.lo && s.hi) {
      ctx.fillStyle = s.color + "33"; ctx.beginPath();
      s.x.forEach((x, i) => { const p = [px(x), py(s.hi[i])]; i ? ctx.lineTo(...p) : ctx.moveTo(...p); });
      for (let i = s.x.length - 1; i >= 0; i--) ctx.lineTo(px(s.x[i]), py(s.lo[i]));
      ctx.closePath(); ctx.fill();
    }
    ctx.strokeStyle = s.color; ctx.lineWidth = s.width || 2; ctx.setLineDash(s.dash || []);
    ctx.beginPath();
    let started = false;
    s.x.forEach((x, i) => {
      const v = s.y[i];
      if (v === null || !isFinite(v)) return;
      started ? ctx.lineTo(px(x), py(v)) : ctx.moveTo(px(x), py(v));
      started = true;
    });
    ctx.stroke();
  }
  ctx.setLineDash([]);
}

// Mean and standard deviation over runs, epoch by epoch.
function band(runs, key) {
  const byEpoch = new Map();
  for (const run of runs) {
    run.curves.epoch.forEach((epoch, i) => {
      const v = run.curves[key][i];
      if (v === null || !isFinite(v)) return;
      if (!byEpoch.has(epoch)) byEpoch.set(epoch, []);
      byEpoch.get(epoch).push(v);
    });
  }
  const x = [...byEpoch.keys()].sort((a, b) => a - b);
  const mean = [], lo = [], hi = [];
  for (const epoch of x) {
    const values = byEpoch.get(epoch);
    const m = values.reduce((a, b) => a + b, 0) / values.length;
    const sd = values.length > 1
      ? Math.sqrt(values.reduce((a, b) => a + (b - m) ** 2, 0) / (values.length - 1)) : 0;
    mean.push(m); lo.push(m - sd); hi.push(m + sd);
  }
  return { x, y: mean, lo, hi };
}

async function charts(container, runs) {
  if (chartList === null) chartList = await getJson("/api/charts");
  const variants = [...new Set(runs.map(r => r.variant))];
  container.replaceChildren();
  const legend = el("div", { class: "legend" });
  variants.forEach((v, i) => legend.append(el("span", {}, el("i", { style: "background:" + COLORS[i % COLORS.length] }), v)));
  container.append(legend);
  const grid = el("div", { class: "charts" });
  container.append(grid);
  for (const { title, train, validation: val } of chartList) {
    const canvas = el("canvas");
    grid.append(el("div", { class: "chart" }, el("h3", {}, title + (train ? " (solid: validation, dashed: training)" : "")), canvas));
    const series = [];
    variants.forEach((variant, i) => {
      const color = COLORS[i % COLORS.length];
      const group = runs.filter(r => r.variant === variant);
      series.push({ color, ...band(group, val) });
      if (train) series.push({ color, dash: [4, 3], width: 1.5, ...band(group, train) });
    });
    for (const run of runs.filter(r => selected.has(r.id))) {
      series.push({ color: "#24292f", width: 1, x: run.curves.epoch, y: run.curves[val] });
    }
    drawChart(canvas, series);
  }
}

async function showExperiments() {
  const list = await getJson("/api/experiments");
  const rows = list.map(e => el("tr", {},
    el("td", {}, el("a", { href: "/experiments/" + encodeURIComponent(e.name) }, e.name || "(unnamed)")),
    el("td", { class: "num" }, String(e.runs)),
    el("td", {}, Object.entries(e.statuses).map(([s, n]) => n + " " + s).join(", "))));
  main.replaceChildren(el("h1", {}, "Experiments"),
    list.length ? el("table", {}, el("tr", {}, el("th", {}, "experiment"), el("th", {}, "runs"), el("th", {}, "status")), ...rows)
      : el("p", {}, "No runs in this store yet."));
  stamp();
}

async function showExperiment(name) {
  document.getElementById("crumb").textContent = "› " + name;
  const table = el("table", { id: "runs" });
  const chartBox = el("div", { id: "charts" });
  main.replaceChildren(el("h1", {}, name), table, chartBox);
  const refresh = async () => {
    const runs = await getJson("/api/experiments/" + encodeURIComponent(name));
    table.replaceChildren(el("tr", {}, ...["run", "status", "epoch", "train loss", "val loss", "ETA"].map(h => el("th", {}, h))));
    for (const run of runs) {
      const last = run.curves.epoch.length - 1;
      const row = el("tr", { class: "run-row" + (selected.has(run.id) ? " selected" : ""), "data-run": run.id },
        el("td", {}, el("a", { href: "/runs/" + run.id }, run.label)),
        el("td", { class: "status-" + run.status, title: run.problem || "" }, run.problem ? run.status + ": " + run.problem : run.status),
        el("td", { class: "num", id: "epoch-" + run.id }, run.epochs_done + "/" + run.epochs_target),
        el("td", { class: "num" }, fmt(run.curves.train_loss[last], 3)),
        el("td", { class: "num" }, fmt(run.curves.val_loss[last], 3)),
        el("td", { class: "num" }, duration(run.eta_seconds)));
      row.addEventListener("click", event => {
        if (event.target.tagName === "A") return;
        selected.has(run.id) ? selected.delete(run.id) : selected.add(run.id);
        refresh();
      });
      table.append(row);
    }
    await charts(chartBox, runs);
    stamp();
  };
  await refresh();
  setInterval(() => refresh().catch(error => console.warn(error.message)), 1000);
}

async function showRun(id) {
  const refresh = async () => {
    const run = await getJson("/api/runs/" + encodeURIComponent(id));
    const state = run.state || {};
    document.getElementById("crumb").textContent = "› " + (state.experiment || "") + " › " + (state.label || id);
    const strip = el("div", { class: "strip" }, ...run.samples.map(name =>
      el("figure", {}, el("img", { src: "/runs/" + id + "/files/" + name, alt: name, width: "160" }), el("figcaption", {}, name))));
    const pictures = el("div", { class: "pictures" }, ...run.pictures.map(name =>
      el("figure", {}, el("img", { src: "/runs/" + id + "/files/" + name, alt: name }), el("figcaption", {}, name))));
    const evaluation = run.evaluation
      ? el("table", {}, ...Object.entries(run.evaluation).map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: "num" }, v))))
      : el("p", {}, "Not evaluated yet.");
    const chartBox = el("div");
    main.replaceChildren(
      el("h1", {}, (state.label || id) + " — " + (state.status || "")),
      el("p", {}, "epoch " + (state.epochs_done ?? 0) + " of " + (state.epochs_target ?? "?") + " on " + (state.device || "?")),
      chartBox,
      el("h2", {}, "Samples by epoch"), strip,
      el("h2", {}, "Evaluation"), evaluation, pictures,
      el("h2", {}, "config.yaml"), el("pre", {}, run.config));
    await charts(chartBox, [{ id: run.id, variant: state.label || id, curves: run.curves }]);
    stamp();
    return state.status;
  };
  const status = await refresh();
  if (status === "running") setInterval(() => refresh().catch(error => console.warn(error.message)), 2000);
}

const path = window.location.pathname;
const route = path.startsWith("/experiments/") ? showExperiment(decodeURIComponent(path.slice(13)))
  : path.startsWith("/runs/") ? showRun(path.slice(6))
  : showExperiments();
route.catch(error => { main.replaceChildren(el("p", {}, "Cannot load: " + error.message)); });
