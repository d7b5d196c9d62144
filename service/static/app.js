// The weightgen playground: no framework, no build step, nothing from outside this service.
const $ = (id) => document.getElementById(id);
const SAMPLE_BYTES = 4 << 20; // at most 1 Mi float32 values, read with a Range request
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df"];
let catalogue = null;
let pending = 0;

const fmt = (x) =>
  x === null || x === undefined ? "—" : Number.isInteger(x) ? String(x) : Number(x).toPrecision(6);

async function json(url, init) {
  const r = await fetch(url, init);
  const body = await r.json();
  if (!r.ok) throw new Error(body.detail ?? r.statusText);
  return body;
}

function schemesFor(convention) {
  return catalogue.schemes.filter((s) => convention in s.conventions);
}

function fillSelect(select, values, keep) {
  select.replaceChildren(...values.map((v) => new Option(v, v)));
  if (values.includes(keep)) select.value = keep;
}

function renderParams() {
  const scheme = catalogue.schemes.find((s) => s.name === $("scheme").value);
  const params = scheme.conventions[$("convention").value].params;
  $("params").replaceChildren(
    ...params.map((p) => {
      const label = document.createElement("label");
      label.textContent = p.name;
      let input;
      if (p.choices) {
        input = document.createElement("select");
        for (const c of p.choices) input.add(new Option(c, c));
        if (p.default !== undefined) input.value = p.default;
      } else {
        input = document.createElement("input");
        input.placeholder = p.required ? "required" : String(p.default);
        if (p.required) input.value = "0";
      }
      input.dataset.param = p.name;
      input.dataset.default = p.default ?? "";
      input.addEventListener("change", update);
      label.append(input);
      return label;
    }),
  );
}

function query(extra = {}) {
  const q = new URLSearchParams({
    shape: $("shape").value.replace(/\s+/g, ""),
    seed: $("seed").value.trim(),
    convention: $("convention").value,
  });
  for (const input of $("params").querySelectorAll("[data-param]")) {
    if (input.value !== "" && input.value !== input.dataset.default) q.set(input.dataset.param, input.value);
  }
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  return q;
}

function pdf(law, x) {
  const { kind, loc, stddev, low, high, alpha, beta } = law;
  const phi = (z) => Math.exp(-0.5 * z * z) / Math.sqrt(2 * Math.PI);
  if (kind === "normal") return phi((x - loc) / stddev) / stddev;
  if (kind === "uniform") return x >= low && x <= high ? 1 / (high - low) : 0;
  if (kind === "truncated_normal") {
    if (x < low || x > high) return 0;
    const cdf = (z) => 0.5 * (1 + erf(z / Math.SQRT2));
    return phi((x - loc) / stddev) / stddev / (cdf(beta) - cdf(alpha));
  }
  return null;
}

function erf(x) { // Abramowitz-Stegun 7.1.26 is too coarse in the tails; a series is enough here
  let sum = x, term = x;
  for (let n = 1; n < 60; n++) { term *= (-x * x) / n; sum += term / (2 * n + 1); }
  return Math.max(-1, Math.min(1, (2 / Math.sqrt(Math.PI)) * sum));
}

