// The weightgen playground: no framework, no build step, nothing from outside this service.
//
// What the page tells a test (or a screenshot script) on <body>: data-ready="1" once the selects
// hold the catalogue and the first plan and sample are on screen ("error" if the catalogue did
// not load); data-busy lists what is being waited for ("" when nothing is); data-aborted counts
// the tensor requests abandoned because a newer one replaced them. Each canvas carries
// data-version (bumped at each drawing); #histogram also data-scheme (whose sample it shows, ""
// when cleared), data-count and data-std; the depth plots data-order (the series in drawing
// order, the last on top) and data-dashed.
const $ = (id) => document.getElementById(id);
const SAMPLE_BYTES = 4 << 20; // at most 1 Mi float32 values, read with a Range request
const COLORS = ["#1f6feb", "#d1242f", "#1a7f37", "#9a6700", "#8250df"];
const DASH = [8, 5]; // "this scheme": dashed and drawn last, so a reference line under it shows
let catalogue = null;
let tensorRequest = null; // the AbortController of the tensor update in flight, if any
let depthRequest = null; // the same for the depth comparison
const waiting = new Map([["catalogue", "the catalogue"]]); // what is pending -> how to say it
const SECTIONS = { catalogue: ["request"], tensor: ["plan", "sample", "snippets"], depth: ["depth"] };

function busy(what, label) {
  if (label) waiting.set(what, label);
  else waiting.delete(what);
  const status = $("status");
  status.hidden = waiting.size === 0;
  status.textContent = waiting.size ? `loading ${[...waiting.values()].join(" and ")}…` : "";
  document.body.dataset.busy = [...waiting.keys()].join(" ");
  for (const id of SECTIONS[what]) $(id).setAttribute("aria-busy", label ? "true" : "false");
}

const fmt = (x) =>
  x === null || x === undefined ? "—" : Number.isInteger(x) ? String(x) : Number(x).toPrecision(6);

class Problem extends Error {
  constructor(detail, errors = []) {
    super(detail);
    this.errors = errors; // RFC 9457 extension: [{pointer: "#/shape/0", detail, received}]
  }
}

async function problemOf(response) {
  let body = null;
  try {
    body = await response.json();
  } catch (e) {
    if (e.name === "AbortError") throw e;
  }
  const detail = body?.detail ?? body?.title ?? `${response.status} ${response.statusText}`.trim();
  return new Problem(typeof detail === "string" ? detail : JSON.stringify(detail), body?.errors ?? []);
}

async function json(url, init) {
  const r = await fetch(url, init);
  if (!r.ok) throw await problemOf(r);
  return r.json();
}

function schemesFor(convention) {
  return catalogue.schemes.filter((s) => convention in s.conventions);
}

