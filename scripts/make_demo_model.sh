#!/usr/bin/env bash
# Rebuilds the shipped demo model resources/demo/nlmm-demo.pt: trains configs/tiny.yaml on the built-in
# set (about 2½ hours on 2 CPU cores shared with other work: every clip and image is augmented afresh
# each epoch), then keeps only what using the model needs.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/nlmm train --config tiny --steps 4000 --out runs/demo
.venv/bin/python -c "from engine.training.checkpoint import slim_checkpoint; slim_checkpoint('runs/demo/checkpoint.pt', 'resources/demo/nlmm-demo.pt')"
.venv/bin/nlmm eval --checkpoint resources/demo/nlmm-demo.pt --split test