function drawHistogram(values, plan) {
  const canvas = $("histogram");
  const ctx = canvas.getContext("2d");
  const { width: W, height: H } = canvas;
  ctx.clearRect(0, 0, W, H);
  let mean = 0;
  for (const v of values) mean += v;
  mean /= values.length || 1;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  const std = Math.sqrt(sq / (values.length || 1));
  const eff = plan.effective_std || std || 1;
  const lo = plan.low ?? plan.mean - 4.5 * eff, hi = plan.high ?? plan.mean + 4.5 * eff;
  const span = hi - lo || 1, bins = 64, counts = new Array(bins).fill(0);
  for (const v of values) {
    const b = Math.floor(((v - lo) / span) * bins);
    if (b >= 0 && b < bins) counts[b]++;
    else if (v === hi) counts[bins - 1]++;
  }
  const density = counts.map((c) => c / (values.length * (span / bins)));
  const law = { ...plan, kind: plan.kind, loc: plan.loc ?? plan.mean };
  const curve = Array.from({ length: 241 }, (_, i) => lo + (span * i) / 240).map((x) => [x, pdf(law, x)]);
  const top = Math.max(...density, ...curve.map(([, y]) => y ?? 0)) * 1.1 || 1;
  const px = (x) => 40 + ((x - lo) / span) * (W - 50), py = (y) => H - 25 - (y / top) * (H - 35);
  ctx.fillStyle = "#9ab9f5";
  density.forEach((d, i) => ctx.fillRect(px(lo + (i * span) / bins) + 0.5, py(d), (W - 50) / bins - 1, H - 25 - py(d)));
  if (curve[0][1] !== null) {
    ctx.strokeStyle = "#d1242f"; ctx.lineWidth = 2; ctx.beginPath();
    curve.forEach(([x, y], i) => (i ? ctx.lineTo(px(x), py(y)) : ctx.moveTo(px(x), py(y))));
    ctx.stroke();
  }
  ctx.fillStyle = "#1d2433"; ctx.font = "12px system-ui";
  ctx.fillText(fmt(lo), 40, H - 8); ctx.fillText(fmt(hi), W - 60, H - 8);
  ctx.fillText("bars: sample   line: the plan's density", W - 240, 14);
  canvas.dataset.count = values.length;
  canvas.dataset.std = std;
  canvas.dataset.version = Number(canvas.dataset.version) + 1;
  $("sample-stats").textContent = `${values.length} values: mean ${fmt(mean)}, std ${fmt(std)} (plan ${fmt(plan.effective_std)})`;
}

async function update() {
  const mine = ++pending;
  $("error").textContent = "";
  try {
    const scheme = $("scheme").value;
    const d = await json(`/v1/tensors/${scheme}?${query({ describe: "true" })}`);
    if (mine !== pending) return;
    const p = d.plan;
    $("plan-rule").textContent = p.rule;
    $("plan-formula").textContent = p.formula;
    $("plan-fan-in").textContent = fmt(p.fan_in);
    $("plan-fan-out").textContent = fmt(p.fan_out);
    $("plan-stddev").textContent = fmt(p.stddev);
    $("plan-limit").textContent = fmt(p.limit);
    $("plan-effective-std").textContent = fmt(p.effective_std);
    $("plan-notes").textContent = p.notes.join(" · ");
    const url = `${location.origin}${d.url}`;
    $("curl").textContent = `curl -o ${d.request.name}.npy '${url}'`;
    $("python").textContent = [
      "import io, httpx, numpy as np",
      `r = httpx.get("${url}")`,
      "w = np.load(io.BytesIO(r.content), allow_pickle=False)",
      `# ${d.request.shape.join("x")} ${d.request.dtype}, effective std ${fmt(p.effective_std)}`,
    ].join("\n");
    const raw = await fetch(`/v1/tensors/${scheme}?${query({ format: "raw", dtype: "float32" })}`, {
      headers: { Range: `bytes=0-${Math.max(Math.min(d.nbytes, SAMPLE_BYTES) - 1, 0)}` },
    });
    if (mine !== pending) return;
    const buffer = d.nbytes ? await raw.arrayBuffer() : new ArrayBuffer(0);
    drawHistogram(new Float32Array(buffer, 0, Math.floor(buffer.byteLength / 4)), { ...p, kind: p.kind });
  } catch (e) {
    if (mine === pending) $("error").textContent = e.message;
  }
}