function fillSelect(select, values, keep) {
  select.replaceChildren(...values.map((v) => new Option(v, v)));
  if (values.includes(keep)) select.value = keep;
  select.disabled = false;
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

function drawHistogram(scheme, values, plan) {
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
  const density = counts.map((c) => c / ((values.length || 1) * (span / bins)));
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
  canvas.dataset.scheme = scheme;
  canvas.dataset.count = values.length;
  canvas.dataset.std = std;
  canvas.dataset.version = Number(canvas.dataset.version) + 1;
  $("sample-stats").textContent = `${scheme}: ${values.length} values, mean ${fmt(mean)}, std ${fmt(std)} (plan ${fmt(plan.effective_std)})`;
}

const PLAN_FIELDS = ["plan-rule", "plan-formula", "plan-fan-in", "plan-fan-out", "plan-stddev", "plan-limit", "plan-effective-std", "plan-notes"];

function setSnippet(id, text) {
  $(id).textContent = text;
  $(`${id}-copied`).textContent = "";
}

function showPlan(scheme, d) {
  const p = d.plan;
  $("plan-problem").textContent = "";
  $("plan").dataset.scheme = scheme;
  $("plan-rule").textContent = p.rule;
  $("plan-formula").textContent = p.formula;
  $("plan-fan-in").textContent = fmt(p.fan_in);
  $("plan-fan-out").textContent = fmt(p.fan_out);
  $("plan-stddev").textContent = fmt(p.stddev);
  $("plan-limit").textContent = fmt(p.limit);
  $("plan-effective-std").textContent = fmt(p.effective_std);
  $("plan-notes").textContent = p.notes.join(" · ");
  const url = `${location.origin}${d.url}`;
  setSnippet("curl", `curl -o ${d.request.name}.npy '${url}'`);
  setSnippet("python", [
    "import io, httpx, numpy as np",
    `r = httpx.get("${url}")`,
    "w = np.load(io.BytesIO(r.content), allow_pickle=False)",
    `# ${d.request.shape.join("x")} ${d.request.dtype}, effective std ${fmt(p.effective_std)}`,
  ].join("\n"));
}

// A refused request: nothing of the previous tensor stays on screen, the problem's detail does.
function showProblem(problem) {
  for (const id of PLAN_FIELDS) $(id).textContent = "";
  $("plan").dataset.scheme = "";
  $("plan-problem").textContent = problem.message;
  setSnippet("curl", "");
  setSnippet("python", "");
  const canvas = $("histogram");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  canvas.dataset.scheme = "";
  canvas.dataset.count = 0;
  canvas.dataset.std = "";
  canvas.dataset.version = Number(canvas.dataset.version) + 1;
  $("sample-stats").textContent = "no sample: the request was refused (see the plan)";
  for (const { pointer } of problem.errors ?? []) { // "#/shape/0" -> #shape, "#/mode" -> [data-param=mode]
    const name = String(pointer ?? "").split("/")[1];
    const input = name && ($("params").querySelector(`[data-param="${CSS.escape(name)}"]`) ?? document.querySelector(`#request #${CSS.escape(name)}`));
    input?.setAttribute("aria-invalid", "true");
  }
}

async function update() {
  if (tensorRequest) { // an answer for the previous choice must never land on this one
    tensorRequest.abort();
    document.body.dataset.aborted = Number(document.body.dataset.aborted ?? 0) + 1;
  }
  const ctl = new AbortController();
  tensorRequest = ctl;
  const { signal } = ctl;
  const current = () => tensorRequest === ctl && !signal.aborted; // asked after every await
  const scheme = $("scheme").value;
  for (const input of document.querySelectorAll("#request [aria-invalid]")) input.removeAttribute("aria-invalid");
  busy("tensor", `the ${scheme} tensor`);
  try {
    const d = await json(`/v1/tensors/${encodeURIComponent(scheme)}?${query({ describe: "true" })}`, { signal });
    if (!current()) return;
    showPlan(scheme, d);
    let buffer = new ArrayBuffer(0);
    if (d.nbytes) {
      const raw = await fetch(`/v1/tensors/${encodeURIComponent(scheme)}?${query({ format: "raw", dtype: "float32" })}`, {
        signal,
        headers: { Range: `bytes=0-${Math.min(d.nbytes, SAMPLE_BYTES) - 1}` },
      });
      if (!current()) return;
      if (!raw.ok) throw await problemOf(raw);
      buffer = await raw.arrayBuffer();
      if (!current()) return;
    }
    drawHistogram(scheme, new Float32Array(buffer, 0, Math.floor(buffer.byteLength / 4)), { ...d.plan });
  } catch (e) {
    if (e.name === "AbortError" || !current()) return;
    showProblem(e instanceof Problem ? e : new Problem(`the request failed: ${e.message}`));
  } finally {
    if (tensorRequest === ctl) {
      tensorRequest = null;
      busy("tensor", null);
    }
  }
}

function drawLines(canvas, series, names, key, title) {
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
  ctx.strokeStyle = "#c9ced8"; ctx.lineWidth = 1; ctx.beginPath(); ctx.moveTo(45, py(0)); ctx.lineTo(W - 15, py(0)); ctx.stroke();
  // the references first, "this scheme" (index 0) last and dashed: on top, and where it
  // coincides with a reference (he_normal is the default) that one shows between the dashes
  const order = [...series.keys()].slice(1).concat([0]);
  for (const k of order) {
    ctx.strokeStyle = COLORS[k % COLORS.length];
    ctx.lineWidth = k === 0 ? 3 : 2;
    ctx.setLineDash(k === 0 ? DASH : []);
    ctx.beginPath();
    series[k].layers.forEach((l, i) => {
      const y = py(Math.max(lo, Math.min(hi, Math.log10(Math.max(l[key], 1e-300)))));
      i ? ctx.lineTo(px(i), y) : ctx.moveTo(px(i), y);
    });
    ctx.stroke();
  }
  ctx.setLineDash([]);
  canvas.dataset.order = order.map((k) => names[k]).join("|");
  canvas.dataset.dashed = names[0];
  canvas.dataset.version = Number(canvas.dataset.version) + 1;
}

// The service computes a few analyses at once and answers 503 + Retry-After when its slots stay
// taken: send them a few at a time, and wait as told (a few times) before giving up.
const ANALYSES_AT_ONCE = 2;
const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const timer = setTimeout(resolve, ms);
  signal.addEventListener("abort", () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
});

