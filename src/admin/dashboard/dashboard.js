// exitpool dashboard: polls dashboard.json (same origin, same Basic credentials as the
// page) and redraws. Every value from the gateway goes through textContent: exit ids,
// tags and banned host names come from pool files and clients, never trusted as HTML.
"use strict";
(function () {
  const params = new URLSearchParams(location.search);
  const intervalMs = Math.max(250, 1000 * (parseFloat(params.get("refresh")) || 2));
  const $ = (id) => document.getElementById(id);
  let paused = false;
  let timer = null;
  let inflight = false;

  const fmtInt = (n) => (n === null || n === undefined ? "–" : Math.round(n).toLocaleString("en-US"));
  const fmtRate = (n) => (n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2));
  function fmtBytes(n) {
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i === 0 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }
  function fmtSeconds(s) {
    if (s < 60) return s.toFixed(0) + " s";
    if (s < 3600) return (s / 60).toFixed(0) + " min";
    if (s < 86400) return (s / 3600).toFixed(1) + " h";
    return (s / 86400).toFixed(1) + " d";
  }
  function setText(id, text) {
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }
  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }
  function fillPairs(table, pairs, empty) {
    const rows = pairs.length ? pairs : [[empty, ""]];
    table.replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement("tr");
      tr.append(cell(k), cell(String(v)));
      return tr;
    }));
  }

  function query() {
    const q = new URLSearchParams();
    for (const [key, id] of [["country", "f-country"], ["state", "f-state"], ["tag", "f-tag"],
                             ["limit", "f-limit"]]) {
      const v = $(id).value.trim();
      if (v) q.set(key, v);
    }
    return q.toString();
  }

  function drawChart(steps) {
    const svg = $("chart");
    const W = 720, H = 120, slots = 360;
    const max = Math.max(1, ...steps.map((s) => s[2]));
    const ns = "http://www.w3.org/2000/svg";
    const bars = [];
    for (const s of steps) {
      const [ago, , req, err] = s;
      const x = W - ((ago / 10) + 1) * (W / slots);
      for (const [v, cls] of [[req, "req"], [err, "err"]]) {
        if (v <= 0) continue;
        const r = document.createElementNS(ns, "rect");
        const h = Math.max(1, (v / max) * (H - 4));
        r.setAttribute("x", x.toFixed(1));
        r.setAttribute("y", (H - h).toFixed(1));
        r.setAttribute("width", (W / slots).toFixed(2));
        r.setAttribute("height", h.toFixed(1));
        r.setAttribute("class", cls);
        const t = document.createElementNS(ns, "title");
        t.textContent = `${Math.round(ago)} s ago: ${req} requests, ${err} errors`;
        r.append(t);
        bars.push(r);
      }
    }
    svg.replaceChildren(...bars);
  }

  function updateCountries(all) {
    const sel = $("f-country");
    const have = Array.from(sel.options).slice(1).map((o) => o.value);
    if (have.join() === all.join()) return;
    const current = sel.value;
    sel.replaceChildren(sel.options[0], ...all.map((c) => {
      const o = document.createElement("option");
      o.value = c;
      o.textContent = c === "-" ? "(none)" : c;
      return o;
    }));
    sel.value = all.includes(current) ? current : "";
  }

  function exitRow(e) {
    const tr = document.createElement("tr");
    tr.dataset.id = e.id;
    const rate = e.success_rate === null ? "–" : (100 * e.success_rate).toFixed(1) + " %";
    const lat = e.ewma_latency_ms === null ? "–" : e.ewma_latency_ms.toFixed(1) + " ms";
    const bans = e.bans.map((b) => `${b.host} (${fmtSeconds(b.remaining_s)})`).join(", ");
    tr.append(
      cell(e.id), cell(e.url, "opt"), cell(e.tags.country || "–"), cell(e.tags.type || "–", "opt"),
      cell(String(e.tier), "opt num"), cell(e.state, "state-" + e.state), cell(rate, "num"), cell(lat, "num"),
      cell(String(e.inflight), "num"), cell(bans || "–", "opt bans"),
      cell(e.cooldown_remaining_s > 0 ? fmtSeconds(e.cooldown_remaining_s) : "–", "num"));
    return tr;
  }

  function render(d) {
    const p = d.pool;
    setText("exits-matching", fmtInt(p.matching));
    setText("exits-total", p.matching === p.exits ? "" : `of ${fmtInt(p.exits)}`);
    for (const s of ["healthy", "ejected", "probing"]) setText("state-" + s, fmtInt(p.by_state[s] || 0));
    const t = d.traffic, r = d.rates;
    setText("rate-requests", fmtRate(r.requests_per_s));
    setText("rate-errors", fmtRate(r.errors_per_s));
    setText("requests-total", fmtInt(t.requests));
    setText("errors-total", fmtInt(t.errors));
    setText("bytes", `${fmtBytes(t.bytes_up)} / ${fmtBytes(t.bytes_down)}`);
    setText("tunnels", fmtInt(t.active_tunnels));
    setText("bans-active", fmtInt(t.active_bans));
    setText("uptime", "up " + fmtSeconds(d.uptime_s));
    // --state: the fleet this gateway shares its limits, bans and sessions with.
    const f = d.fleet;
    $("fleet-card").hidden = !f.shared;
    if (f.shared) {
      setText("fleet-gateways", fmtInt(f.gateways));
      setText("fleet-what", `gateways · ${f.backend} ${f.backend_up ? "up" : "DOWN: local limits / N"}`);
      $("fleet-card").className = "card " + (f.backend_up ? "ok" : "bad");
    }
    setText("listed", p.listed < p.matching ? `(first ${fmtInt(p.listed)} of ${fmtInt(p.matching)})`
                                             : `(${fmtInt(p.listed)})`);
    updateCountries(p.countries);
    fillPairs($("by-country"), Object.entries(p.by_country).map(([k, v]) => [k === "-" ? "(none)" : k, v]), "no exits");
    fillPairs($("by-tier"), Object.entries(p.by_tier).map(([k, v]) => ["tier " + k, v]), "no exits");
    fillPairs($("by-outcome"), Object.entries(t.by_outcome), "–");
    fillPairs($("ban-hosts"), d.top_ban_hosts.map((h) => [h.host, h.exits + (h.exits === 1 ? " exit" : " exits")]),
              "no bans in force");
    fillPairs($("reloads"), d.reloads.map((e) => [
      new Date(e.at_unix * 1000).toLocaleString(),
      (e.ok ? "✔ " : "✘ ") + e.what + (e.ok ? ` — ${e.exits} exits in ${e.seconds.toFixed(3)} s` : "")]),
      "none yet");
    $("exits").tBodies[0].replaceChildren(...d.exits.map(exitRow));
    drawChart(d.history.steps);
    document.body.dataset.updated = String(d.now_unix);
  }

  async function poll() {
    if (paused || inflight || document.hidden) return;
    inflight = true;
    try {
      const res = await fetch("dashboard.json?" + query(), { cache: "no-store", credentials: "same-origin" });
      if (!res.ok) throw new Error("HTTP " + res.status);
      render(await res.json());
      $("status").className = "status live";
      $("status").textContent = "live · " + new Date().toLocaleTimeString();
    } catch (err) {
      $("status").className = "status down";
      $("status").textContent = "no data: " + err.message;
    } finally {
      inflight = false;
    }
  }

  function restart() {
    clearInterval(timer);
    timer = setInterval(poll, intervalMs);
    poll();
  }

  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").textContent = paused ? "Resume" : "Pause";
    if (!paused) poll();
  });
  for (const id of ["f-country", "f-state", "f-limit"]) $(id).addEventListener("change", poll);
  $("f-tag").addEventListener("input", poll);
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); poll(); });
  // A hidden tab stops polling: the gateway does no work for a page nobody looks at.
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  restart();
})();
