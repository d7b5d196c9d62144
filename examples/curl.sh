#!/usr/bin/env bash
# weightgen with curl and coreutils only: fetch raw float32 bytes, decode them with od, and
# check shape (byte count), mean ~ 0 and std ~ the X-Init-Effective-Std header.
#
#   examples/curl.sh [base-url]        (default http://127.0.0.1:8000)
set -euo pipefail
base="${1:-${WEIGHTGEN_URL:-http://127.0.0.1:8000}}"
url="$base/v1/tensors/he_uniform?shape=256,128&seed=7&format=raw"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

curl -sS --fail-with-body -D "$tmp/headers" -o "$tmp/w.bin" "$url"
effective=$(tr -d '\r' < "$tmp/headers" | awk -F': ' 'tolower($1) == "x-init-effective-std" {print $2}')
shape=$(tr -d '\r' < "$tmp/headers" | awk -F': ' 'tolower($1) == "x-init-shape" {print $2}')
bytes=$(wc -c < "$tmp/w.bin")

od -An -v -tf4 "$tmp/w.bin" | awk -v eff="$effective" -v shape="$shape" -v bytes="$bytes" '
  { for (i = 1; i <= NF; i++) { n++; s += $i; q += $i * $i } }
  END {
    mean = s / n; std = sqrt(q / n - mean * mean)
    printf "shape %s (%d values, %d bytes) mean %.6f std %.6f (plan %.6f)\n", shape, n, bytes, mean, std, eff
    ok = (n == 256 * 128) && (bytes == 4 * n) && (mean < 5 * eff / sqrt(n)) && (-mean < 5 * eff / sqrt(n)) && (std / eff - 1 < 0.02) && (1 - std / eff < 0.02)
    if (!ok) { print "the numbers do not match the plan" > "/dev/stderr"; exit 1 }
  }'
