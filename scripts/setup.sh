#!/usr/bin/env bash
# One set-up for a fresh machine, run by users (`npm run setup`) and by CI (.ci/run) alike:
# the system packages the tests and the cameras need, when missing and this user can install them
# (root, or sudo without a password); a clear message with the command to run otherwise; then the
# npm dependencies exactly as locked.
#
#   scripts/setup.sh [--skip-apt] [--dry-run]
#     --skip-apt  leave system packages alone (npm dependencies only)
#     --dry-run   say what would be installed and run, change nothing
set -euo pipefail
cd "$(dirname "$0")/.."

# THE list of Debian/Ubuntu packages the project needs (the one place to add one):
#   xvfb xauth   a private X display for headless WebGL (camera images, the viewer's render test)
#   chromium     the browser the viewer test drives (playwright-core, never a downloaded browser)
#   libxi-dev libglu1-mesa-dev libglew-dev pkg-config   headers to build `gl` (headless WebGL)
#   nats-server  the distributed-rollout tests (each starts its own on a free loopback port)
#   ffmpeg       encodes and decodes the MP4 videos of the LeRobot export/import (evovla export|import)
apt_packages=(xvfb xauth chromium libxi-dev libglu1-mesa-dev libglew-dev pkg-config nats-server ffmpeg)

skip_apt=0
dry_run=0
for arg in "$@"; do
  case "$arg" in
    --skip-apt) skip_apt=1 ;;
    --dry-run) dry_run=1 ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "setup: unknown option '$arg' (expected --skip-apt or --dry-run)" >&2; exit 2 ;;
  esac
done

incomplete=""
if [ "$skip_apt" = 0 ]; then
  if ! command -v dpkg >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
    incomplete="this is not a Debian/Ubuntu system (no dpkg/apt-get): install the equivalents of: ${apt_packages[*]}"
  else
    missing=()
    for p in "${apt_packages[@]}"; do
      dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
      echo "setup: system packages present (${apt_packages[*]})"
    else
      if [ "$(id -u)" = 0 ]; then
        sudo=()
      elif command -v sudo >/dev/null 2>&1 && sudo -n true >/dev/null 2>&1; then
        sudo=(sudo -n)
      else
        sudo=(none)
      fi
      if [ "${sudo[0]:-}" = none ]; then
        incomplete="missing system packages: ${missing[*]}; this user cannot install them (not root, no password-less sudo). Run: sudo apt-get install -y ${missing[*]}   then run this set-up again"
      elif [ "$dry_run" = 1 ]; then
        echo "setup: would install ${missing[*]}"
      else
        echo "setup: installing ${missing[*]}"
        "${sudo[@]}" apt-get update -qq
        # With their recommended packages, as on the machines where they were tried.
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
      fi
    fi
  fi
fi

# onnxruntime-node's postinstall would download a CUDA provider; the CPU provider ships in the package.
export ONNXRUNTIME_NODE_INSTALL=skip
if [ "$dry_run" = 1 ]; then
  echo "setup: would run: ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund"
else
  npm ci --no-audit --no-fund
fi

if [ -n "$incomplete" ]; then
  echo "setup: INCOMPLETE: $incomplete" >&2
  echo "setup: without them the browser and camera tests fail; everything else works" >&2
  exit 1
fi
echo "setup: done; run 'npm test'"
