/* simkv report explorer: plain JavaScript, no library, no network.
   Reads the embedded payload (schema: docs/report.md, simkv/report/explorer/payload.py) and
   recomputes the month for the point the reader picks, with the formulas of
   simkv/report/explorer/money.py:
     no_cache = V * p / 1e6;  bill = F + V * (1 - h) * p / 1e6;  net = no_cache - bill;
     break_even = F / no_cache.
   Hit rates are the run's exact grid; a typed capacity between two computed ones is
   interpolated linearly in log capacity between those two, and the page says so. */
(function () {
  "use strict";
  var DATA = JSON.parse(document.getElementById("simkv-explorer-data").textContent);
  var GIB = 1073741824;
  var $ = function (id) { return document.getElementById(id); };
  var SVGNS = "http://www.w3.org/2000/svg";

  function usd(x) {
    if (x === null || !isFinite(x)) { return "n/a"; }
    var s = Math.abs(x).toFixed(2), parts = s.split(".");
    parts[0] = parts[0].replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return (x < 0 ? "-$" : "$") + parts.join(".");
  }
  function pct(x, d) { return (x === null || !isFinite(x)) ? "n/a" : (100 * x).toFixed(d) + "%"; }
  function size(b) {
    if (b === null) { return "unlimited"; }
    var units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"], v = b, i = 0;
    while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i += 1; }
    return i === 0 ? v.toFixed(0) + " B" : Number(v.toPrecision(3)) + " " + units[i];
  }
  function ms(s) {
    if (s === null || !isFinite(s)) { return "n/a"; }
    if (s >= 86400) { return Number((s / 86400).toPrecision(3)) + " d"; }
    if (s >= 3600) { return Number((s / 3600).toPrecision(3)) + " h"; }
    if (s >= 60) { return Number((s / 60).toPrecision(3)) + " min"; }
    return (1000 * s).toFixed(1).replace(/\B(?=(\d{3})+(?!\d))/g, ",") + " ms";
  }
  function ttlLabel(t) {
    if (t === null) { return "no TTL"; }
    if (t % 86400 === 0) { return t / 86400 + " d"; }
    if (t % 3600 === 0) { return t / 3600 + " h"; }
    if (t % 60 === 0) { return t / 60 + " min"; }
    return t + " s";
  }
  function option(sel, value, text) {
    var o = document.createElement("option");
    o.value = String(value); o.textContent = text; sel.appendChild(o);
  }

  function workload() { return DATA.workloads[Number($("x-workload").value)]; }
  /* another model on the same trace: capacities scale by the ratio of KV bytes per block */
  function modelName() { return $("x-model").value || workload().model; }
  function scale() { var w = workload(); return (w.models[modelName()] || w.block_bytes) / w.block_bytes; }
  function run() { return workload().runs[$("x-traffic").value]; }
  function ttlIndex() { return Number($("x-ttl").value); }
  function book() {
    var v = $("x-pricing").value;
    return v === "custom" ? null : DATA.books[Number(v)];
  }

  /* hit rate at the selected capacity: exact grid point, or log-linear between two */
  function hitAt(w, r, ti, capBytes, idx, k) {
    var sz = function (c) { return size(c * k); };
    var caps = w.capacities_bytes, n = caps.length;
    if (capBytes === null) {
      return {h: r.hit[idx][ti], cap: caps[idx], note: "exact grid point (" + sz(caps[idx]) + ")"};
    }
    var finite = caps.slice(0, caps[n - 1] === null ? n - 1 : n);
    if (capBytes <= finite[0]) {
      return {h: r.hit[0][ti], cap: finite[0], note: "below the smallest computed capacity: shown at " + sz(finite[0])};
    }
    if (capBytes >= finite[finite.length - 1]) {
      var last = finite.length - 1;
      return {h: r.hit[last][ti], cap: finite[last], note: "above the largest computed finite capacity: shown at " + sz(finite[last])};
    }
    for (var i = 0; i < finite.length - 1; i += 1) {
      if (capBytes === finite[i]) { return {h: r.hit[i][ti], cap: capBytes, note: "exact grid point"}; }
      if (capBytes > finite[i] && capBytes < finite[i + 1]) {
        var f = (Math.log(capBytes) - Math.log(finite[i])) / (Math.log(finite[i + 1]) - Math.log(finite[i]));
        var h = r.hit[i][ti] + f * (r.hit[i + 1][ti] - r.hit[i][ti]);
        return {h: h, cap: capBytes, note: "interpolated (log capacity) between the computed " +
                sz(finite[i]) + " and " + sz(finite[i + 1])};
      }
    }
    return {h: r.hit[finite.length - 1][ti], cap: capBytes, note: "exact grid point"};
  }

  /* the bucket's monthly price at a capacity: cheapest tier holding it, or the typed price */
  function feeFor(b, capBytes) {
    if (b === null) { return {fee: Number($("x-fee").value) || 0, label: "your price"}; }
    if (capBytes === null) { return {fee: null, label: "no tier holds an unlimited bucket"}; }
    var best = null;
    b.tiers.forEach(function (t) {
      if (t.capacity_bytes >= capBytes && (best === null || t.usd_per_month < best.usd_per_month)) { best = t; }
    });
    if (best === null) { return {fee: null, label: "no tier of " + b.name + " holds " + size(capBytes)}; }
    return {fee: best.usd_per_month, label: b.name + " " + best.name + " (" + size(best.capacity_bytes) + ")" +
            (b.placeholder ? ", PLACEHOLDER price" : "")};
  }

  function month(V, h, p, F) {
    var base = V * p / 1e6;
    var bill = F + V * (1.0 - h) * p / 1e6;
    return {base: base, bill: bill, net: base - bill, breakEven: base > 0 ? F / base : null};
  }

  /* TTFT: the computed setup with the largest hit rate at or below h (not interpolated) */
  function ttftFor(r, h) {
    var pick = null;
    r.ttft.forEach(function (t) {
      if (t.hit_rate <= h + 1e-12 && (pick === null || t.hit_rate > pick.hit_rate)) { pick = t; }
    });
    return pick || r.ttft[0];
  }

  function selectedCap() {
    var typed = $("x-capacity-gib").value;
    if (typed !== "" && isFinite(Number(typed)) && Number(typed) > 0) { return Number(typed) * GIB; }
    return null;
  }

  function setText(id, text, value) {
    var el = $(id); el.textContent = text;
    el.setAttribute("data-value", value === null || value === undefined ? "" : String(value));
  }

  function update() {
    var w = workload(), r = run(), ti = ttlIndex(), idx = Number($("x-capacity").value);
    var k = scale(), other = modelName() !== w.model;
    var typed = selectedCap();
    var pt = hitAt(w, r, ti, typed === null ? null : typed / k, idx, k);
    var capShown = pt.cap === null ? null : pt.cap * k;
    $("x-capacity-label").textContent = capShown === null ? "unlimited" : size(capShown);
    var b = book();
    $("x-fee").disabled = b !== null;
    var p = Number($("x-mtok").value);
    var fee = feeFor(b, capShown);
    var V = r.input_tokens_per_month;
    setText("o-hit", pct(pt.h, 2), pt.h);
    var tt = ttftFor(r, pt.h);
    if (other) {
      setText("o-ttft", "not computed for " + modelName() + " (the run computed TTFT for " + w.model + ")", null);
    } else {
      setText("o-ttft", ms(tt.ttft_p50_s) + " / " + ms(tt.ttft_p90_s) + " on " + tt.replicas + " " + tt.gpu +
              (tt.meets ? "" : " (no replica count meets the SLO)"), tt.ttft_p90_s);
    }
    if (fee.fee === null) {
      ["o-bill", "o-net", "o-breakeven"].forEach(function (id) { setText(id, "n/a", null); });
      var m0 = month(V, pt.h, p, 0);
      setText("o-nocache", usd(m0.base), m0.base);
      setText("o-fee", fee.label + ": type your own price", null);
      $("x-answer").textContent = w.workload + " (" + modelName() + ") at " + $("x-traffic").value + "x traffic, " +
        size(capShown) + ", " + ttlLabel(DATA.ttls_s[ti]) + ": hit rate " + pct(pt.h, 2) + "; " + fee.label +
        ", so choose 'my own bucket price' to see a bill.";
    } else {
      var m = month(V, pt.h, p, fee.fee);
      setText("o-bill", usd(m.bill), m.bill);
      setText("o-nocache", usd(m.base), m.base);
      setText("o-net", usd(m.net), m.net);
      setText("o-breakeven", pct(m.breakEven, 2), m.breakEven);
      setText("o-fee", usd(fee.fee) + " (" + fee.label + ")", fee.fee);
      $("x-answer").textContent = w.workload + " (" + modelName() + ") at " + $("x-traffic").value + "x traffic, " +
        size(capShown) + ", " + ttlLabel(DATA.ttls_s[ti]) + ": " + (m.net >= 0 ? "saves " : "loses ") +
        usd(Math.abs(m.net)) + " a month net of a " + usd(fee.fee) + " bucket.";
    }
    $("o-note").textContent = (other ? "Model " + modelName() + " instead of " + w.model +
      ": the same trace with " + k.toPrecision(4) + "x the KV bytes per block, so every computed capacity scales by " +
      k.toPrecision(4) + " with the same hit rate (exact for an LRU over equal blocks); capacities below are " +
      modelName() + "'s. " : "") + "Hit rate: " + pt.note + ". TTFT from the computed setup '" + tt.setup +
      "' (hit rate " + pct(tt.hit_rate, 2) + "), the fewest replicas meeting p90 <= " + DATA.slo_ttft_p90_s +
      " s. Input tokens per month: " + Math.round(V).toLocaleString("en-US") + ".";
    alternatives(w);
    drawHit(w, r, ti, pt, k);
    drawNet(w, r, ti, b, p, V, pt, k);
  }

  /* every price book's own bill, as the run computed it (1x only) */
  function alternatives(w) {
    var body = $("x-alt-rows");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    (w.alternatives || []).forEach(function (a) {
      var tr = document.createElement("tr");
      [a.provider + (a.placeholder ? " (PLACEHOLDER)" : ""), pct(a.hit_rate, 1), usd(a.total_usd),
       usd(a.no_cache_usd), usd(a.savings_usd)].forEach(function (v) {
        var td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    var which = "computed by the run for " + w.model + " at 1x traffic";
    $("x-alt-note").textContent = $("x-traffic").value === "1" && modelName() === w.model ? which :
      which + " only: these rows do not follow the traffic and model controls";
    $("x-alt").style.display = (w.alternatives || []).length ? "" : "none";
  }

  /* ---------------------------------------------------------------- SVG plots */
  var PAD = {l: 56, r: 12, t: 12, b: 34}, W = 520, H = 260;
  function el(name, attrs, parent) {
    var e = document.createElementNS(SVGNS, name);
    Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (parent) { parent.appendChild(e); }
    return e;
  }
  function text(parent, x, y, s, anchor) {
    var t = el("text", {x: x, y: y, "text-anchor": anchor || "middle"}, parent); t.textContent = s; return t;
  }
  function axes(svg, xs, ylo, yhi, yfmt) {
    while (svg.firstChild) { svg.removeChild(svg.firstChild); }
    var lx0 = Math.log(xs[0]), lx1 = Math.log(xs[xs.length - 1]);
    var sx = function (x) { return PAD.l + (Math.log(x) - lx0) / Math.max(1e-12, lx1 - lx0) * (W - PAD.l - PAD.r); };
    var sy = function (y) { return H - PAD.b - (y - ylo) / Math.max(1e-12, yhi - ylo) * (H - PAD.t - PAD.b); };
    el("line", {x1: PAD.l, y1: H - PAD.b, x2: W - PAD.r, y2: H - PAD.b, stroke: "#999"}, svg);
    el("line", {x1: PAD.l, y1: PAD.t, x2: PAD.l, y2: H - PAD.b, stroke: "#999"}, svg);
    for (var k = 0; k <= 4; k += 1) {
      var y = ylo + (yhi - ylo) * k / 4;
      el("line", {x1: PAD.l, y1: sy(y), x2: W - PAD.r, y2: sy(y), stroke: "#eee"}, svg);
      text(svg, PAD.l - 4, sy(y) + 4, yfmt(y), "end");
    }
    [0, Math.floor((xs.length - 1) / 2), xs.length - 1].forEach(function (i, k) {
      text(svg, sx(xs[i]), H - PAD.b + 14, size(xs[i]), ["start", "middle", "end"][k]);
    });
    text(svg, (W + PAD.l) / 2, H - 4, "capacity (log scale)");
    return {sx: sx, sy: sy};
  }
  function finiteCaps(w) { return w.capacities_bytes.filter(function (c) { return c !== null; }); }
  var COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"];

  function drawHit(w, r, ti, pt, k) {
    var svg = $("p-hit"), xs = finiteCaps(w).map(function (c) { return c * k; }), top = 0;
    r.hit.forEach(function (row) { row.forEach(function (v) { top = Math.max(top, v); }); });
    top = Math.min(1, Math.max(0.1, Math.ceil(top * 10) / 10));
    var s = axes(svg, xs, 0, top, function (y) { return (100 * y).toFixed(0) + "%"; });
    DATA.ttls_s.forEach(function (ttl, j) {
      var d = xs.map(function (c, i) { return (i ? "L" : "M") + s.sx(c).toFixed(1) + "," + s.sy(r.hit[i][j]).toFixed(1); }).join("");
      el("path", {d: d, fill: "none", stroke: COLORS[j % COLORS.length], "stroke-width": j === ti ? 3 : 1,
                  opacity: j === ti ? 1 : 0.55}, svg);
      text(svg, W - PAD.r - 2, PAD.t + 12 + 12 * j, ttlLabel(ttl), "end").setAttribute("fill", COLORS[j % COLORS.length]);
    });
    if (pt.cap !== null) { el("circle", {cx: s.sx(pt.cap * k), cy: s.sy(pt.h), r: 5, fill: "#111"}, svg); }
  }

  function drawNet(w, r, ti, b, p, V, pt, k) {
    var svg = $("p-net"), xs = finiteCaps(w).map(function (c) { return c * k; }), vals = [];
    xs.forEach(function (c, i) {
      var f = feeFor(b, c);
      vals.push(f.fee === null ? null : month(V, r.hit[i][ti], p, f.fee).net);
    });
    var ok = vals.filter(function (v) { return v !== null; });
    if (!ok.length) { axes(svg, xs, 0, 1, usd); text(svg, W / 2, H / 2, "no price holds these capacities: type your own"); return; }
    var lo = Math.min(0, Math.min.apply(null, ok)), hi = Math.max(0, Math.max.apply(null, ok));
    if (hi === lo) { hi = lo + 1; }
    var s = axes(svg, xs, lo, hi, function (y) { return usd(y).replace(/\.\d\d$/, ""); });
    el("line", {x1: PAD.l, y1: s.sy(0), x2: W - PAD.r, y2: s.sy(0), stroke: "#333"}, svg);
    var d = "", pen = false;
    xs.forEach(function (c, i) {
      if (vals[i] === null) { pen = false; return; }
      d += (pen ? "L" : "M") + s.sx(c).toFixed(1) + "," + s.sy(vals[i]).toFixed(1); pen = true;
    });
    el("path", {d: d, fill: "none", stroke: "#2e7d32", "stroke-width": 2}, svg);
    var f = feeFor(b, pt.cap === null ? null : pt.cap * k);
    if (pt.cap !== null && f.fee !== null) {
      el("circle", {cx: s.sx(pt.cap * k), cy: s.sy(month(V, pt.h, p, f.fee).net), r: 5, fill: "#111"}, svg);
    }
  }

  /* ---------------------------------------------------------------- controls */
  function fillModels() {
    var w = workload(), sel = $("x-model");
    while (sel.firstChild) { sel.removeChild(sel.firstChild); }
    Object.keys(w.models).forEach(function (m) { option(sel, m, m + (m === w.model ? " (the run's)" : "")); });
    sel.value = w.model;
  }
  function fillCapacities() {
    var w = workload(), cap = $("x-capacity");
    cap.max = String(w.capacities_bytes.length - 1);
    var card = DATA.cards.filter(function (c) { return c.workload === w.workload && c.model === w.model; })[0];
    var want = card && card.tier ? card.tier.capacity_bytes : null;
    var idx = w.capacities_bytes.indexOf(want);
    cap.value = String(idx >= 0 ? idx : w.capacities_bytes.length - 1);
  }
  function init() {
    DATA.workloads.forEach(function (w, i) { option($("x-workload"), i, w.workload + " (" + w.model + ")"); });
    DATA.traffic.forEach(function (t) { option($("x-traffic"), t, t + "x"); });
    DATA.ttls_s.forEach(function (t, j) { option($("x-ttl"), j, ttlLabel(t)); });
    $("x-ttl").value = String(DATA.ttls_s.length - 1);
    DATA.books.forEach(function (b, i) {
      option($("x-pricing"), i, b.name + " tiers: the cheapest tier holding the capacity" + (b.placeholder ? " (PLACEHOLDER prices)" : ""));
    });
    option($("x-pricing"), "custom", "my own bucket price ($/month)");
    $("x-mtok").value = DATA.books.length ? String(DATA.books[0].recompute_usd_per_mtok) : "0.15";
    fillModels();
    fillCapacities();
    $("x-workload").addEventListener("change", function () { fillModels(); fillCapacities(); update(); });
    $("x-capacity").addEventListener("input", function () { $("x-capacity-gib").value = ""; update(); });
    ["x-model", "x-traffic", "x-ttl", "x-pricing", "x-fee", "x-mtok", "x-capacity-gib"].forEach(function (id) {
      $(id).addEventListener("input", update);
      $(id).addEventListener("change", update);
    });
    preset("x-preset-15m-2x", 900, "2");
    preset("x-preset-1h-5x", 3600, "5");
    $("x-preset-card").addEventListener("click", function () {
      $("x-traffic").value = "1"; $("x-ttl").value = String(DATA.ttls_s.length - 1);
      $("x-pricing").value = DATA.books.length ? "0" : "custom";
      $("x-capacity-gib").value = ""; fillModels(); fillCapacities(); update();
    });
    update();
  }
  /* a what-if button: set TTL and traffic, keep the rest (hidden if the run lacks that TTL) */
  function preset(id, ttl, traffic) {
    var j = DATA.ttls_s.indexOf(ttl), button = $(id);
    if (j < 0 || DATA.traffic.indexOf(Number(traffic)) < 0) { button.style.display = "none"; return; }
    button.addEventListener("click", function () {
      $("x-ttl").value = String(j); $("x-traffic").value = traffic; update();
    });
  }
  init();
}());
