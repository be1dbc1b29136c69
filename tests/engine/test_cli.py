"""The `nlmm` command line: machine-readable output and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def nlmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_bench_kernels_json_has_every_figure():
    proc = nlmm("bench", "kernels", "--json", "--quick")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [row["T"] for row in result["delta_rule"]] == [32, 64]
    for row in result["delta_rule"]:
        assert set(row) == {"T", "recurrent_ms", "chunked_ms", "speedup"}
        assert row["recurrent_ms"] > 0 and row["chunked_ms"] > 0
        assert abs(row["speedup"] - row["recurrent_ms"] / row["chunked_ms"]) < 1e-6
    train = result["train_step"]
    assert {"samples_per_s", "gflops", "peak_gflops", "fraction_of_peak"} <= set(train)
    assert train["samples_per_s"] > 0 and train["gflops"] > 0
    assert abs(train["fraction_of_peak"] - train["gflops"] / train["peak_gflops"]) < 1e-9


def test_bad_config_is_one_line_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("cms_levels:\n  - {name: fast, chunk_size: 0}\n")
    proc = nlmm("bench", "kernels", "--config", str(bad))
    assert proc.returncode == 2
    assert proc.stderr.strip() == "nlmm: cms_levels[0].chunk_size: must be >= 1, got 0 (in bad.yaml)"
    assert "Traceback" not in proc.stderr


def test_data_info_json_counts_the_builtin_splits():
    proc = nlmm("data", "info", "--data", "builtin", "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["train"] == {"items": 1600, "images": 1600, "texts": 1600, "audios": 1600}
    assert info["test"]["items"] == 600 and info["val"]["items"] == 400 and info["skipped"] == {}


def test_data_info_on_a_missing_folder_is_one_line(tmp_path):
    proc = nlmm("data", "info", "--data", f"folder:{tmp_path / 'nope'}")
    assert proc.returncode == 2 and proc.stderr.strip() == f"nlmm: {tmp_path / 'nope'}: folder not found"
