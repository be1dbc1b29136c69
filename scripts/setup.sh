#!/usr/bin/env bash
# Sets up this checkout on a fresh Debian/Ubuntu machine: system packages (apt, when root), then a
# .venv holding exactly the Python packages of requirements.lock (every package at an exact version,
# hash-checked) plus the project itself. Re-running is cheap and repairs a .venv that drifted from the
# lock (a package upgraded or added by hand is put back to the locked version).
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
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "setup: Python >= 3.11 is needed, $PYTHON is $("$PYTHON" --version 2>&1)"; exit 1; }

# uv installs the lock (much faster than pip; it reads PyPI itself). It is bootstrapped from PyPI at
# the exact, hash-checked version of scripts/bootstrap.lock, into .uv/ beside the .venv it manages.
UV=.uv/bin/uv
want_uv=$(sed -n 's/^uv==\([^ ]*\).*/\1/p' scripts/bootstrap.lock)
if [ ! -x "$UV" ] || [ "$("$UV" --version 2>/dev/null | cut -d' ' -f2)" != "$want_uv" ]; then
  echo "setup: installing uv $want_uv into .uv/"
  rm -rf .uv
  "$PYTHON" -m pip install -q --disable-pip-version-check --root-user-action=ignore --require-hashes --no-deps --target .uv \
    -r scripts/bootstrap.lock
fi
export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1

if ! .venv/bin/python -c '' 2>/dev/null; then
  echo "setup: creating .venv and installing the locked Python packages (PyTorch is large: a minute or two)"
  rm -rf .venv
  "$UV" venv -q --python "$PYTHON" .venv
fi

# `uv pip sync` makes the .venv hold the lock and nothing else; when it already does, it does nothing.
# The project goes in afterwards, editable, built with the lock's setuptools (no unpinned build env).
"$UV" pip sync -q --compile-bytecode --python .venv/bin/python --require-hashes requirements.lock
"$UV" pip install -q --python .venv/bin/python --no-deps --no-build-isolation -e .

# The PyTorch trio must import together (torchaudio 2.11.1 beside torch 2.11.0 did not). Checked again
# whenever the installed set changes.
installed=$("$UV" pip freeze -q --python .venv/bin/python | sha256sum | cut -d' ' -f1)
if [ "$(cat .venv/.nlmm-checked 2>/dev/null)" != "$installed" ]; then
  .venv/bin/python scripts/check_torch.py
  echo "$installed" > .venv/.nlmm-checked
fi