function drawLines(canvas, series, key, title) {
  const ctx = canvas.getContext("2d");
  const { width: W, height: H } = canvas;
  ctx.clearRect(0, 0, W, H);
  const logs = series.flatMap((s) => s.layers.map((l) => Math.log10(Math.max(l[key], 1e-300))));
  const lo = Math.max(Math.min(...logs, 0), -60), hi = Math.min(Math.max(...logs, 0), 60);
  const n = series[0].layers.length;
  const px = (i) => 45 + (i / Math.max(n - 1, 1)) * (W - 60), py = (y) => 20 + ((hi - y) / (hi - lo || 1)) * (H - 45);
  ctx.fillStyle = "#1d2433"; ctx.font = "12px system-ui";
  ctx.fillText(title, 45, 12);
  ctx.fillText(`1e${hi.toFixed(0)}`, 2, 24); ctx.fillText(`1e${lo.toFixed(0)}`, 2, H - 25);
  ctx.fillText("layer →", W - 60, H - 6);
  ctx.strokeStyle = "#c9ced8"; ctx.beginPath(); ctx.moveTo(45, py(0)); ctx.lineTo(W - 15, py(0)); ctx.stroke();
  series.forEach((s, k) => {
    ctx.strokeStyle = COLORS[k % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
    s.layers.forEach((l, i) => {
      const y = py(Math.max(lo, Math.min(hi, Math.log10(Math.max(l[key], 1e-300)))));
      i ? ctx.lineTo(px(i), y) : ctx.moveTo(px(i), y);
    });
    ctx.stroke();
  });
  canvas.dataset.version = Number(canvas.dataset.version) + 1;
}

async function compare() {
  $("error").textContent = "";
  const layers = Number($("layers").value), width = Number($("width").value);
  const widths = Array(layers + 1).fill(width);
  const mine = Object.fromEntries(query().entries());
  const base = { widths, activation: $("activation").value, batch: 256, seed: 0 };
  const own = { scheme: $("scheme").value, convention: mine.convention };
  for (const input of $("params").querySelectorAll("[data-param]")) {
    if (input.dataset.param in mine) own[input.dataset.param] = isNaN(Number(mine[input.dataset.param])) ? mine[input.dataset.param] : Number(mine[input.dataset.param]);
  }
  const runs = [
    ["this scheme", own],
    ["He normal", { scheme: "he_normal", convention: "torch" }],
    ["Glorot normal", { scheme: "glorot_normal", convention: "torch" }],
    ["10× too small", { scheme: "variance_scaling", convention: "torch", factor: 0.02 }],
    ["2× too large", { scheme: "variance_scaling", convention: "torch", factor: 8 }],
  ];
  try {
    const results = await Promise.all(
      runs.map(([, init]) => json("/v1/analyze", { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ ...base, ...init }) })),
    );
    drawLines($("forward"), results, "activation_std", "activation std per layer (log scale)");
    drawLines($("backward"), results, "gradient_std", "gradient std per layer (log scale)");
    $("legend").replaceChildren(
      ...runs.map(([name], k) => {
        const span = document.createElement("span");
        span.style.color = COLORS[k];
        const last = results[k].layers.at(-1);
        span.textContent = `■ ${name}: ${last.activation_std.toExponential(2)}`;
        return span;
      }),
    );
  } catch (e) {
    $("error").textContent = e.message;
  }
}

async function main() {
  catalogue = await json("/v1/schemes");
  fillSelect($("convention"), catalogue.conventions.map((c) => c.name), "torch");
  const onConvention = () => {
    fillSelect($("scheme"), schemesFor($("convention").value).map((s) => s.name), $("scheme").value || "he_normal");
    renderParams();
    update();
  };
  $("convention").addEventListener("change", onConvention);
  $("scheme").addEventListener("change", () => { renderParams(); update(); });
  for (const id of ["shape", "seed"]) $(id).addEventListener("change", update);
  $("compare").addEventListener("click", compare);
  for (const button of document.querySelectorAll("[data-copy]")) {
    button.addEventListener("click", () => navigator.clipboard?.writeText($(button.dataset.copy).textContent));
  }
  onConvention();
  compare();
}

main();
