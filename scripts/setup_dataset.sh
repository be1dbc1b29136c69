#!/usr/bin/env bash
# Sets up what scripts/make_builtin_dataset.py needs and the app does not: the speech engines and fonts
# (Debian packages, installed with apt-get as root) and .venv-dataset, holding requirements-dataset.lock
# (the app's lock plus scikit-learn, Kokoro, pyroomacoustics, Hershey fonts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh   # system packages of the app, and the pinned uv in .uv/

APT_PACKAGES="espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts fontconfig
  fonts-dejavu-core fonts-urw-base35 fonts-texgyre fonts-liberation2 fonts-freefont-ttf fonts-hack
  fonts-firacode fonts-roboto-unhinted fonts-cantarell fonts-comic-neue fonts-breip fonts-humor-sans
  fonts-dustin fonts-tomsontalks fonts-klaudia-berenika"
missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup_dataset: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
  else
    echo "setup_dataset: install these first: sudo apt-get install -y --no-install-recommends$missing"; exit 1
  fi
fi

export UV_PYTHON_DOWNLOADS=never UV_NO_PROGRESS=1
PYTHON=${PYTHON:-python3}
if ! .venv-dataset/bin/python -c '' 2>/dev/null; then
  rm -rf .venv-dataset
  .uv/bin/uv venv -q --python "$PYTHON" .venv-dataset
fi
.uv/bin/uv pip sync -q --compile-bytecode --python .venv-dataset/bin/python --require-hashes requirements-dataset.lock
.uv/bin/uv pip install -q --python .venv-dataset/bin/python --no-deps --no-build-isolation -e .
