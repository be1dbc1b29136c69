"""Where shipped files live. Imports nothing heavy, so the studio can read it on its UI thread."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESOURCES = ROOT / "resources"
DEFAULT_CHECKPOINT = RESOURCES / "demo" / "nlmm-demo.pt"  # the shipped demo model
CONFIGS = ROOT / "configs"
