// A weightgen client in plain Node 20: no dependencies, global fetch, DataView, typed arrays.
// Fetches one tensor as safetensors and one as .npy, parses both, prints shape, mean, std and
// the metadata, and checks them: shape as asked, mean ~ 0, std ~ the X-Init-Effective-Std header.
//
//   node examples/node/fetch.mjs [base-url]        (default http://127.0.0.1:8000)

const base = process.argv[2] ?? process.env.WEIGHTGEN_URL ?? "http://127.0.0.1:8000";

function stats(values) {
  let sum = 0;
  for (const v of values) sum += v;
  const mean = sum / values.length;
  let sq = 0;
  for (const v of values) sq += (v - mean) ** 2;
  return { mean, std: Math.sqrt(sq / values.length) };
}

const TYPED = { F32: Float32Array, F64: Float64Array, "<f4": Float32Array, "<f8": Float64Array };

function parseSafetensors(buffer) {
  const view = new DataView(buffer);
  const n = Number(view.getBigUint64(0, true)); // little-endian u64 header length
  const header = JSON.parse(new TextDecoder().decode(new Uint8Array(buffer, 8, n)));
  const metadata = header.__metadata__ ?? {};
  delete header.__metadata__;
  const [name, entry] = Object.entries(header)[0];
  const [begin, end] = entry.data_offsets;
  const Typed = TYPED[entry.dtype];
  const values = new Typed(buffer, 8 + n + begin, (end - begin) / Typed.BYTES_PER_ELEMENT);
  return { name, shape: entry.shape, dtype: entry.dtype, values, metadata };
}

function parseNpy(buffer) {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.slice(1, 6));
  if (bytes[0] !== 0x93 || magic !== "NUMPY") throw new Error("not an .npy file");
  const view = new DataView(buffer);
  const major = bytes[6];
  const length = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.slice(start, start + length));
  const descr = /'descr':\s*'([^']+)'/.exec(header)[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)[1].split(",").filter((s) => s.trim()).map(Number);
  const Typed = TYPED[descr];
  const offset = start + length; // 64-byte aligned by the format
  const values = new Typed(buffer, offset, (buffer.byteLength - offset) / Typed.BYTES_PER_ELEMENT);
  return { shape, dtype: descr, values };
}

async function get(path) {
  const response = await fetch(base + path);
  if (!response.ok) {
    const problem = await response.json();
    throw new Error(`${response.status} ${problem.title}: ${problem.detail}`);
  }
  const length = Number(response.headers.get("content-length"));
  const buffer = await response.arrayBuffer();
  if (buffer.byteLength !== length) throw new Error(`got ${buffer.byteLength} of ${length} bytes`);
  return { buffer, headers: response.headers };
}

function check(label, shape, expectedShape, values, headers) {
  const { mean, std } = stats(values);
  const effective = Number(headers.get("x-init-effective-std"));
  console.log(`${label}: shape [${shape}] mean ${mean.toFixed(6)} std ${std.toFixed(6)} (plan ${effective.toFixed(6)})`);
  const ok =
    JSON.stringify(shape) === JSON.stringify(expectedShape) &&
    Math.abs(mean) < (5 * effective) / Math.sqrt(values.length) &&
    Math.abs(std / effective - 1) < 0.02;
  if (!ok) {
    console.error(`${label}: the numbers do not match the plan`);
    process.exitCode = 1;
  }
}

const st = await get("/v1/tensors/he_normal?shape=512,256&seed=7&format=safetensors&name=fc.weight");
const tensor = parseSafetensors(st.buffer);
check(`safetensors ${tensor.name} ${tensor.dtype}`, tensor.shape, [512, 256], tensor.values, st.headers);
console.log("metadata:", JSON.stringify(tensor.metadata));

const np = await get("/v1/tensors/glorot_uniform?shape=300,200&seed=7&convention=torch");
const array = parseNpy(np.buffer);
check(`npy ${array.dtype}`, array.shape, [300, 200], array.values, np.headers);
