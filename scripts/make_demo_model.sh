#!/usr/bin/env bash
# Rebuilds the shipped demo model resources/demo/nlmm-demo.pt: trains configs/tiny.yaml on the built-in
# set for 4000 steps (every clip and image is augmented afresh each epoch), continues it for 600 steps
# of a second, gentle cosine cycle (lr 2e-4), then keeps only what using the model needs. About 1 h 20 min
# on 2 quiet CPU cores (2½ hours when they are shared with other training).
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/nlmm train --config tiny --steps 4000 --out runs/demo
.venv/bin/nlmm train --init runs/demo/checkpoint.pt --data builtin --steps 600 --lr 2e-4 --out runs/demo-continued
.venv/bin/python -c "from engine.training.checkpoint import slim_checkpoint; slim_checkpoint('runs/demo-continued/checkpoint.pt', 'resources/demo/nlmm-demo.pt')"
.venv/bin/nlmm eval --checkpoint resources/demo/nlmm-demo.pt --split test
