#!/usr/bin/env bash
# Installs the Debian packages PStorage builds, tests and benchmarks with.
# Idempotent: installs only what is missing, and runs `apt-get update` only
# when something must be installed.
set -euo pipefail

packages=(
  build-essential cmake pkg-config make
  libpistache-dev rapidjson-dev libssl-dev
  libxxhash-dev liblz4-dev libzstd-dev liburing-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  fio
  qemu-utils libnbd-bin python3-libnbd nbdkit
  redis-server etcd-server
  clang-14 libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