async function analyze(body, signal) {
  for (let attempt = 1; ; attempt++) {
    const r = await fetch("/v1/analyze", { method: "POST", signal, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    if (signal.aborted) throw signal.reason;
    if (r.ok) return r.json();
    if (r.status !== 503 || attempt >= 5) throw await problemOf(r);
    const wait = Math.min(Math.max(Number(r.headers.get("retry-after")) || 1, 1), 10);
    busy("depth", `the depth comparison (the service is busy: trying again in ${wait} s)`);
    await sleep(wait * 1000, signal);
    busy("depth", "the depth comparison");
  }
}

async function inTurn(tasks, atOnce) { // run tasks, at most atOnce at a time; results in order
  const results = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const i = next++;
      results[i] = await tasks[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(atOnce, tasks.length) }, worker));
  return results;
}

async function compare() {
  depthRequest?.abort();
  const ctl = new AbortController();
  depthRequest = ctl;
  const { signal } = ctl;
  $("depth-problem").textContent = "";
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
  busy("depth", "the depth comparison");
  try {
    const results = await inTurn(runs.map(([, init]) => () => analyze({ ...base, ...init }, signal)), ANALYSES_AT_ONCE);
    if (depthRequest !== ctl || signal.aborted) return;
    const names = runs.map(([name]) => name);
    drawLines($("forward"), results, names, "activation_std", "activation std per layer (log scale)");
    drawLines($("backward"), results, names, "gradient_std", "gradient std per layer (log scale)");
    $("legend").replaceChildren(
      ...runs.map(([name], k) => {
        const span = document.createElement("span");
        span.className = `c${k}`;
        const last = results[k].layers.at(-1);
        const label = k === 0 ? `╍ ${name} (${own.scheme}, ${own.convention})` : `■ ${name}`;
        span.textContent = `${label}: ${last.activation_std.toExponential(2)}`;
        return span;
      }),
    );
  } catch (e) {
    if (e.name === "AbortError" || depthRequest !== ctl) return;
    ctl.abort(); // the other analyses of this comparison are no use now
    $("depth-problem").textContent = e.message;
  } finally {
    if (depthRequest === ctl) {
      depthRequest = null;
      busy("depth", null);
    }
  }
}

// Copy: the Clipboard API where the page has it (a secure context); elsewhere (plain HTTP on a
// non-local host) select the text and try the older command; say what happened either way.
async function copy(button) {
  const source = $(button.dataset.copy), said = $(`${button.dataset.copy}-copied`);
  const text = source.textContent;
  if (!text) { said.textContent = "nothing to copy yet"; return; }
  if (navigator.clipboard?.writeText) {
    try {
      await navigator.clipboard.writeText(text);
      said.textContent = "copied";
      return;
    } catch { /* refused (permissions): fall back */ }
  }
  const range = document.createRange();
  range.selectNodeContents(source);
  const selection = window.getSelection();
  selection.removeAllRanges();
  selection.addRange(range);
  let done = false;
  try { done = document.execCommand("copy"); } catch { done = false; }
  said.textContent = done ? "copied (no clipboard API here: used the copy command)" : "selected: press Ctrl+C (⌘C) to copy";
}

async function main() {
  try {
    catalogue = await json("/v1/schemes");
  } catch (e) {
    busy("catalogue", null);
    $("error").textContent = `the catalogue did not load: ${e.message}`;
    document.body.dataset.ready = "error";
    return;
  }
  fillSelect($("convention"), catalogue.conventions.map((c) => c.name), "torch");
  const onConvention = () => {
    fillSelect($("scheme"), schemesFor($("convention").value).map((s) => s.name), $("scheme").value || "he_normal");
    renderParams();
    return update();
  };
  $("convention").addEventListener("change", onConvention);
  $("scheme").addEventListener("change", () => { renderParams(); update(); });
  for (const id of ["shape", "seed"]) $(id).addEventListener("change", update);
  $("compare").addEventListener("click", compare);
  for (const button of document.querySelectorAll("[data-copy]")) button.addEventListener("click", () => copy(button));
  fillSelect($("scheme"), schemesFor("torch").map((s) => s.name), "he_normal");
  busy("catalogue", null);
  const first = onConvention();
  compare();
  await first;
  document.body.dataset.ready = "1";
}

main();
