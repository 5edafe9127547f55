#!/usr/bin/env bash
# Regenerates docs/performance.md in one run on this machine (`make bench`).
#
#   1. Primitive ceilings on 4 KiB blocks (reduction_bench): XXH3-128, LZ4,
#      zstd -3, memcmp, and the engine's write pipeline and read path as a
#      ratio of them.
#   2. The engine through REST and NBD against its own in-process ceiling,
#      with `pstorage bench` and the same workload for the three targets.
#   3. Peers side by side: nbdkit memory (same NBD client), fio io_uring on a
#      plain file (the disk's ceiling), redis-server and etcd against
#      PStorage's KV path.
#   4. Data reduction on three data sets built from this machine's files,
#      against the offline ideal (4 KiB dedupe + per-block LZ4) and zstd -3.
#   5. Flash: write amplification against Desnoyers' model of greedy GC, and
#      the flash device's throughput.
#   Then what the earlier report kept: journal group commit, engine memory
#   and recovery, the HTTP API scenarios; and an HTML report of one
#   `pstorage bench --profile oltp-4k` run (docs/performance-oltp-4k.html).
#
# Usage: bench/report.sh BUILD_DIR          (a Release build, e.g. build/release)
# Env:   PSTORAGE_BENCH_DIR  directory for benchmark files (default /var/tmp, a disk)
#        REPORT_SECONDS      seconds per timed `pstorage bench` / fio run (default 5)
#        REPORT_MAX_SECONDS  time budget checked before each step (default 840)
# Installs what it lacks with apt-get (fio nbdkit redis-server redis-tools
# etcd-server jq zstd curl; `apt-get update` at most once). Every server it
# starts listens on 127.0.0.1 only and is stopped on exit, and only those.
# Takes about six minutes on the 2-core machines (plus apt-get when something
# is missing); every command has a timeout, and a step that would start after
# REPORT_MAX_SECONDS (default 840) fails the run instead.
set -euo pipefail

