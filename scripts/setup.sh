#!/usr/bin/env bash
# Installs whatever sslc needs that is missing on a Debian 12 machine. Idempotent: packages
# already present are not touched and apt is not called at all when nothing is missing.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  libopenblas-openmp-dev liblapacke-dev libcjson-dev libstb-dev libcmocka-dev zlib1g-dev
  libdnnl-dev  # oneDNN: bf16 precision (optional: without it sslc builds and runs fp32 only)
  openmpi-bin libopenmpi-dev  # MPI: data-parallel training (optional: without it one process)
  dataset-fashion-mnist
)
# Extra packages a caller asks for (e.g. python3-torch for fixtures, chromium for report tests).
PACKAGES+=("$@")

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "setup: missing packages (${missing[*]}) and not root; install them or run as root" >&2
    exit 1
  fi
fi
echo "setup: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
