#!/usr/bin/env bash
# HTTP API benchmark: starts a real `pstorage serve` (fresh array, rate limit
# off, authentication on with a key made here, one on-disk KV project `bench`)
# on 127.0.0.1 in a temporary folder, runs pstorage-http-load against it (the
# default scenarios, then the KV ones), stops the server with SIGTERM and
# writes a markdown section for docs/performance.md.
#
# Usage: scripts/http-bench.sh [BUILD_DIR [OUT_FILE]]
#   BUILD_DIR  a build folder with api/pstorage and bench/pstorage-http-load
#              (default build/release)
#   OUT_FILE   where the section goes (default stdout)
# Env:   PSTORAGE_BENCH_DIR       parent of the temporary folder holding the array
#                                 (default /var/tmp, a disk, as for bench/report.sh)
#        PSTORAGE_HTTP_BENCH_ARGS extra pstorage-http-load options, e.g. "--seconds 3"
# Takes about a minute and a half with the defaults ((7 + 3 KV + 3 hot) scenarios
# x (1 s warm-up + 5 s), plus setup).
# Exits 3 when the load generator saw errors (the section is written anyway
# and shows them), 1 on any other failure.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
out=${2:-/dev/stdout}
bench_dir=${PSTORAGE_BENCH_DIR:-/var/tmp}
server_bin=$build/api/pstorage
load_bin=$build/bench/pstorage-http-load

die() { echo "http-bench: $*" >&2; exit 1; }
for bin in "$server_bin" "$load_bin"; do
  [ -x "$bin" ] || die "$bin not found; build it first (targets pstorage, pstorage-http-load)"
done
if ! [ -d "$bench_dir" ] || ! [ -w "$bench_dir" ]; then
  die "$bench_dir is not a writable directory"
fi

tmp=$(mktemp -d "$bench_dir/pstorage-http-bench.XXXXXX")
server_pid=
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

if command -v openssl >/dev/null; then
  api_key=$(openssl rand -hex 24)
else
  api_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
fi
[ ${#api_key} -eq 48 ] || die "could not generate an API key"

cat >"$tmp/config.json" <<EOF
{
  "version": 1,
  "server_port": 0,
  "bind_address": "127.0.0.1",
  "log_level": "warn",
  "rate_limit": {"enabled": false},
  "default": {"authentication": {"enabled": true, "api_key": "$api_key"}},
  "array": {"data_dir": "data", "flash_capacity_bytes": 1073741824},
  "projects": [
    {"id": "bench", "storage": {"on_disk": true}, "authentication": {"enabled": false}}
  ]
}
EOF
chmod 600 "$tmp/config.json"

echo "http-bench: starting $server_bin serve in $tmp" >&2
"$server_bin" serve --config "$tmp/config.json" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!

# The server prints "listening on http://127.0.0.1:PORT" once it accepts.
url=
for _ in $(seq 600); do
  url=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)$|\1|p' "$tmp/serve.out")
  [ -n "$url" ] && break
  if ! kill -0 "$server_pid" 2>/dev/null; then
    cat "$tmp/serve.err" >&2
    die "the server exited before listening (its messages are above)"
  fi
  sleep 0.1
done
[ -n "$url" ] || die "the server did not print its address within 60 s"
echo "http-bench: server at $url (pid $server_pid)" >&2

# The key goes through the environment, not the command line (ps would show it).
# The KV scenarios come last, in the same run and table: /v1 with the admin
# key acts on the first project, `bench`.
load_rc=0
# shellcheck disable=SC2086  # PSTORAGE_HTTP_BENCH_ARGS is a list of options
PSTORAGE_API_KEY=$api_key "$load_bin" --url "$url" --markdown "$tmp/table.md" \
  --scenarios default,kv_put,kv_get,kv_batch100 ${PSTORAGE_HTTP_BENCH_ARGS:-} >&2 || load_rc=$?
[ "$load_rc" -eq 0 ] || [ "$load_rc" -eq 3 ] || die "pstorage-http-load failed (exit $load_rc)"
# Reads again with a working set that fits the server's 64 MiB block cache:
# the figure for hot data, next to the cold one above (256 MiB, mostly flash).
hot_rc=0
# shellcheck disable=SC2086
PSTORAGE_API_KEY=$api_key "$load_bin" --url "$url" --markdown "$tmp/hot.md" \
  --scenarios empty,read4k,read4k_json --region-mb 32 ${PSTORAGE_HTTP_BENCH_ARGS:-} >&2 || hot_rc=$?
[ "$hot_rc" -eq 0 ] || [ "$hot_rc" -eq 3 ] || die "pstorage-http-load (hot) failed (exit $hot_rc)"
[ "$hot_rc" -eq 0 ] || load_rc=3

echo "http-bench: stopping the server (SIGTERM)" >&2
kill -TERM "$server_pid"
for _ in $(seq 600); do
  kill -0 "$server_pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$server_pid" 2>/dev/null && die "the server did not exit within 60 s of SIGTERM"
server_rc=0
wait "$server_pid" || server_rc=$?
server_pid=
if [ -s "$tmp/serve.err" ]; then
  echo "http-bench: the server logged (level warn and above):" >&2
  tail -n 20 "$tmp/serve.err" >&2
fi
[ "$server_rc" -eq 0 ] || die "the server exited with status $server_rc"

{
  cat <<EOF
## HTTP API (pstorage-http-load)

\`scripts/http-bench.sh\`: a \`pstorage serve\` from this build on 127.0.0.1
with a fresh array (1 GiB of flash in a temporary folder of \`$bench_dir\`),
authentication on (every request carries X-API-Key), rate limit off, log
level warn, default server threads. \`pstorage-http-load\` creates a volume,
fills the read region with 1 MiB PUTs (sizes below), then runs each scenario with
closed-loop client threads, each on its own keep-alive connection. Reads hit
random aligned offsets of the filled region, and 1 in 64 are checked against
the data written; writes go to random aligned offsets of the rest of the
volume with unique blocks (half random bytes, half zeros: about 2x for LZ4,
no dedupe hits). Any non-2xx answer, transport failure or wrong data counts
as an error.

The \`kv_*\` rows use the key-value API (\`/v1/keys/{key}\`, \`/v1/batch/put\`)
of the server's one project, \`bench\`, stored on disk in the same temporary
folder: every acknowledged key write is fdatasync'ed, with concurrent writers
sharing syncs (group commit). Setup writes the keys in batches of 500;
\`kv_put\` and \`kv_batch100\` overwrite them with new values, \`kv_get\`
reads them and checks 1 in 64 values byte for byte.

The \`empty\` row is the baseline, measured in the same run with the same
client: a Pistache server inside the load generator whose handler answers
200 with an empty body (same thread count as the server's default,
keep-alive set explicitly). It is what the HTTP transport alone costs on this
machine, so the ratios against it hold up against the machines' 20-50 %
run-to-run noise. Client and server share the same cores: the client's own
work (making and checking data, base64) is inside every figure.

EOF
  echo "### Working set 256 MiB (reads mostly miss the 64 MiB block cache)"
  echo
  cat "$tmp/table.md"
  echo
  echo "### Working set 32 MiB (reads hit the block cache)"
  echo
  cat "$tmp/hot.md"
} >"$out"

if [ "$load_rc" -eq 3 ]; then
  echo "http-bench: the load generator reported errors (see the section)" >&2
  exit 3
fi
