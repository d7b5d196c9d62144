// A client typed by `paths` from `openapi-typescript <live>/openapi.json -o schema.d.ts`
// (tests/e2e/test_generated_clients.py): GET a tensor by its typed query, check its numbers
// against describe's. Usage: node fetch_tensor.js <base URL>. Exit 0 when they match.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Tensor = paths["/v1/tensors/{scheme}"]["get"];
type Query = NonNullable<Tensor["parameters"]["query"]>;
type Ok = Tensor["responses"][200];
type Partial = Tensor["responses"][206];

// These lines type-check only if the contract declares what they name: a `never` query, an
// undeclared header or status, or a loose (`unknown`) type fails `tsc --noEmit`.
const query: Query = { shape: [256, 128], seed: 7, dtype: "float32", format: "raw" };
const shape: Query["shape"] = [256, 128];
// @ts-expect-error shape is a list of integers, not a comma-separated string
const notAList: Query["shape"] = "256,128";
// @ts-expect-error format is one of the formats the service writes
const notAFormat: Query["format"] = "csv";
// @ts-expect-error X-Init-Std is declared a number
const notANumber: Ok["headers"]["X-Init-Std"] = "wide";
const range: Partial["headers"]["Content-Range"] = "bytes 0-15/131072";
const rangeTypes: (keyof Partial["content"])[] = [
  "application/x-npy",
  "application/vnd.safetensors",
  "application/octet-stream",
];
const refused: Tensor["responses"][416]["content"]["application/problem+json"] = {
  type: "urn:weightgen:problem:range-not-satisfiable",
  title: "Range not satisfiable",
  status: 416,
  detail: "Range 'bytes=999999-' is outside the answer's 131072 bytes",
};
const unsatisfied: Tensor["responses"][416]["headers"]["Content-Range"] = "bytes */131072";
const unauthorized: Tensor["responses"][401]["headers"]["WWW-Authenticate"] = "Bearer";
const precondition: paths["/v1/tensors"]["post"]["responses"][412]["content"] = {
  "application/problem+json": refused,
};
// @ts-expect-error a problem has a detail
const incomplete: components["schemas"]["Problem"] = { type: "t", title: "t", status: 400 };
void [shape, notAList, notAFormat, notANumber, range, rangeTypes, refused, unsatisfied];
void [unauthorized, precondition, incomplete];

function fail(message: string): never {
  console.error(`fetch_tensor: ${message}`);
  process.exit(1);
}

async function main(base: string): Promise<void> {
  // the contract's list parameters are `style: form, explode: false`: shape=256,128
  const client = createClient<paths>({
    baseUrl: base,
    querySerializer: { array: { style: "form", explode: false } },
  });
  const path = { scheme: "he_normal" } as const;
  const described = await client.GET("/v1/tensors/{scheme}", {
    params: { path, query: { ...query, describe: true } },
  });
  const plan = described.data;  // the 200's JSON media type: DescribeResponse
  if (plan === undefined || typeof plan === "string") fail(`describe: ${described.response.status}`);

  const got = await client.GET("/v1/tensors/{scheme}", {
    params: { path, query },
    parseAs: "arrayBuffer",
  });
  if (got.response.status !== 200 || got.data === undefined) {
    fail(`GET: ${got.response.status} ${JSON.stringify(got.error)}`);
  }
  const bytes = got.data.byteLength;
  const std = Number(got.response.headers.get("X-Init-Std"));
  const effective = Number(got.response.headers.get("X-Init-Effective-Std"));
  const location = got.response.headers.get("Content-Location");
  if (bytes !== plan.content_length || bytes !== plan.nbytes) {
    fail(`${bytes} bytes, described ${plan.content_length} (${plan.nbytes} of data)`);
  }
  if (std !== plan.plan.stddev || effective !== plan.plan.effective_std) {
    fail(`X-Init-Std ${std}, Effective-Std ${effective}; described ${JSON.stringify(plan.plan)}`);
  }
  if (location !== plan.url) fail(`Content-Location ${location}, described ${plan.url}`);

  const slice = await client.GET("/v1/tensors/{scheme}", {
    params: { path, query },
    headers: { Range: "bytes=0-15" },
    parseAs: "arrayBuffer",
  });
  const firstBytes = new Uint8Array(got.data).slice(0, 16).join(",");
  const partial = slice.data === undefined ? "" : new Uint8Array(slice.data).join(",");
  const sent = slice.response.headers.get("Content-Range");
  if (slice.response.status !== 206 || partial !== firstBytes || sent !== `bytes 0-15/${bytes}`) {
    fail(`Range: ${slice.response.status} ${sent}`);
  }
  const values = new Float32Array(got.data);
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  const sd = Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / values.length);
  if (Math.abs(sd / plan.plan.effective_std - 1) > 0.02) fail(`sample std ${sd}`);
  console.log(
    JSON.stringify({ bytes, std, effective, sample_std: sd, range: sent, etag: plan.etag }),
  );
}

main(process.argv[2] ?? fail("usage: node fetch_tensor.js <base URL>")).catch((e: unknown) =>
  fail(String(e)),
);
