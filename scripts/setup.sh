#!/usr/bin/env bash
# Sets up this checkout on a fresh Debian/Ubuntu machine: system packages (apt, when root), then a
# .venv with the project and its test tools. Re-running is cheap: each part is skipped when done.
set -euo pipefail
cd "$(dirname "$0")/.."

# PortAudio for the microphone, the X/EGL libraries Qt loads even offscreen, Xvfb for screenshots.
APT_PACKAGES="libportaudio2 libegl1 libgl1 libxkbcommon0 libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4
  libxcb-keysyms1 libxcb-shape0 libxcb-render-util0 libxcb-image0 libxcb-randr0 libxcb-xinerama0
  libdbus-1-3 libfontconfig1 libglib2.0-0 xvfb xauth"

missing=""
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
  done
fi
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup: these system packages are missing; install them with:"
    echo "  sudo apt-get install -y --no-install-recommends$missing"
  fi
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' || {
    echo "setup: Python >= 3.10 is needed, $PYTHON is $("$PYTHON" --version 2>&1)"; exit 1; }
  "$PYTHON" -m venv .venv
fi

# Reinstall only when the dependency list changed.
stamp=.venv/.nlmm-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python packages into .venv (PyTorch is large: the first time takes a few minutes)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -e ".[test]"
  echo "$want" > "$stamp"
fi
