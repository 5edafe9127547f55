#!/usr/bin/env bash
# NBD benchmark: PStorage's NBD export next to `nbdkit memory` (a peer NBD
# server that keeps blocks in RAM and reduces nothing), both driven by the
# same client: fio's nbd engine (libnbd). Starts a real `pstorage serve`
# (fresh array, one 1 GiB volume) and nbdkit on 127.0.0.1, runs the same fio
# jobs against each for three kinds of data, stops both, and writes a
# markdown section. Not part of docs/performance.md any more: bench/report.sh
# compares the NBD export with nbdkit through `pstorage bench` (sections 2-3);
# this longer fio grid (about four minutes) is for a closer look.
#
# Usage: scripts/nbd-bench.sh [BUILD_DIR [OUT_FILE]]
#   BUILD_DIR  a build folder with api/pstorage (default build/release)
#   OUT_FILE   where the section goes (default stdout)
# Env:   PSTORAGE_BENCH_DIR   parent of the temporary folder (default /var/tmp)
#        NBD_BENCH_SECONDS    seconds per timed job (default 5)
# Takes about four minutes with the defaults: 2 servers x 3 data kinds x
# (a 512 MiB fill + 6 timed jobs).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build/release}
out=${2:-/dev/stdout}
bench_dir=${PSTORAGE_BENCH_DIR:-/var/tmp}
seconds=${NBD_BENCH_SECONDS:-5}
server_bin=$build/api/pstorage
region=512M

die() { echo "nbd-bench: $*" >&2; exit 1; }
[ -x "$server_bin" ] || die "$server_bin not found; build it first (target pstorage)"
command -v fio >/dev/null || die "fio not found; run scripts/install-deps.sh"
command -v nbdkit >/dev/null || die "nbdkit not found; run scripts/install-deps.sh"
fio --enghelp 2>/dev/null | grep -qw nbd || die "this fio has no nbd engine"
command -v curl >/dev/null || die "curl not found"

tmp=$(mktemp -d "$bench_dir/pstorage-nbd-bench.XXXXXX")
server_pid=
nbdkit_pid=
cleanup() {
  for pid in $server_pid $nbdkit_pid; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$tmp"
}
trap cleanup EXIT

api_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
cat >"$tmp/config.json" <<EOF
{
  "version": 1,
  "server_port": 0,
  "bind_address": "127.0.0.1",
  "nbd_port": 0,
  "log_level": "warn",
  "rate_limit": {"enabled": false},
  "default": {"authentication": {"enabled": true, "api_key": "$api_key"}},
  "array": {"data_dir": "data", "flash_capacity_bytes": 2147483648},
  "projects": []
}
EOF
chmod 600 "$tmp/config.json"