build=${1:?usage: bench/report.sh BUILD_DIR}
[ -d "$build" ] || { echo "report: FAILED: build directory $build not found" >&2; exit 1; }
build=$(cd "$build" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
bench_dir=${PSTORAGE_BENCH_DIR:-/var/tmp}
export PSTORAGE_BENCH_DIR=$bench_dir
secs=${REPORT_SECONDS:-5}
out=$root/docs/performance.md
html_name=performance-oltp-4k.html
start_s=$SECONDS

log() { echo "report: $*" >&2; }
die() { echo "report: FAILED: $*" >&2; exit 1; }
step_no=0
max_s=${REPORT_MAX_SECONDS:-840}
step() {
  step_no=$((step_no + 1))
  [ $((SECONDS - start_s)) -le "$max_s" ] || die "over the time budget ($max_s s) before: $*"
  log "[$step_no/13 $((SECONDS - start_s)) s] $*"
}

pstorage=$build/api/pstorage
waf_bin=$build/bench/pstorage-waf
flash_bin=$build/bench/flash_bench
reduction_bin=$build/bench/reduction_bench
journal_bin=$build/bench/journal_bench
figures_bin=$build/bench/pstorage-engine-figures
http_bin=$build/bench/pstorage-http-load
for bin in "$pstorage" "$waf_bin" "$flash_bin" "$reduction_bin" "$journal_bin" "$figures_bin" \
  "$http_bin"; do
  [ -x "$bin" ] || die "$bin not found; build first (make build-release)"
done
[[ "$secs" =~ ^[0-9]+$ ]] && [ "$secs" -ge 1 ] || die "REPORT_SECONDS must be a positive integer"
if ! [ -d "$bench_dir" ] || ! [ -w "$bench_dir" ]; then
  die "$bench_dir is not a writable directory"
fi

# --- Packages ---------------------------------------------------------------

# command:package pairs; apt-get runs only when a command is missing.
need=(fio:fio nbdkit:nbdkit redis-server:redis-server redis-cli:redis-tools etcd:etcd-server
  jq:jq zstd:zstd curl:curl)
install_missing() {
  local missing=() pair
  for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  [ "$(id -u)" -eq 0 ] || die "missing ${missing[*]}; run as root or install them with apt-get"
  log "installing ${missing[*]} with apt-get"
  # The server packages would start their system services on install: the
  # report starts its own, so keep invoke-rc.d from starting any while apt runs.
  local policy=/usr/sbin/policy-rc.d made_policy=
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && made_policy=1
  fi
  local rc=0
  timeout -k 10 300 apt-get update -q >&2 || rc=$?
  if [ "$rc" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive timeout -k 10 600 apt-get install -y -q \
      --no-install-recommends "${missing[@]}" >&2 || rc=$?
  fi
  [ -z "$made_policy" ] || rm -f "$policy"
  [ "$rc" -eq 0 ] || die "apt-get failed (exit $rc) installing ${missing[*]}"
  for pair in "${need[@]}"; do
    command -v "${pair%%:*}" >/dev/null || die "${pair%%:*} still missing after apt-get"
  done
}
install_missing
fio --enghelp 2>/dev/null | grep -w io_uring >/dev/null || die "this fio has no io_uring engine"

# --- Temporary files and the servers this script starts -----------------------

tmp=$(mktemp -d "$bench_dir/pstorage-report.XXXXXX")
server_pids=()
stop_pid() {  # stop_pid PID: SIGTERM, up to 10 s, then SIGKILL
  local pid=$1
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  for pid in "${server_pids[@]}"; do stop_pid "$pid"; done
  rm -rf "$tmp"
  rm -rf "$bench_dir"/pstorage-engine-figures-?
  rm -f "$bench_dir"/pstorage-flash-bench-*.img "$bench_dir/pstorage-journal-bench.log"
  [ "$rc" -eq 0 ] || log "exit status $rc; servers stopped, temporary files removed"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start_server NAME COMMAND...: runs COMMAND in the background (bounded by a
# timeout), output in $tmp/NAME.out and .err; sets server_pid.
start_server() {
  local name=$1
  shift
  : >"$tmp/$name.out"
  : >"$tmp/$name.err"
  timeout -k 10 1800 "$@" >>"$tmp/$name.out" 2>>"$tmp/$name.err" &
  server_pid=$!
  server_pids+=("$server_pid")
}
# stop_server PID: stops one server started above, and forgets it.
stop_server() {
  local pid=$1 keep=() p
  stop_pid "$pid"
  for p in "${server_pids[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  server_pids=("${keep[@]}")
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
# free_port: a port on 127.0.0.1 that nothing answers on, from a random start.
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 30000))
    port_open "$p" || { echo "$p"; return 0; }
  done
  die "no free port on 127.0.0.1"
}
# wait_port PORT PID NAME: until PORT answers, at most 60 s, or PID exits.
wait_port() {
  for _ in $(seq 600); do
    port_open "$1" && return 0
    kill -0 "$2" 2>/dev/null || { tail -n 20 "$tmp/$3.err" >&2; die "$3 exited at start"; }
    sleep 0.1
  done
  die "$3 did not listen on 127.0.0.1:$1 within 60 s"
}

# --- Formatting --------------------------------------------------------------

cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
cores=$(nproc)
machine="$cores cores, ${cpu:-unknown CPU}, Linux $(uname -r)"
# stamp: the line above each table, the machine and when it was measured.
stamp() { echo "*Measured on $machine, $(date -u '+%Y-%m-%d %H:%M UTC').*"; }
calc() { awk "BEGIN { printf \"$1\", ($2) }"; }  # calc FORMAT EXPRESSION
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
k() { awk -v x="$1" 'BEGIN { printf "%.1f", x / 1000 }'; }  # thousands
verdict() { awk -v x="$1" -v t="$2" 'BEGIN { print (x >= t ? "met" : "**missed**") }'; }

# Google Benchmark JSON -> "run_name aggregate key value" lines (aggregate is
# "-" for plain iterations), one per numeric field.
gbench_table() {
  jq -r '.benchmarks[] | (.run_name // .name) as $n | (.aggregate_name // "-") as $a
    | to_entries[] | select(.value | type == "number") | "\($n) \($a) \(.key) \(.value)"' "$1"
}
# gb FILE NAME AGGREGATE KEY: one value (0 when absent).
gb() {
  awk -v n="$2" -v a="$3" -v k="$4" '$1 == n && $2 == a && $3 == k { print $4; f = 1; exit }
    END { if (!f) print 0 }' "$1"
}

# gbench NAME BINARY ARGS...: one Google Benchmark run (5 minutes at most),
# its JSON in $tmp/NAME.json and its output in $tmp/NAME.log.
gbench() {
  local name=$1 bin=$2
  shift 2
  timeout -k 10 300 "$bin" "$@" --benchmark_out="$tmp/$name.json" --benchmark_out_format=json \
    >"$tmp/$name.log" 2>&1 || { tail -n 20 "$tmp/$name.log" >&2; die "${bin##*/} failed"; }
}

# --- 1. Primitive ceilings (reduction_bench) -------------------------------------

step "primitive ceilings and the engine's write and read path (reduction_bench, 3 repetitions)"
gbench reduction "$reduction_bin" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true
gbench_table "$tmp/reduction.json" >"$tmp/reduction.txt"
stamp_primitives=$(stamp)
rmed() { gb "$tmp/reduction.txt" "$1" median "${2:-items_per_second}"; }
for name in lz4_compress/text lz4_decompress/text zstd3_compress/text zstd3_decompress/text \
  xxh3_128/text memcmp_4k/text put/unique_text/batch:64 put/duplicate_verify/batch:64 \
  put/duplicate_noverify/batch:64 put/duplicate_verify_nocache/batch:64 put/zero/batch:64 \
  get/cached get/uncached; do
  [ "$(rmed "$name")" != 0 ] || die "reduction_bench: no median for $name in its JSON output"
done

# --- 5. Flash (pstorage-waf, flash_bench) ----------------------------------------

step "write amplification vs Desnoyers' model (pstorage-waf)"
timeout -k 10 300 "$waf_bin" --markdown >"$tmp/waf.md" 2>"$tmp/waf.err" \
  || { tail -n 20 "$tmp/waf.err" >&2; die "pstorage-waf failed"; }
stamp_waf=$(stamp)

step "flash device throughput (flash_bench)"
gbench flash "$flash_bin" --benchmark_min_time=0.5
gbench_table "$tmp/flash.json" | sed 's|/real_time | |' >"$tmp/flash.txt"
stamp_flash=$(stamp)

# --- Journal, memory and recovery --------------------------------------------------

step "journal group commit (journal_bench, 3 repetitions)"
gbench journal "$journal_bin" --benchmark_repetitions=3 \
  --benchmark_report_aggregates_only=true
gbench_table "$tmp/journal.json" >"$tmp/journal.txt"
stamp_journal=$(stamp)

step "engine memory and recovery (pstorage-engine-figures --part memory)"
timeout -k 10 420 "$figures_bin" --markdown --part memory >"$tmp/memory.md" 2>"$tmp/memory.err" \
  || { tail -n 20 "$tmp/memory.err" >&2; die "pstorage-engine-figures --part memory failed"; }
stamp_memory=$(stamp)

# --- 4. Data reduction on this machine's files -------------------------------------

step "data reduction on three data sets (pstorage-engine-figures --part reduction, zstd -3)"
dataset_mib=192
# sized_files DIR|FILE...: "size path" of the regular non-empty files, in
# sorted path order.
sized_files() {
  timeout -k 10 120 find "$@" -maxdepth 64 -type f -size +0 -readable -printf '%s %p\n' \
    2>/dev/null | LC_ALL=C sort -k2
}
# cap_list CAP_MIB: the paths of the "size path" lines, each file rounded up
# to 4 KiB, until CAP_MIB is full; files over 32 MiB are left out, so that
# no single binary dominates a set. The engine and zstd below read exactly
# these files (pstorage-engine-figures gets a higher cap).
cap_list() {
  awk -v cap=$(($1 << 20)) 'full { next }  # reads on: the writer must not get SIGPIPE
    { r = int(($1 + 4095) / 4096) * 4096
      if (r > 32 * 1048576) next
      if (total + r > cap) { full = 1; next }
      total += r; print substr($0, length($1) + 2) }'
}
sized_files /usr/bin /usr/lib/x86_64-linux-gnu/*.so* >"$tmp/binaries.sized"
sized_files /usr/share/doc /usr/include >"$tmp/text.sized"
cap_list "$dataset_mib" <"$tmp/binaries.sized" >"$tmp/set-binaries.list"
cap_list "$dataset_mib" <"$tmp/text.sized" >"$tmp/set-text.list"
# The mix: 64 MiB of text and 64 MiB of libraries, other files than above
# (from the end of the sorted lists), then the first half of each again: a
# third of it repeats earlier files, as copies of the same files do on a
# shared volume.
tac "$tmp/text.sized" | cap_list 64 >"$tmp/mix-text"
grep '\.so' "$tmp/binaries.sized" | tac | cap_list 64 >"$tmp/mix-libs"
{
  cat "$tmp/mix-text" "$tmp/mix-libs"
  head -n $(($(wc -l <"$tmp/mix-text") / 2)) "$tmp/mix-text"
  head -n $(($(wc -l <"$tmp/mix-libs") / 2)) "$tmp/mix-libs"
} >"$tmp/set-mix.list"
datasets=(binaries text mix)
for set in "${datasets[@]}"; do
  [ -s "$tmp/set-$set.list" ] || die "data set $set: no files found"
  log "  $set: engine and offline ideal"
  timeout -k 10 300 "$figures_bin" --markdown --part reduction --copies 1 \
    --dataset-list "$tmp/set-$set.list" --dataset-mib 1024 --summary "$tmp/set-$set.kv" \
    >"$tmp/set-$set.md" 2>"$tmp/set-$set.err" \
    || { tail -n 20 "$tmp/set-$set.err" >&2; die "pstorage-engine-figures ($set) failed"; }
  log "  $set: zstd -3 of the concatenated files"
  # shellcheck disable=SC2016
  zbytes=$(timeout -k 10 300 bash -o pipefail -c \
    'tr "\n" "\0" <"$1" | xargs -0 cat | zstd -3 -q -T1 -c | wc -c' _ "$tmp/set-$set.list") \
    || die "zstd -3 of data set $set failed"
  echo "zstd_bytes $zbytes" >>"$tmp/set-$set.kv"
done
stamp_reduction=$(stamp)
kv() { awk -v k="$2" '$1 == k { print $2; f = 1; exit } END { if (!f) print 0 }' "$1"; }

# --- The servers: pstorage serve (REST + NBD), nbdkit, redis, etcd -----------------

step "starting pstorage serve, nbdkit, redis-server and etcd on 127.0.0.1"
api_key=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')
[ ${#api_key} -eq 48 ] || die "could not generate an API key"
mkdir -p "$tmp/serve"
cat >"$tmp/serve/config.json" <<EOF
{
  "version": 1,
  "server_port": 0,
  "bind_address": "127.0.0.1",
  "nbd_port": 0,
  "log_level": "warn",
  "rate_limit": {"enabled": false},
  "default": {"authentication": {"enabled": true, "api_key": "$api_key"}},
  "array": {"data_dir": "data", "flash_capacity_bytes": 2147483648},
  "projects": [
    {"id": "bench", "storage": {"on_disk": true}, "authentication": {"enabled": false}}
  ]
}
EOF
chmod 600 "$tmp/serve/config.json"
start_server serve "$pstorage" serve --config "$tmp/serve/config.json"
serve_pid=$server_pid
url= nbd_port=
for _ in $(seq 600); do
  url=$(sed -n 's|^listening on \(http://127\.0\.0\.1:[0-9][0-9]*\)$|\1|p' "$tmp/serve.out")
  nbd_port=$(sed -n 's|^nbd listening on 127\.0\.0\.1:\([0-9][0-9]*\)$|\1|p' "$tmp/serve.out")
  [ -n "$url" ] && [ -n "$nbd_port" ] && break
  kill -0 "$serve_pid" 2>/dev/null || { tail -n 20 "$tmp/serve.err" >&2; die "pstorage serve exited"; }
  sleep 0.1
done
[ -n "$url" ] && [ -n "$nbd_port" ] || die "pstorage serve did not report its ports within 60 s"
log "  pstorage serve at $url, NBD on port $nbd_port"

# real_pid PID: the server under a `timeout` that start_server put around it.
real_pid() {
  local parent=$1 kids
  kids=$(cat "/proc/$parent/task/$parent/children" 2>/dev/null || true)
  [ -n "$kids" ] || kids=$(pgrep -P "$parent" 2>/dev/null || true)
  [ -n "$kids" ] || die "no process under pid $parent"
  echo "$kids" | tr " " "\n" | grep -m1 .
}

kit_port=$(free_port)
start_server nbdkit nbdkit --foreground --exit-with-parent -i 127.0.0.1 -p "$kit_port" memory 1G
kit_pid=$server_pid
wait_port "$kit_port" "$kit_pid" nbdkit

# redis_start NAME FSYNC: a redis-server with an append-only file in $tmp;
# sets redis_port and server_pid.
redis_start() {
  redis_port=$(free_port)
  mkdir -p "$tmp/$1"
  start_server "$1" redis-server --bind 127.0.0.1 --port "$redis_port" --protected-mode yes \
    --dir "$tmp/$1" --save '' --appendonly yes --appendfsync "$2" --daemonize no \
    --logfile ''
  wait_port "$redis_port" "$server_pid" "$1"
}
redis_start redis-always always
redis_always_port=$redis_port redis_always_pid=$server_pid
redis_start redis-everysec everysec
redis_sec_port=$redis_port redis_sec_pid=$server_pid

etcd_port=$(free_port)
etcd_peer=$(free_port)
start_server etcd etcd --name report --data-dir "$tmp/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" \
  --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "report=http://127.0.0.1:$etcd_peer" --log-level warn
etcd_pid=$server_pid
wait_port "$etcd_port" "$etcd_pid" etcd
for _ in $(seq 100); do
  timeout 5 curl -sf "http://127.0.0.1:$etcd_port/health" | grep true >/dev/null && break
  sleep 0.2
done
log "  nbdkit :$kit_port, redis :$redis_always_port (always) :$redis_sec_port (everysec)," \
  "etcd :$etcd_port"

# pb NAME ARGS...: one `pstorage bench` run into $tmp/pb/NAME.json.
mkdir -p "$tmp/pb"
pb() {
  local name=$1
  shift
  log "  pstorage bench $name"
  PSTORAGE_API_KEY=$api_key timeout -k 10 $((secs * 4 + 180)) "$pstorage" bench --quiet \
    --duration "$secs" --json "$tmp/pb/$name.json" "$@" >"$tmp/pb/$name.out" 2>&1 \
    || { tail -n 20 "$tmp/pb/$name.out" >&2; die "pstorage bench $name failed"; }
  [ "$(jq -r '.complete' "$tmp/pb/$name.json")" = true ] \
    || die "pstorage bench $name did not complete: $(jq -r '.error' "$tmp/pb/$name.json")"
}
# pv NAME JQ_PATH: one number from a run (0 when absent).
pv() { jq -r "($2) // 0" "$tmp/pb/$1.json"; }

# --- 2. The engine through REST and NBD ------------------------------------------------

step "the engine in-process, through REST and through NBD (pstorage bench, ${secs} s per run)"
data=(--dedupe-ratio 2 --compress-ratio 2 --zero-percent 10)
random=(--dedupe-ratio 1 --compress-ratio 1 --zero-percent 0)
workloads=(w4k_qd1 w4k_qd16 r4k_qd16 w1m_qd4 w4k_qd16_random)
wl_args() {
  case $1 in
    w4k_qd1) echo "--block-size 4k --pattern random --read-percent 0 --queue-depth 1" ;;
    w4k_qd16 | w4k_qd16_random)
      echo "--block-size 4k --pattern random --read-percent 0 --queue-depth 16" ;;
    r4k_qd16) echo "--block-size 4k --pattern random --read-percent 100 --queue-depth 16" ;;
    w1m_qd4) echo "--block-size 1m --pattern sequential --read-percent 0 --queue-depth 4" ;;
  esac
}
wl_label() {
  case $1 in
    w4k_qd1) echo "4 KiB random write, QD1" ;;
    w4k_qd16) echo "4 KiB random write, QD16" ;;
    r4k_qd16) echo "4 KiB random read, QD16" ;;
    w1m_qd4) echo "1 MiB sequential write, QD4" ;;
    w4k_qd16_random) echo "4 KiB random write, QD16, random data" ;;
  esac
}
wl_data() { case $1 in *_random) echo "${random[*]}" ;; *) echo "${data[*]}" ;; esac; }
for wl in "${workloads[@]}"; do
  # shellcheck disable=SC2046
  {
    pb "engine-$wl" --target engine --data-dir "$tmp/engine-$wl" --working-set 256m \
      $(wl_args "$wl") $(wl_data "$wl")
    rm -rf "$tmp/engine-$wl"
    pb "rest-$wl" --target rest --url "$url" --working-set 256m $(wl_args "$wl") $(wl_data "$wl")
    pb "nbd-$wl" --target nbd --url "$url" --nbd-url "nbd://127.0.0.1:$nbd_port" \
      --working-set 256m $(wl_args "$wl") $(wl_data "$wl")
  }
done
stamp_protocols=$(stamp)

# --- 3. Peers ----------------------------------------------------------------------------

step "peers: nbdkit memory (same NBD client), fio io_uring on a plain file"
peer_workloads=(w4k_qd1 w4k_qd16 r4k_qd16 w1m_qd4)
for wl in "${peer_workloads[@]}"; do
  # shellcheck disable=SC2046
  pb "nbdkit-$wl" --target nbd --nbd-url "nbd://127.0.0.1:$kit_port" --working-set 256m \
    --server-pid "$(real_pid "$kit_pid")" $(wl_args "$wl") $(wl_data "$wl")
done
stop_server "$kit_pid"
fio_args() {
  case $1 in
    w4k_qd1) echo "--rw=randwrite --bs=4k --iodepth=1" ;;
    w4k_qd16) echo "--rw=randwrite --bs=4k --iodepth=16" ;;
    r4k_qd16) echo "--rw=randread --bs=4k --iodepth=16" ;;
    w1m_qd4) echo "--rw=write --bs=1M --iodepth=4" ;;
  esac
}
fio_version=$(fio --version | sed 's/^fio-//')
for wl in "${peer_workloads[@]}"; do
  log "  fio $wl"
  # shellcheck disable=SC2046
  timeout -k 10 $((secs * 4 + 120)) fio --name="$wl" --ioengine=io_uring --direct=1 \
    --filename="$tmp/fio.img" --size=256M --runtime="$secs" --time_based --ramp_time=1 \
    --refill_buffers $(fio_args "$wl") --output-format=json >"$tmp/fio-$wl.json" \
    2>"$tmp/fio-$wl.err" || { tail -n 20 "$tmp/fio-$wl.err" >&2; die "fio $wl failed"; }
done
rm -f "$tmp/fio.img"
# fv WORKLOAD FIELD: iops, mbps (10^6 B/s) or p99_us of fio's read or write side.
fv() {
  local side=write
  [[ $1 == r* ]] && side=read
  case $2 in
    iops) jq -r ".jobs[0].$side.iops" "$tmp/fio-$1.json" ;;
    mbps) jq -r ".jobs[0].$side.bw_bytes / 1e6" "$tmp/fio-$1.json" ;;
    p99_us) jq -r ".jobs[0].$side.clat_ns.percentile[\"99.000000\"] / 1000" "$tmp/fio-$1.json" ;;
  esac
}
stamp_block_peers=$(stamp)

step "peers: KV (kv-small) on the engine, REST, redis-server and etcd"
pb kv-engine --target engine --profile kv-small --data-dir "$tmp/engine-kv"
rm -rf "$tmp/engine-kv"
pb kv-rest --target rest --profile kv-small --url "$url"
pb kv-redis-always --target redis --profile kv-small --url "redis://127.0.0.1:$redis_always_port" \
  --server-pid "$(real_pid "$redis_always_pid")"
pb kv-redis-everysec --target redis --profile kv-small --url "redis://127.0.0.1:$redis_sec_port" \
  --server-pid "$(real_pid "$redis_sec_pid")"
pb kv-etcd --target etcd --profile kv-small --url "http://127.0.0.1:$etcd_port" \
  --server-pid "$(real_pid "$etcd_pid")"
stamp_kv=$(stamp)
redis_version=$(redis-server --version | sed -n 's/.*v=\([0-9.]*\).*/\1/p')
etcd_version=$(etcd --version 2>/dev/null | sed -n 's/^etcd Version: //p')
nbdkit_version=$(nbdkit --version 2>/dev/null | sed -n 1p)
stop_server "$redis_always_pid"
stop_server "$redis_sec_pid"
stop_server "$etcd_pid"

step "HTML report of one run (pstorage bench --profile oltp-4k --target engine)"
pb oltp-4k --target engine --profile oltp-4k --data-dir "$tmp/engine-oltp" \
  --html "$tmp/$html_name"
rm -rf "$tmp/engine-oltp"
stamp_oltp=$(date -u '+%Y-%m-%d %H:%M UTC')

log "  stopping pstorage serve"
stop_server "$serve_pid"

step "HTTP API scenarios (scripts/http-bench.sh, 3 s per scenario)"
http_rc=0
PSTORAGE_HTTP_BENCH_ARGS="--seconds 3" timeout -k 10 300 \
  "$root/scripts/http-bench.sh" "$build" "$tmp/http.md" 2>"$tmp/http.err" || http_rc=$?
if [ "$http_rc" -ne 0 ] && [ "$http_rc" -ne 3 ]; then
  tail -n 20 "$tmp/http.err" >&2
  die "scripts/http-bench.sh failed (exit $http_rc)"
fi

# --- The document ----------------------------------------------------------------------


step "writing $out"

# Section 1: one row of the primitives table; NAME LABEL [COUNTER].
lz4_ips=$(rmed lz4_compress/text)
prim_row() {
  local ips cv note=""
  ips=$(rmed "$1")
  cv=$(gb "$tmp/reduction.txt" "$1" cv items_per_second)
  [ -z "${3:-}" ] || note="$(calc %.2f "$(rmed "$1" "$3")")x"
  echo "| $2 | $(ratio "$ips" "$lz4_ips") | $(calc %.0f "1e9 / $ips") | $(k "$ips") |" \
    "$(calc %.0f "$ips * 4096 / 1048576") | $(calc %.1f "100 * $cv") | $note |"
}
# Section 1: one row of the engine-path table; LABEL ENGINE CEILING_LABEL CEILING_IPS TARGET.
path_row() {
  local ips r target=$5 v=""
  ips=$(rmed "$2")
  r=$(calc %.3f "$ips / $4")
  [ "$target" = - ] || v=$(verdict "$r" "$target")
  [ "$target" = - ] && target=none || target=">= $target"
  echo "| $1 | $3 | **$r** | $target $v | $(calc %.0f "1e9 / $ips") |" \
    "$(calc %.0f "1e9 / $4") | $(k "$ips") |"
}
xxh_ips=$(rmed xxh3_128/text)
memcmp_ips=$(rmed memcmp_4k/text)
lz4d_ips=$(rmed lz4_decompress/text)
# Hash then compress, one core: the serial ceiling of a unique block.
hash_lz4_ips=$(calc %.1f "1 / (1 / $xxh_ips + 1 / $lz4_ips)")
hash_lz4d_ips=$(calc %.1f "1 / (1 / $xxh_ips + 1 / $lz4d_ips)")

# Sections 2 and 3: one run's figures.
iops() { calc %.0f "$(pv "$1" .total.iops)"; }
mbps() { calc %.1f "$(pv "$1" .total.mbps)"; }
p99us() { calc %.0f "$(pv "$1" .total.latency_ns.p99) / 1000"; }
p50us() { calc %.0f "$(pv "$1" .total.latency_ns.p50) / 1000"; }
# CPU microseconds per operation, client + server (the server's when known).
cpu_op() {
  local c s n
  c=$(pv "$1" .client_cpu_s) s=$(pv "$1" .server_cpu_s) n=$(pv "$1" .total.ops)
  awk -v c="$c" -v s="$s" -v n="$n" 'BEGIN { if (n <= 0) { print "-"; exit }
    printf "%.1f", 1e6 * (c + (s > 0 ? s : 0)) / n }'
}
protocol_row() {
  local e=engine-$1 r=rest-$1 n=nbd-$1
  echo "| $(wl_label "$1") | **$(ratio "$(iops "$r")" "$(iops "$e")")** |" \
    "**$(ratio "$(iops "$n")" "$(iops "$e")")** | $(iops "$e") | $(iops "$r") | $(iops "$n") |" \
    "$(mbps "$e") / $(mbps "$r") / $(mbps "$n") | $(p99us "$e") / $(p99us "$r") / $(p99us "$n") |" \
    "$(cpu_op "$e") / $(cpu_op "$r") / $(cpu_op "$n") |"
}
block_peer_row() {
  local n=nbd-$1 kit=nbdkit-$1 f
  f=$(calc %.0f "$(fv "$1" iops)")
  echo "| $(wl_label "$1") | **$(ratio "$(iops "$n")" "$(iops "$kit")")** |" \
    "**$(ratio "$(iops "$n")" "$f")** | $(ratio "$(iops "$kit")" "$f") |" \
    "$(iops "$n") | $(iops "$kit") | $f |" \
    "$(mbps "$n") / $(mbps "$kit") / $(calc %.1f "$(fv "$1" mbps)") |" \
    "$(p99us "$n") / $(p99us "$kit") / $(calc %.0f "$(fv "$1" p99_us)") |"
}
# CPU microseconds per operation of one side (.client_cpu_s or .server_cpu_s), "-" unknown.
cpu_side() {
  local c n
  c=$(pv "$1" "$2") n=$(pv "$1" .total.ops)
  awk -v c="$c" -v n="$n" 'BEGIN { if (n > 0 && c >= 0) printf "%.1f", 1e6 * c / n; else print "-" }'
}
kv_row() {
  echo "| $2 | **$(ratio "$(iops "$1")" "$(iops kv-redis-always)")** |" \
    "$(ratio "$(iops "$1")" "$(iops kv-etcd)") | $(iops "$1") |" \
    "$(calc %.0f "$(pv "$1" .writes.iops)") | $(calc %.0f "$(pv "$1" .reads.iops)") |" \
    "$(p50us "$1") | $(p99us "$1") | $(cpu_side "$1" .client_cpu_s) |" \
    "$(cpu_side "$1" .server_cpu_s) | $3 |"
}

# Section 4: space ratios over the files' own bytes, so that the engine, the
# offline ideal and zstd of the whole set divide the same number.
set_row() {
  local f=$tmp/set-$1.kv fb eng ideal z deep dup uniq
  fb=$(kv "$f" file_bytes) eng=$(kv "$f" engine_physical_bytes) ideal=$(kv "$f" ideal_lz4_bytes)
  z=$(kv "$f" zstd_bytes) deep=$(kv "$f" deep_physical_bytes)
  dup=$(kv "$f" duplicate_blocks) uniq=$(kv "$f" unique_blocks)
  echo "| $2 | **$(ratio "$ideal" "$eng")** | **$(ratio "$z" "$eng")** |" \
    "$(calc %.2f "$fb / $eng")x | $(calc %.2f "$fb / $ideal")x | $(calc %.2f "$fb / $z")x |" \
    "$(calc %.2f "$fb / $deep")x | $(kv "$f" files) | $(calc %.1f "$fb / 1048576") |" \
    "$(calc %.0f "100 * $dup / ($dup + $uniq)") | $(calc %.1f "$eng / 1048576") |" \
    "$(calc %.1f "$ideal / 1048576") | $(calc %.1f "$z / 1048576") |"
}
set_desc() { echo "$(wc -l <"$tmp/set-$1.list") files"; }

# Section 5 and the rest: Google Benchmark rows.
fitems() { gb "$tmp/flash.txt" "$1" - items_per_second; }
fbytes() { gb "$tmp/flash.txt" "$1" - bytes_per_second; }
flash_row() {
  local w=device_write/$1/batch:$2 r=device_read/$1/batch:$2
  echo "| $1 | $2 | $(k "$(fitems "$w")") | $(k "$(fitems "$r")") |" \
    "$(calc %.0f "$(fbytes "$w") / 1048576") | $(calc %.0f "$(fbytes "$r") / 1048576") |"
}
journal_row() {
  local n=journal_append/real_time/threads:$1 rps rps1 per_sync
  rps=$(gb "$tmp/journal.txt" "$n" median records/s)
  rps1=$(gb "$tmp/journal.txt" journal_append/real_time/threads:1 median records/s)
  per_sync=$(gb "$tmp/journal.txt" "$n" median records_per_sync)
  echo "| $1 | $(ratio "$rps" "$rps1") | $(calc %.0f "$rps") | $(calc %.2f "$per_sync") |" \
    "$(calc %.0f "$per_sync > 0 ? $rps / $per_sync : 0") |"
}
waf_range=$(awk -F'|' 'NR > 2 { r = $5 + 0; if (NR == 3 || r < min) min = r; if (r > max) max = r }
  END { printf "%.2f to %.2f", min, max }' "$tmp/waf.md")
fio_w16=$(calc %.0f "$(fv w4k_qd16 iops)")
dev_w32=$(fitems device_write/file/batch:32)

{
  cat <<EOF
# Performance

<!-- Generated by bench/report.sh: do not edit by hand. -->
**Generated by \`bench/report.sh\`; do not edit by hand.** Regenerate with
\`make bench\` (a Release build, then \`bash bench/report.sh build/release\`);
one run stays under 15 minutes on a 2-core machine and rewrites this file and
[performance-oltp-4k.html]($html_name).

This run: $machine; $(date -u '+%Y-%m-%d %H:%M UTC'); it took $((SECONDS - start_s)) s;
benchmark files in \`$bench_dir\` ($(df -T "$bench_dir" | awk 'NR == 2 { print $2 }')). These
machines are noisy by 20-50 % from run to run, so every table gives ratios
against a ceiling or a peer measured in the same run first, and the absolute
numbers they come from second.

## Key figures

$(stamp)

| figure | ratio | from |
|---|---:|---|
| unique 4 KiB block: \`ContentStore::Put\` / LZ4 compress alone | $(ratio "$(rmed put/unique_text/batch:64)" "$lz4_ips") | section 1 |
| duplicate block (verify off): Put / XXH3-128 alone | $(ratio "$(rmed put/duplicate_noverify/batch:64)" "$xxh_ips") | section 1 |
| 4 KiB random write QD16: REST / in-process engine | $(ratio "$(iops rest-w4k_qd16)" "$(iops engine-w4k_qd16)") | section 2 |
| 4 KiB random write QD16: NBD / in-process engine | $(ratio "$(iops nbd-w4k_qd16)" "$(iops engine-w4k_qd16)") | section 2 |
| 4 KiB random write QD16: PStorage NBD / nbdkit memory | $(ratio "$(iops nbd-w4k_qd16)" "$(iops nbdkit-w4k_qd16)") | section 3 |
| 4 KiB random write QD16: PStorage NBD / fio on the raw file | $(ratio "$(iops nbd-w4k_qd16)" "$fio_w16") | section 3 |
| kv-small: PStorage REST / redis (appendfsync always) | $(ratio "$(iops kv-rest)" "$(iops kv-redis-always)") | section 3 |
| kv-small: PStorage REST / etcd | $(ratio "$(iops kv-rest)" "$(iops kv-etcd)") | section 3 |
| mixed files: engine space / zstd -3 of the whole set | $(ratio "$(kv "$tmp/set-mix.kv" zstd_bytes)" "$(kv "$tmp/set-mix.kv" engine_physical_bytes)") | section 4 |
| flash WAF: measured / Desnoyers' greedy model | $waf_range | section 5 |

## 1. Primitive ceilings on 4 KiB blocks

\`reduction_bench\` (Google Benchmark, 3 repetitions, medians; cv is the
spread between them), one core, on the same pre-generated 4 KiB blocks: 16 MiB
of log lines (timestamps, ids, paths). The primitives are the library calls
the engine is built from; the engine rows call \`ContentStore::Put\` (batches
of 64 blocks) and \`ContentStore::Get\` (internal \`engine/content_store.h\`)
on a FlashDevice over the memory medium, so they are the CPU cost of the
data path without disk, journal or block map. One item = one 4 KiB block.

$stamp_primitives

| primitive | rate / LZ4 compress | ns per block | kblocks/s | MiB/s | cv % | compression |
|---|---:|---:|---:|---:|---:|---:|
$(prim_row xxh3_128/text "XXH3-128 (\`XXH3_128bits_dispatch\`)")
$(prim_row lz4_compress/text "LZ4 compress (\`LZ4_compress_default\`)" lz4_ratio)
$(prim_row lz4_decompress/text "LZ4 decompress (\`LZ4_decompress_safe\`)")
$(prim_row zstd3_compress/text "Zstd level 3 compress (\`ZSTD_compressCCtx\`)" zstd_ratio)
$(prim_row zstd3_decompress/text "Zstd decompress (\`ZSTD_decompressDCtx\`)")
$(prim_row memcmp_4k/text "memcmp of two equal 4 KiB blocks")

The engine's paths as a ratio of the primitive each one cannot avoid
(engine rate / ceiling rate; 1.00 = the engine adds nothing):

$stamp_primitives

| engine path | ceiling | engine / ceiling | target | engine ns/block | ceiling ns/block | engine kblocks/s |
|---|---|---:|---|---:|---:|---:|
$(path_row "Put, new block: pattern check, hash, index miss, LZ4, packing, device write" \
  put/unique_text/batch:64 "LZ4 compress" "$lz4_ips" 0.80)
$(path_row "Put, new block (the same)" put/unique_text/batch:64 "XXH3-128 + LZ4 compress" \
  "$hash_lz4_ips" -)
$(path_row "Put, stored block, verify off: hash, index hit, reference" \
  put/duplicate_noverify/batch:64 "XXH3-128" "$xxh_ips" 0.50)
$(path_row "Put, stored block, verify on (default): + compare with the cached copy" \
  put/duplicate_verify/batch:64 "XXH3-128" "$xxh_ips" -)
$(path_row "Put, stored block, verify on, no cache: + flash read and decode" \
  put/duplicate_verify_nocache/batch:64 "XXH3-128 + LZ4 decompress" "$hash_lz4d_ips" -)
$(path_row "Put, zero block: pattern check only" put/zero/batch:64 "memcmp 4 KiB" "$memcmp_ips" 0.50)
$(path_row "Get, block in the DRAM cache: copy out" get/cached "memcmp 4 KiB" "$memcmp_ips" -)
$(path_row "Get, no cache: flash read, LZ4 decode, hash check" get/uncached \
  "LZ4 decompress" "$lz4d_ips" -)

- A new block costs LZ4 plus everything around it; the target leaves 25 %
  on top of LZ4 for the rest. On these blocks zstd level 3 takes
  $(calc %.1f "$lz4_ips / $(rmed zstd3_compress/text)") times LZ4's time for
  $(calc %.2f "$(rmed zstd3_compress/text zstd_ratio) / $(rmed lz4_compress/text lz4_ratio)") times
  its ratio, which is why the engine compresses with LZ4 inline and leaves
  zstd to the background \`DeepReduce\`.
- A duplicate costs the hash, one index probe and a reference count; with
  verify on (the default) it also compares the block with the cached copy.
- The uncached read decodes the fragment and checks its hash: its ceiling
  is LZ4 decompress alone, so above 1 is impossible and the gap is the
  flash read, the hash and the bookkeeping.

## 2. The engine through REST and NBD

\`pstorage bench\`, the same workload against three targets: \`engine\` (the
block engine in this process, on files in \`$bench_dir\`: the ceiling), \`rest\`
(HTTP to a \`pstorage serve\` of this build on 127.0.0.1, authentication on)
and \`nbd\` (the same server's NBD export, through the tool's own NBD client).
Each run: a new 256 MiB volume (prefilled for the read run), ${secs} s timed,
data made with \`--dedupe-ratio 2 --compress-ratio 2 --zero-percent 10\`
except the last row (\`--dedupe-ratio 1 --compress-ratio 1 --zero-percent 0\`:
random, incompressible). QD = queue depth, I/Os in flight. The server has
2 GiB of flash in \`$bench_dir\`; the client and the server share the 2 cores,
so the protocol's CPU shows up twice: as its own cost and as cores taken
from the engine.

$stamp_protocols

| workload | rest / engine | nbd / engine | engine IOPS | rest IOPS | nbd IOPS | MB/s engine / rest / nbd | p99 µs engine / rest / nbd | CPU µs per op engine / rest / nbd |
|---|---:|---:|---:|---:|---:|---|---|---|
$(for wl in "${workloads[@]}"; do protocol_row "$wl"; done)

CPU per op is the client's user + system time plus the server's
(\`process_cpu_seconds_total\` from its metrics) over the timed window,
divided by the operations; for \`engine\` it is the one process. Data
reduction the engine reported for its own runs: $(for wl in w4k_qd16 w1m_qd4 w4k_qd16_random; do
  printf '%s %sx; ' "$(wl_label "$wl")" "$(calc %.2f "$(pv "engine-$wl" .reduction.data_reduction_ratio)")"
done | sed 's/; $//').

## 3. Peers side by side

### Block: nbdkit memory and fio on the raw file

The same \`pstorage bench\` NBD client and workloads as in section 2 against
\`nbdkit memory 1G\` ($nbdkit_version), an NBD server that keeps blocks in
RAM and reduces nothing; and fio $fio_version with \`ioengine=io_uring
direct=1\` on a 256 MiB plain file in \`$bench_dir\` (\`--refill_buffers\`,
1 s ramp, ${secs} s timed): the disk's own ceiling, with no server, no
reduction and no copy. PStorage's NBD figures are section 2's runs.

$stamp_block_peers

| workload | PStorage NBD / nbdkit | PStorage NBD / fio file | nbdkit / fio file | PStorage NBD IOPS | nbdkit IOPS | fio IOPS | MB/s PStorage / nbdkit / fio | p99 µs PStorage / nbdkit / fio |
|---|---:|---:|---:|---:|---:|---:|---|---|
$(for wl in "${peer_workloads[@]}"; do block_peer_row "$wl"; done)

### Key-value: redis-server and etcd

\`pstorage bench --profile kv-small\` against each store, ${secs} s each:
PStorage's in-process KV store (\`--target engine\`), PStorage's KV API over
REST (the server's project \`bench\`, stored on disk: every acknowledged write
is fdatasync'ed, concurrent writers share syncs), redis-server
$redis_version (\`--save '' --appendonly yes\`, once with \`--appendfsync
always\`, durable like PStorage, once with \`everysec\`, which can lose the
last second of writes) and etcd $etcd_version (one member, WAL fsync on every
commit, driven through its JSON gateway \`/v3/kv/put\` and \`/v3/kv/range\`).
All on 127.0.0.1 with data in \`$bench_dir\`.

$stamp_kv

| store | vs redis (always) | vs etcd | ops/s | writes/s | reads/s | p50 µs | p99 µs | client CPU µs/op | server CPU µs/op | durability |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
$(kv_row kv-engine "PStorage KV, in-process" "on disk, every put synced before it returns")
$(kv_row kv-rest "PStorage KV over REST" "fdatasync per acknowledged write (group commit)")
$(kv_row kv-redis-always "redis-server, appendfsync always" "fsync per write batch")
$(kv_row kv-redis-everysec "redis-server, appendfsync everysec" "up to 1 s of writes lost on a crash")
$(kv_row kv-etcd "etcd, JSON gateway" "WAL fsync per commit")

CPU per operation over the timed window: the client's user + system time,
and the server's (\`process_cpu_seconds_total\` of \`pstorage serve\`; for
redis and etcd their process's time from /proc, \`--server-pid\`; the
in-process store's CPU is all in the client column).

## 4. Data reduction on this machine's files

Three data sets of this machine's files, each file starting on a 4 KiB
boundary (its last block's tail zero, as a file system lays files out),
written once through \`Engine::Write\` (1 MiB writes, default options: LZ4
inline, verify on) by \`pstorage-engine-figures --part reduction\`:

- **binaries**: \`/usr/bin\` and \`/usr/lib/x86_64-linux-gnu/*.so*\` ($(set_desc binaries));
- **text**: \`/usr/share/doc\` and \`/usr/include\` ($(set_desc text));
- **mix**: 64 MiB of text files and 64 MiB of shared libraries from the
  other end of those lists, then the first half of each of these two file
  lists again, so part of it repeats files written earlier (the duplicate
  blocks column; $(wc -l <"$tmp/set-mix.list") files).

Files over 32 MiB are left out and each set stops at $dataset_mib MiB. Every
column divides the files' own bytes by what each method stores, so they
compare directly: **engine** = flash pages in use after the writes
(\`physical_bytes_used\`); **ideal** = 4 KiB dedupe plus per-block LZ4 with
perfect packing, computed offline over the same blocks (zero blocks free,
each unique block min(LZ4 size, 4096) bytes); **zstd -3** = the files
concatenated in the same order through \`zstd -3 -T1\` (one stream, so it also
finds redundancy across block boundaries, but only within its 2 MiB window);
**DeepReduce** = the engine after its background recompression of every
fragment with zstd level $(kv "$tmp/set-mix.kv" zstd_level).

$stamp_reduction

| data set | engine / ideal | engine / zstd -3 | engine | ideal | zstd -3 | DeepReduce | files | MiB of files | duplicate blocks % | engine MiB | ideal MiB | zstd MiB |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(for set in "${datasets[@]}"; do set_row "$set" "$set"; done)

- **engine / ideal** is what packing fragments into 4 KiB flash pages and
  the raw threshold (blocks that LZ4 shrinks by less than 256 bytes are
  stored raw) cost: 1.00 = nothing lost.
- **engine / zstd -3** above 1 means the engine stores the set in less space
  than one zstd stream of it; dedupe finds repeats at any distance, zstd's
  window does not, while zstd's stronger entropy coding wins on unique data.
- Write rates through \`Engine::Write\` (unique data, verify on):
  $(for set in "${datasets[@]}"; do printf '%s %s MiB/s; ' "$set" "$(calc %.0f "$(kv "$tmp/set-$set.kv" copy1_mibs)")"; done | sed 's/; $//').

## 5. Flash: write amplification and throughput

\`pstorage-waf --markdown\`: a device on the memory medium with 512 MiB of
logical capacity, 64 pages per erase block and background GC disabled, so
every GC step is a foreground one. For each fill level, the first fill x
capacity pages are written once in order, then overwritten uniformly at random
4x (warm-up), then 4x more while counting; **measured WAF** = NAND pages
programmed / host pages written in that last window (GC copies included).
**Model WAF** is the published analytic figure for greedy GC under uniform
random writes: P. Desnoyers, "Analytic Modeling of SSD Write Performance",
SYSTOR 2012 (ACM Transactions on Storage 10(2), 2014),
WA = alpha / (alpha + W0(-alpha e^-alpha)), alpha = (1 + OP) / fill, W0 the
principal branch of Lambert W. Cost-benefit rows are compared with the same
number: under uniform random writes all pages age alike, so cost-benefit has
nothing to gain over greedy.

$stamp_waf

$(cat "$tmp/waf.md")

measured/model ranged from $waf_range. Below 1: with 64-page blocks valid
counts spread more between blocks than in the model's large-block limit, so
greedy finds emptier victims. Above 1: the FTL's GC reserve (free-block low
watermark, one open block for host writes and one for GC copies) is counted
as spare space by the model but not usable by the FTL.

\`flash_bench\` (Google Benchmark, 0.5 s minimum per case): \`FlashDevice::Write\`
and \`Read\` of 4 KiB pages at random logical pages of a 256 MiB device filled
to 50 % and overwritten once (GC active while timed), in batches of 1, 32 and
256; the memory medium is the FTL's CPU cost alone, the file medium adds
io_uring I/O on a backing file in \`$bench_dir\`. The device writes random
logical pages sequentially into the open erase block, so against fio's 4 KiB
random direct writes at QD16 on the same disk (section 3,
$(k "$fio_w16") kIOPS) the file medium at batch 32 reaches
**$(ratio "$dev_w32" "$fio_w16")x**.

$stamp_flash

| medium | batch | write kIOPS | read kIOPS | write MiB/s | read MiB/s |
|---|---:|---:|---:|---:|---:|
$(for m in memory file; do for b in 1 32 256; do flash_row "$m" "$b"; done; done)

## Journal group commit

\`journal_bench\` (3 repetitions, medians): N closed-loop threads append
256-byte records to one journal file in \`$bench_dir\`; each Append returns
once its record is durable, by one write + fdatasync per group of records
that waited together.

$stamp_journal

| appenders | records/s vs 1 appender | records/s | records per sync | syncs/s |
|---:|---:|---:|---:|---:|
$(journal_row 1)
$(journal_row 4)
$(journal_row 16)

## Engine memory and recovery

\`pstorage-engine-figures --markdown --part memory\`: through the public
Engine API on files in \`$bench_dir\`, 1,000,000 unique 2x-compressible blocks
(2 KiB random, 2 KiB zeros) in 1 MiB writes to a 3 GiB device (8 MiB DRAM
cache); RSS is VmRSS. The block map's share is measured apart with 1M
8-byte-pattern blocks, which are mapped but store nothing. Recovery rows are
medians of three fresh processes; "engine's own part" is \`Engine::Open\`
minus \`FlashDevice::OpenFile\` (the flash recovery scan) on the same state.

$stamp_memory

$(cat "$tmp/memory.md")

EOF
  # The HTTP section comes with its own heading and machine line per table;
  # each ratio table moves above the table of absolute figures it follows.
  sed 's|`scripts/http-bench.sh`|`scripts/http-bench.sh` (3 s per scenario here)|' "$tmp/http.md" \
    | awk 'BEGIN { RS = ""; ORS = "\n\n" }
      /^\| scenario / { if (held != "") print held; held = $0; next }
      /^\| ratio / && held != "" { print; print held; held = ""; next }
      { if (held != "") print held; held = ""; print }
      END { if (held != "") print held }'
  cat <<EOF

## One run in detail: oltp-4k

[performance-oltp-4k.html]($html_name) is the HTML report of
\`pstorage bench --profile oltp-4k --target engine --duration $secs\` from this
run ($machine, $stamp_oltp): $(iops oltp-4k) IOPS in total ($(calc %.0f "$(pv oltp-4k .reads.iops)") reads/s,
$(calc %.0f "$(pv oltp-4k .writes.iops)") writes/s), p99 $(p99us oltp-4k) µs, with its latency
histogram and time line.
EOF
} >"$tmp/performance.md"
mv "$tmp/performance.md" "$out"
cp "$tmp/$html_name" "$root/docs/$html_name"
log "wrote $out and docs/$html_name in $((SECONDS - start_s)) s"
