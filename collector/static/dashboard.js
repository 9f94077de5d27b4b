// The analysts' dashboard: reads /dashboard/api/* (same answers as /v1/reports/*) under the
// session cookie. No inline script, no external origin (see the Content-Security-Policy).
"use strict";
(function () {
  const API = "/dashboard/api/";
  const DIMENSIONS = [
    ["pages", "Pages"], ["referrers", "Referrers"], ["utm_source", "UTM source"],
    ["utm_medium", "UTM medium"], ["utm_campaign", "UTM campaign"], ["countries", "Countries"],
    ["regions", "Regions"], ["browsers", "Browsers"], ["os", "Operating systems"],
    ["devices", "Devices"], ["status", "Status codes"], ["services", "Services"],
    ["events", "Events"], ["features", "Features"],
  ];
  const METRICS = [
    ["visitors", "Visitors"], ["pageviews", "Pageviews"], ["requests", "Requests"],
    ["bot_requests", "Bot requests"], ["error_rate", "Error rate"],
    ["duration_p50", "Median duration"], ["duration_p95", "p95 duration"],
  ];
  const state = { filters: {} };
  let chart = null;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }

  function fmt(metric, v) {
    if (v === null || v === undefined) return "—";
    if (metric === "error_rate") return (v * 100).toFixed(2) + " %";
    if (metric.startsWith("duration")) return v.toFixed(1) + " ms";
    return Number(v).toLocaleString("en-US");
  }

  function iso(d) { return d.toISOString().slice(0, 10); }

  function params(extra) {
    const p = new URLSearchParams({ from: $("from").value, to: $("to").value });
    for (const [k, v] of Object.entries(state.filters)) p.set(k, v);
    for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
    return p;
  }

  async function get(path, extra) {
    const r = await fetch(API + path + "?" + params(extra), { credentials: "same-origin" });
    if (r.status === 401) { window.location.assign("/dashboard/login"); throw new Error("signed out"); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.detail || body.error);
    return body;
  }

  function renderFilters() {
    const box = $("filters");
    box.replaceChildren();
    for (const [k, v] of Object.entries(state.filters)) {
      const chip = el("button", { type: "button", class: "chip", "data-filter": k }, `${k} = ${v || "(none)"} ✕`);
      chip.addEventListener("click", () => { delete state.filters[k]; load(); });
      box.append(chip);
    }
  }

  async function loadSummary() {
    const box = $("summary");
    box.replaceChildren();
    const s = await get("summary");
    $("k-note").textContent = `Groups of fewer than ${s.k} distinct visitors are withheld` +
      (s.suppressed ? ` (${s.suppressed} period(s) withheld here).` : ".");
    for (const [m, label] of METRICS) {
      const { value, previous } = s.summary[m];
      const card = el("div", { class: "card", id: "metric-" + m, "data-metric": m, "data-value": value === null ? "" : String(value) });
      card.append(el("div", { class: "label" }, label), el("div", { class: "value" }, fmt(m, value)));
      let change = "";
      if (typeof value === "number" && typeof previous === "number" && previous > 0) {
        const pct = ((value - previous) / previous) * 100;
        change = ` (${pct >= 0 ? "+" : ""}${pct.toFixed(1)} %)`;
      }
      card.append(el("div", { class: "previous", "data-previous": previous === null ? "" : String(previous) }, "previous: " + fmt(m, previous) + change));
      box.append(card);
    }
  }

  async function loadChart() {
    const metric = $("metric").value;
    const s = await get("timeseries", { metric, interval: $("interval").value });
    const xs = s.rows.map((r) => Date.parse(r.time.length === 10 ? r.time + "T00:00:00Z" : r.time) / 1000);
    const ys = s.rows.map((r) => r.value);
    const box = $("chart");
    box.replaceChildren();
    box.setAttribute("data-points", String(s.rows.length));
    box.setAttribute("data-total", String(ys.reduce((a, b) => a + (b || 0), 0)));
    const width = Math.max(320, box.clientWidth || 800);
    chart = new uPlot({
      width, height: 220,
      scales: { x: { time: true } },
      series: [{}, { label: metric, stroke: "#3563c9", fill: "rgba(53,99,201,0.12)", width: 2, spanGaps: false }],
      axes: [{}, { size: 60 }],
    }, [xs, ys], box);
  }

  async function loadBreakdown(dim, title, grid) {
    const card = el("div", { class: "breakdown", id: "breakdown-" + dim, "data-dimension": dim });
    const head = el("div", { class: "breakdown-head" });
    head.append(el("h3", {}, title));
    const csv = el("a", { class: "csv", href: API + "breakdown.csv?" + params({ dimension: dim }), download: "" }, "CSV");
    head.append(csv);
    card.append(head);
    grid.append(card);
    let b;
    try {
      b = await get("breakdown", { dimension: dim, limit: "50" });
    } catch (e) {
      card.classList.add("unavailable");
      card.append(el("p", { class: "note" }, String(e.message)));
      return;
    }
    const table = el("table");
    const events = dim === "events" || dim === "features";
    const cols = events ? [["visitors", "Users"], ["events", "Events"]] : [["visitors", "Visitors"], ["pageviews", "Pageviews"], ["requests", "Requests"]];
    const tr = el("tr");
    tr.append(el("th", {}, "Value"));
    for (const [, label] of cols) tr.append(el("th", { class: "num" }, label));
    table.append(tr);
    const max = Math.max(1, ...b.rows.map((r) => r.visitors));
    for (const r of b.rows) {
      const row = el("tr", { "data-value": r.value });
      const name = el("td", { class: "name" });
      const bar = el("div", { class: "bar" });
      bar.style.width = ((100 * r.visitors) / max).toFixed(1) + "%";
      const label = el("button", { type: "button", class: "value" }, r.value === "" ? "(none)" : r.value);
      if (r.value !== "(other)") label.addEventListener("click", () => { state.filters[dim] = r.value; load(); });
      name.append(bar, label);
      row.append(name);
      for (const [c] of cols) row.append(el("td", { class: "num " + c, "data-n": String(r[c]) }, fmt(c, r[c])));
      table.append(row);
    }
    card.append(table);
    if (b.suppressed) card.append(el("p", { class: "note" }, `${b.suppressed} value(s) under k=${b.k}` + (b.other_shown ? " merged into (other)" : " withheld")));
  }

  async function load() {
    renderFilters();
    const grid = $("breakdowns");
    grid.replaceChildren();
    document.body.setAttribute("data-loaded", "no");
    const jobs = [loadSummary().catch(showError), loadChart().catch(showError)];
    for (const [dim, title] of DIMENSIONS) jobs.push(loadBreakdown(dim, title, grid));
    await Promise.all(jobs);
    document.body.setAttribute("data-loaded", "yes");
  }

  function showError(e) { $("k-note").textContent = String(e.message); }

  function table(rows, columns) {
    const t = el("table");
    const head = el("tr");
    for (const c of columns) head.append(el("th", {}, c));
    t.append(head);
    for (const r of rows) {
      const tr = el("tr");
      for (const c of columns) tr.append(el("td", {}, r[c] === null || r[c] === undefined ? "" : typeof r[c] === "object" ? JSON.stringify(r[c]) : String(r[c])));
      t.append(tr);
    }
    return t;
  }

  async function loadPrivacy() {
    const r = await fetch(API + "privacy", { credentials: "same-origin" });
    const p = await r.json();
    if (!r.ok) { $("privacy-policy").textContent = p.detail; return; }
    const settings = Object.entries(p.policy.settings).map(([k, v]) => ({ setting: k, value: v }));
    $("privacy-policy").replaceChildren(el("p", {}, "version " + p.policy.version), table(settings, ["setting", "value"]));
    $("privacy-audit").replaceChildren(table(p.audit, ["time", "actor_name", "actor", "source", "old_version", "new_version", "diff"]));
    $("privacy-keys").replaceChildren(
      el("p", {}, "rotation: " + p.keys.rotation),
      table(p.keys.held, ["epoch", "created", "in_force"]),
      el("p", {}, p.keys.shredded.length ? "shredded:" : "no key shredded yet"),
      table(p.keys.shredded, ["epoch", "shredded"]));
    $("privacy-consent").replaceChildren(
      table(p.consent.stored_events, ["reason", "events", "stripped"]),
      table(p.consent.since_start, ["kind", "reason", "records"]));
    const scan = p.scan_pii;
    $("privacy-scan").replaceChildren(scan
      ? el("p", { id: "scan-result" }, `${scan.time}: ${scan.clean ? "clean" : scan.findings.length + " finding(s)"} in ${scan.scanned_columns} string columns`)
      : el("p", { id: "scan-result" }, "collector scan-pii has not run yet"));
    if (scan && scan.findings.length) $("privacy-scan").append(table(scan.findings, ["table", "column", "check", "rows"]));
  }

  function tabs() {
    const privacy = document.querySelector('meta[name="privacy-scope"]').content === "yes";
    if (!privacy) return;
    $("tab-privacy").hidden = false;
    const show = (which) => {
      $("reports").hidden = which !== "reports";
      $("privacy").hidden = which !== "privacy";
      $("tab-reports").classList.toggle("active", which === "reports");
      $("tab-privacy").classList.toggle("active", which === "privacy");
      if (which === "privacy") loadPrivacy();
    };
    $("tab-reports").addEventListener("click", () => show("reports"));
    $("tab-privacy").addEventListener("click", () => show("privacy"));
  }

  function init() {
    const today = new Date();
    $("to").value = iso(today);
    $("from").value = iso(new Date(today.getTime() - 6 * 86400000));
    for (const [dim, title] of DIMENSIONS) $("filter-dim").append(el("option", { value: dim }, title));
    $("range").addEventListener("submit", (e) => { e.preventDefault(); load(); });
    $("add-filter").addEventListener("click", () => { state.filters[$("filter-dim").value] = $("filter-value").value; load(); });
    $("metric").addEventListener("change", () => loadChart().catch(showError));
    $("interval").addEventListener("change", () => loadChart().catch(showError));
    tabs();
    load();
  }

  document.addEventListener("DOMContentLoaded", init);
})();