echo "nbd-bench: starting $server_bin serve in $tmp" >&2
"$server_bin" serve --config "$tmp/config.json" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
url=
nbd_port=
for _ in $(seq 600); do
  url=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)$|\1|p' "$tmp/serve.out")
  nbd_port=$(sed -n 's|^nbd listening on 127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$tmp/serve.out")
  [ -n "$url" ] && [ -n "$nbd_port" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$tmp/serve.err" >&2; die "the server exited"; }
  sleep 0.1
done
if [ -z "$url" ] || [ -z "$nbd_port" ]; then die "the server did not report its ports"; fi
curl -sf -X POST "$url/api/v1/volumes" -H "X-API-Key: $api_key" \
  -H 'Content-Type: application/json' -d '{"name": "bench", "size_gb": 1}' >/dev/null \
  || die "cannot create the volume"

# A free port for nbdkit: bind-test a few above 20000.
kit_port=
for p in $(seq 20809 20899); do
  if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then kit_port=$p; break; fi
done
[ -n "$kit_port" ] || die "no free port for nbdkit"
nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$kit_port" memory 1G \
  >"$tmp/nbdkit.out" 2>&1 &
nbdkit_pid=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$kit_port") 2>/dev/null && break
  sleep 0.1
done

# One fio job; prints "iops MBps p99_us" of its read or write side.
run() {  # name uri data-options fio-options...
  local name=$1 uri=$2 data=$3
  shift 3
  # shellcheck disable=SC2086
  fio --name="$name" --ioengine=nbd --uri="$uri" --size=$region --refill_buffers $data \
    "$@" --output-format=json >"$tmp/$name.json" 2>"$tmp/$name.err" \
    || { cat "$tmp/$name.err" >&2; die "fio job $name failed"; }
  local side=write
  case " $* " in *"--rw=randread "*|*"--rw=read "*) side="read" ;; esac
  awk -v side="$side" '
    $0 ~ "\"" side "\" : \\{" { s = 1 }
    s && /"iops" :/ && !iops { v = $3; gsub(/[",]/, "", v); iops = v }
    s && /"bw_bytes" :/ && !bw { v = $3; gsub(/[",]/, "", v); bw = v }
    s && /"clat_ns" : \{/ { c = 1 }
    s && c && /"99.000000" :/ && !p99 { v = $3; gsub(/[",]/, "", v); p99 = v; s = 0 }
    END { printf "%.0f %.1f %.0f\n", iops, bw / 1e6, p99 / 1000 }' "$tmp/$name.json"
}

declare -A result
kinds=(random compress2x dedupe50)
data_opts() {
  case $1 in
    random) echo "--buffer_compress_percentage=0" ;;
    compress2x) echo "--buffer_compress_percentage=50 --buffer_compress_chunk=4k" ;;
    dedupe50) echo "--dedupe_percentage=50 --buffer_compress_percentage=0" ;;
  esac
}
jobs=(w4k_qd1 w4k_qd32 r4k_qd1 r4k_qd32 w1m r1m)
job_opts() {
  case $1 in
    w4k_qd1) echo "--rw=randwrite --bs=4k --iodepth=1" ;;
    w4k_qd32) echo "--rw=randwrite --bs=4k --iodepth=32" ;;
    r4k_qd1) echo "--rw=randread --bs=4k --iodepth=1" ;;
    r4k_qd32) echo "--rw=randread --bs=4k --iodepth=32" ;;
    w1m) echo "--rw=write --bs=1M --iodepth=8" ;;
    r1m) echo "--rw=read --bs=1M --iodepth=8" ;;
  esac
}

for target in pstorage nbdkit; do
  if [ "$target" = pstorage ]; then uri="nbd://127.0.0.1:$nbd_port/bench"; else uri="nbd://127.0.0.1:$kit_port/"; fi
  for kind in "${kinds[@]}"; do
    echo "nbd-bench: $target, $kind data: fill $region" >&2
    # shellcheck disable=SC2046
    run "fill-$target-$kind" "$uri" "$(data_opts "$kind")" --rw=write --bs=1M --iodepth=8 >/dev/null
    for job in "${jobs[@]}"; do
      echo "nbd-bench: $target, $kind data: $job" >&2
      # shellcheck disable=SC2046
      result[$target,$kind,$job]=$(run "$job-$target-$kind" "$uri" "$(data_opts "$kind")" \
        $(job_opts "$job") --runtime="$seconds" --time_based)
    done
  done
done

reduction=$(curl -sf "$url/api/v1/metrics/reduction" -H "X-API-Key: $api_key" || echo "{}")
kill -TERM "$server_pid"
wait "$server_pid" || die "the server did not stop cleanly"
server_pid=
kill -TERM "$nbdkit_pid" 2>/dev/null || true
wait "$nbdkit_pid" 2>/dev/null || true
nbdkit_pid=

field() { echo "${result[$1]}" | awk -v i="$2" '{ print $i }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
{
  echo "## NBD export vs nbdkit memory"
  echo
  echo "\`scripts/nbd-bench.sh\`: the same fio $(fio --version | sed 's/^fio-//') jobs (ioengine=nbd, libnbd) against PStorage's NBD export of a 1 GiB volume and against \`nbdkit memory 1G\` ($(nbdkit --version 2>/dev/null | head -1)), which keeps blocks in RAM and reduces nothing. Machine: $(nproc) CPUs, $(awk -F: '/model name/ { sub(/^ +/, "", $2); print $2; exit }' /proc/cpuinfo); $(date -u '+%Y-%m-%d %H:%M') UTC; 1-minute load $(cut -d' ' -f1 /proc/loadavg) at the end. Each data kind: a ${region}B sequential fill, then each job for ${seconds} s over the same ${region}B (fio \`--refill_buffers\`; \`compress2x\`: buffer_compress_percentage=50; \`dedupe50\`: dedupe_percentage=50). Ratios first: PStorage / nbdkit in the same run."
  echo
  echo "| data | job | PStorage / nbdkit IOPS | PStorage IOPS | nbdkit IOPS | PStorage MB/s | nbdkit MB/s | PStorage p99 µs | nbdkit p99 µs |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for kind in "${kinds[@]}"; do
    for job in "${jobs[@]}"; do
      p="pstorage,$kind,$job" k="nbdkit,$kind,$job"
      echo "| $kind | $job | $(ratio "$(field "$p" 1)" "$(field "$k" 1)") | $(field "$p" 1) | $(field "$k" 1) | $(field "$p" 2) | $(field "$k" 2) | $(field "$p" 3) | $(field "$k" 3) |"
    done
  done
  echo
  echo "Targets: >= 0.7 of nbdkit's 4 KiB random-write IOPS on compress2x and dedupe50 data, >= 0.9 on reads:"
  echo
  echo "| check | measured | target | |"
  echo "|---|---:|---:|---|"
  for kind in compress2x dedupe50; do
    for job in w4k_qd1 w4k_qd32; do
      r=$(ratio "$(field "pstorage,$kind,$job" 1)" "$(field "nbdkit,$kind,$job" 1)")
      ok=$(awk -v r="$r" 'BEGIN { print (r >= 0.7) ? "met" : "**missed**" }')
      echo "| $kind $job | $r | 0.7 | $ok |"
    done
  done
  for kind in "${kinds[@]}"; do
    for job in r4k_qd1 r4k_qd32; do
      r=$(ratio "$(field "pstorage,$kind,$job" 1)" "$(field "nbdkit,$kind,$job" 1)")
      ok=$(awk -v r="$r" 'BEGIN { print (r >= 0.9) ? "met" : "**missed**" }')
      echo "| $kind $job | $r | 0.9 | $ok |"
    done
  done
  echo
  echo "PStorage's reduction after the run (\`GET /api/v1/metrics/reduction\`): \`$reduction\`"
  echo
} >"$out"
