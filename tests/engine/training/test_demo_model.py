"""The shipped demo model: small enough to ship, used by default, and it answers correctly."""
import json
import subprocess
import sys
from pathlib import Path

from engine.cli import DEFAULT_CHECKPOINT
from engine.training.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parents[3]


def test_demo_checkpoint_ships_within_15_mb_and_loads_safely():
    assert DEFAULT_CHECKPOINT.is_file(), "resources/demo/nlmm-demo.pt is missing: run scripts/make_demo_model.sh"
    assert DEFAULT_CHECKPOINT.stat().st_size <= 15 * 2**20
    payload = load_checkpoint(DEFAULT_CHECKPOINT)  # weights_only=True
    assert "train_state" not in payload and payload["config"]["name"] == "tiny"


def test_query_uses_the_demo_model_by_default_and_finds_the_number():
    image = ROOT / "resources/builtin/images/test/42_00.png"
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "query", "--text", "forty two", "--image", str(image),
                           "--k", "1", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text_query, image_query = (json.loads(line) for line in proc.stdout.splitlines())
    assert {r["modality"]: r["label"] for r in text_query["results"]} == {"image": 42, "audio": 42}
    assert {r["modality"]: r["label"] for r in image_query["results"]}["text"] == 42
