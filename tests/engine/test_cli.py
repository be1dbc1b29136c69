"""The `nlmm` command line: machine-readable output and one-line errors."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def nlmm(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def assert_bench_result(result: dict, name: str) -> None:
    """Every benchmark's JSON has the same shape: its name, targets {limit, value, at_most, met} (met read
    off the value and the limit), targets_met over all of them, and what ran (with the precision)."""
    assert result["bench"] == name and isinstance(result["quick"], bool)
    for target in result["targets"].values():
        assert set(target) == {"limit", "value", "at_most", "met"}
        value, limit = target["value"], target["limit"]
        assert target["met"] == (value is not None and (value <= limit if target["at_most"] else value >= limit))
    assert result["targets_met"] == all(t["met"] for t in result["targets"].values())
    assert result["ran"]["precision"] in ("bfloat16", "float32", "float16")
    assert_says_what_ran(result["ran"])


def assert_says_what_ran(machine: dict) -> None:
    """Figures name the machine they came from: the CPU as /proc/cpuinfo names it, cores, threads, policy."""
    import os
    from engine.bench.machine import cpu_model
    assert machine["cpu"] == cpu_model() and machine["cpu"] != "unknown"
    assert machine["logical_cores"] == os.cpu_count() and 1 <= machine["usable_cores"] <= os.cpu_count()
    assert machine["torch_threads"] >= 1
    assert machine["openmp_wait_policy"] == (os.environ.get("OMP_WAIT_POLICY") or "default (spin, then sleep)")
    assert isinstance(machine["native_bf16"], bool) and len(machine["load_average"]) == 3


def test_bench_query_reports_quiet_and_loaded_latency_side_by_side():
    """`nlmm bench query` starts CPU-bound background processes itself for its loaded phase, and stops them."""
    import os
    proc = nlmm("bench", "query", "--json", "--quick", "--load", "2")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    for phase in ("quiet", "loaded"):
        for modality in ("image", "text", "audio"):
            figures = result[phase][modality]
            assert figures["n"] == 10 and 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert result["background"]["processes"] == 2 and "while os.getppid() == parent: pass" in result["background"]["each"]
    assert result["query_threads"] == {"image": [1], "audio": [1], "text": [1]}
    assert_bench_result(result, "query")
    for modality in ("image", "text", "audio"):
        assert result["targets"][f"{modality}: quiet p50 (ms)"]["value"] == result["quiet"][modality]["p50_ms"]
        assert result["targets"][f"{modality}: loaded p50 / quiet p50"]["value"] == pytest.approx(
            result["loaded"][modality]["p50_ms"] / result["quiet"][modality]["p50_ms"])
    assert result["gallery_size"] == 1000
    assert len(result["background"]["pids"]) == 2
    for pid in result["background"]["pids"]:  # the background processes are gone
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


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
    assert info["train"] == {"items": 3800, "images": 3800, "texts": 3800, "audios": 3800}
    assert info["test"]["items"] == 1200 and info["val"]["items"] == 800 and info["skipped"] == {}


def test_data_info_on_a_missing_folder_is_one_line(tmp_path):
    proc = nlmm("data", "info", "--data", f"folder:{tmp_path / 'nope'}")
    assert proc.returncode == 2 and proc.stderr.strip() == f"nlmm: {tmp_path / 'nope'}: folder not found"


# ---------------------------------------------------------------- one-line answers to hostile input (issue 15)

def one_line_error(proc: subprocess.CompletedProcess, *parts: str, status: int = 2) -> str:
    """The command failed with `status` and said why in one line holding every part; no traceback."""
    assert proc.returncode == status, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nlmm"), proc.stderr
    assert all(part in lines[0] for part in parts), lines[0]
    return lines[0]


def short_config(tmp_path: Path) -> Path:
    """tiny with 2 train steps (what `--steps 0` fell back to) and small batches."""
    path = tmp_path / "short.yaml"
    path.write_text("data: {batch_size: 4}\ntrain: {steps: 2, checkpoint_every: 1}\n")
    return path


def test_a_too_short_clip_given_to_query_is_one_line(tmp_path):
    """Finding 3: a 300-sample 44.1 kHz 32-bit WAV ended in torch.stft's padding RuntimeError."""
    import numpy as np
    import soundfile as sf
    clip = tmp_path / "click.wav"
    sf.write(clip, 0.5 * np.sin(np.arange(300) / 5.0), 44100, subtype="PCM_32")
    proc = nlmm("query", "--audio", str(clip), "--json")
    one_line_error(proc, f"nlmm: {clip}: audio too short (6.8 ms; at least 50 ms)", status=1)
    assert proc.stdout == ""


@pytest.mark.parametrize("args,message", [
    (["query", "--text", "seven", "--k", "-3"], "nlmm query: argument --k: must be at least 1, got -3"),
    (["train", "--steps", "0"], "nlmm train: argument --steps: must be at least 1, got 0"),
    (["train", "--steps", "-5"], "nlmm train: argument --steps: must be at least 1, got -5"),
    (["train", "--batch-size", "1"], "nlmm train: argument --batch-size: must be at least 2, got 1"),
    (["bench", "teach", "--budget", "-1"], "nlmm bench teach: argument --budget: must be above 0 seconds, got -1"),
    (["bench", "ttt", "--mechanisms", ",,,"], "nlmm bench ttt: argument --mechanisms: expected some of memory_gated,"),
])
def test_numbers_out_of_range_are_one_line(tmp_path, args, message):
    """`--k -3` ended in topk's RuntimeError; `--steps 0` trained the config's steps, `--steps -5` "finished"
    at step 0 and wrote a checkpoint."""
    out = tmp_path / "run"
    proc = nlmm(*args, *(["--config", str(short_config(tmp_path)), "--out", str(out)] if args[0] == "train" else []))
    one_line_error(proc, message)
    assert not out.exists()


def test_a_cuda_device_without_a_gpu_is_one_line(tmp_path):
    import os
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # the GPU, if any, hidden: what a machine without one sees
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "query", "--text", "seven", "--device", "cuda"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    one_line_error(proc, "nlmm: device 'cuda' requested but CUDA is not available on this machine")


@pytest.mark.parametrize("where,message", [
    ("a-file", "exists and is not a folder"),
    ("/sys/nlmm-run", "cannot write the run folder ("),  # sysfs refuses even root
])
def test_an_out_folder_that_cannot_be_written_is_one_line(tmp_path, where, message):
    out = tmp_path / where if where == "a-file" else Path(where)
    if where == "a-file":
        out.write_text("my notes")
    proc = nlmm("train", "--config", str(short_config(tmp_path)), "--out", str(out))
    one_line_error(proc, f"nlmm: {out}: {message}")


def test_a_checkpoint_write_that_fails_keeps_the_previous_one_and_says_why(tmp_path):
    """`ulimit -f` (or a full disk): the write failed with a traceback. Now the run ends with a one-line
    reason and the previous checkpoint is intact."""
    import resource
    from engine.training.checkpoint import load_checkpoint
    config, out = short_config(tmp_path), tmp_path / "run"
    first = nlmm("train", "--config", str(config), "--out", str(out))
    assert first.returncode == 0, first.stderr
    before = (out / "checkpoint.pt").read_bytes()

    def small_files():  # the checkpoint is ~25 MB; metrics lines and config.yaml fit
        resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "train", "--config", str(config), "--out", str(out),
                           "--resume", "--steps", "3"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                          preexec_fn=small_files)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert (f"failed: {out / 'checkpoint.pt'}: cannot write the checkpoint (File too large); the previous one is "
            "kept; training stopped at step 3") in proc.stderr
    assert (out / "checkpoint.pt").read_bytes() == before and load_checkpoint(out / "checkpoint.pt")["step"] == 2
    assert [p.name for p in out.glob(".*.tmp")] == []


def test_nan_weights_are_one_line_not_invalid_json(tmp_path):
    """A checkpoint holding NaN (what `lr: inf` wrote as "last good") printed NaN scores: invalid JSON."""
    import torch
    from engine.paths import DEFAULT_CHECKPOINT
    from engine.training.checkpoint import load_checkpoint, save_checkpoint
    payload = load_checkpoint(DEFAULT_CHECKPOINT)
    payload["model"]["heads.text.weight"][0, 0] = float("nan")
    broken = save_checkpoint(tmp_path / "nan.pt", {k: v for k, v in payload.items() if k not in ("format", "version")})
    proc = nlmm("query", "--checkpoint", str(broken), "--text", "seven", "--json")
    for line in proc.stdout.splitlines():  # whatever is printed is strict JSON
        json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))
    one_line_error(proc, f"nlmm: {broken}: holds NaN or infinite weights (heads.text.weight)")
    assert torch.isnan(load_checkpoint(broken)["model"]["heads.text.weight"]).any()


def test_resuming_from_a_slimmed_checkpoint_is_one_line(tmp_path):
    import shutil
    from engine.paths import DEFAULT_CHECKPOINT
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(DEFAULT_CHECKPOINT, out / "checkpoint.pt")  # the demo model ships slimmed
    proc = nlmm("train", "--resume", "--out", str(out))
    one_line_error(proc, "cannot resume from it: it holds no 'train_state'")


def test_bench_robustness_reports_every_held_out_condition_beside_the_in_domain_test():
    proc = nlmm("bench", "robustness", "--json", "--quick")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert_bench_result(result, "robustness")
    rows = {row["condition"]: row for row in result["rows"]}
    assert result["targets"]["fonts never trained on: image->text top-1"]["value"] == \
        rows["fonts never trained on"]["recall"]["image->text"]["R@1"]
    assert set(rows["in-domain test"]["recall"]) == {f"{q}->{g}" for q in ("image", "text", "audio")
                                                     for g in ("image", "text", "audio") if q != g}
    expected = {"unseen voices: espeak-ng", "unseen voices: festival", "unseen voices: kokoro",
                "engine never trained on: flite", "recorded rooms (reverb)", "pink noise 10 dB SNR",
                "pink noise 0 dB SNR", "phone band (300-3400 Hz, 8 kHz)", "fonts never trained on",
                "stroke families never trained on", "handwriting photographed on paper (harsh)"}
    assert expected <= set(rows)
    for name in expected:
        row = rows[name]
        assert row["queries"] > 0
        for values in row["recall"].values():
            assert 0.0 <= values["R@1"] <= values["R@5"] <= 1.0
    assert set(rows["fonts never trained on"]["recall"]) == {"image->text"}
    assert set(rows["engine never trained on: flite"]["recall"]) == {"audio->image", "audio->text"}
    # every held-out hand and stroke family on its own, each with its target, and the hands' mean
    hands = {"Klee One", "Nanum Pen Script", "Kaushan Script", "Purisa", "Delphine", "Kiloji", "Dancing Script"}
    for name in [f"handwriting never trained on: {h}" for h in hands] + \
            [f"sketch pad, strokes never trained on: {f}" for f in ("cursive", "timesi")]:
        assert rows[name]["queries"] > 0
        assert result["targets"][f"{name}: image->text top-1"]["value"] == rows[name]["recall"]["image->text"]["R@1"]
    mean = sum(rows[f"handwriting never trained on: {h}"]["recall"]["image->text"]["R@1"] for h in hands) / len(hands)
    assert result["targets"]["handwriting never trained on: mean: image->text top-1"]["value"] == pytest.approx(mean)


def test_bench_ttt_reports_every_mechanism_on_every_shift_and_resets_exactly():
    proc = nlmm("bench", "ttt", "--json", "--quick", "--drift", "20")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    mechanisms = {"memory_gated", "memory_delta", "hope", "cms_fast", "domain", "all", "default"}
    assert set(result["ablation"]) == mechanisms and result["reset_exact"] is True
    rows = {row["shift"]: row for row in result["rows"]}
    assert {"engine never trained on: flite", "recorded rooms (reverb)", "pink noise 0 dB SNR",
            "fonts never trained on", "handwriting photographed on paper (harsh)"} <= set(rows)
    for row in rows.values():
        assert row["queries"] > 0 and 0.0 <= row["before"] <= 1.0 and set(row["mechanisms"]) == mechanisms
        for figures in row["mechanisms"].values():
            assert 0.0 <= figures["after"] <= 1.0 and 0.0 <= figures["clean_after"] <= 1.0
    for drift in result["drift"].values():
        assert [point["queries"] for point in drift["curve"]] == list(range(2, 21, 2))
        assert drift["best"] == max(p["top1"] for p in drift["curve"]) and 0.0 <= drift["worst_below_best"] <= drift["best"]
    assert set(result["by_mechanism"]) == mechanisms
    assert_bench_result(result, "ttt")
    held_out = rows["engine never trained on: flite"]
    gain = result["targets"]["default: gain on engine never trained on: flite"]["value"]
    assert gain == pytest.approx(held_out["mechanisms"]["default"]["after"] - held_out["before"])
    assert all(name.startswith("default:") for name in result["targets"])


def test_bench_ttt_with_an_unknown_mechanism_is_one_line():
    proc = nlmm("bench", "ttt", "--mechanisms", "hope,telepathy")
    assert proc.returncode == 2 and "telepathy" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_bench_teach_json_reports_before_and_after_and_what_ran():
    proc = nlmm("bench", "teach", "--json", "--quick")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    source = result["source"]
    assert source["engine"] == "flite" and source["teach_clips"] == 100 and source["scored_clips"] == 60
    assert source["room_snr_db"] < 0, "the clips are heard in a loud room"
    assert not set(source["teach_voices"]) & set(source["score_voices"]), "scored clips are other clips"
    for when in ("before", "after"):
        figures = result[when]
        assert 0.0 <= figures["taught_numbers_other_clips"] <= 1.0
        assert set(figures["builtin_test_r1"]) == {"image->text", "image->audio", "text->image", "text->audio",
                                                   "audio->image", "audio->text"}
    assert_bench_result(result, "teach")
    # the worst drop is the largest fall of any direction, as the test computes it from the figures
    falls = {d: result["before"]["builtin_test_r1"][d] - result["after"]["builtin_test_r1"][d]
             for d in result["before"]["builtin_test_r1"]}
    assert result["targets"]["built-in test: worst drop, any direction"]["value"] == pytest.approx(max(falls.values()))
    tune = result["fine_tune"]
    assert 1 <= tune["steps"] <= 3 and tune["seconds"] > 0 and 0 < tune["mix_builtin"] < 1
    assert result["targets"]["seconds of teaching"]["value"] == pytest.approx(tune["seconds"], abs=0.06)
    # the same fine-tune timed with its batches prepared between steps and by workers beside the step
    speed = result["throughput"]
    from engine.threads import data_workers
    assert speed["workers"] == data_workers("cpu")
    assert all(rate > 0 for rates in speed["runs"].values() for rate in rates)
    assert speed["speedup"] == pytest.approx(speed["steps_per_s"]["beside_the_step"] / speed["steps_per_s"]["between_steps"], abs=1e-3)


def test_bench_teach_with_a_missing_checkpoint_is_one_line(tmp_path):
    proc = nlmm("bench", "teach", "--checkpoint", str(tmp_path / "none.pt"))
    assert proc.returncode == 2 and "checkpoint not found" in proc.stderr and len(proc.stderr.splitlines()) == 1


def test_a_query_the_terminal_cannot_encode_is_printed_escaped(tmp_path):
    """`PYTHONIOENCODING=ascii` and an emoji query without --json: UnicodeEncodeError before."""
    import os
    env = {**os.environ, "PYTHONIOENCODING": "ascii"}
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "query", "--text", "forty two \U0001f600", "--k", "1"],
                          cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    assert "\\U0001f600" in proc.stdout or "\\u" in proc.stdout.lower()


def test_resume_with_a_config_says_the_config_is_not_used(tmp_path):
    """`--resume --config X` silently trained with the run's own config."""
    config, out = short_config(tmp_path), tmp_path / "run"
    assert nlmm("train", "--config", str(config), "--out", str(out)).returncode == 0
    proc = nlmm("train", "--resume", "--config", str(config), "--out", str(out), "--steps", "3")
    assert proc.returncode == 0, proc.stderr
    assert f"--resume continues the run with the config it was started with; --config {config} is not used" \
        in proc.stderr


def test_busy_processes_of_a_benchmark_end_with_it_however_it_ends():
    """`nlmm bench query --load 2` then SIGTERM left two busy loops under PID 1 at 100 % CPU."""
    import os
    import signal
    import time
    script = """
import time
from engine.bench.query import busy_processes
with busy_processes(2, settle_s=0.1) as pids:
    print(*pids, flush=True)
    time.sleep(60)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in parent.stdout.readline().split()]
    assert len(pids) == 2 and all(os.path.exists(f"/proc/{pid}") for pid in pids)
    parent.send_signal(signal.SIGKILL)      # no cleanup code runs: the children must notice by themselves
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_running(pid) for pid in pids):
        time.sleep(0.05)
    assert not any(_running(pid) for pid in pids)


def _running(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"      # a zombie has ended (only its parent's wait is missing)


def test_a_load_beyond_reason_is_refused():
    proc = nlmm("bench", "query", "--load", "100000")
    one_line_error(proc, "nlmm bench query: argument --load: must be at most 64, got 100000")


def test_bench_corrections_json_reports_every_shift_its_targets_and_what_ran():
    proc = nlmm("bench", "corrections", "--json", "--quick")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert [row["modality"] for row in result["rows"]] == ["image", "image", "audio", "image"]
    assert result["reset_exact"] is True, "Reset restores the model bit for bit after every shift"
    for row in result["rows"]:
        assert set(row["builtin_after"]) == set(result["builtin_before"]) and len(result["builtin_before"]) == 6
        assert 0 < row["correction_ms"]["p50"] <= row["correction_ms"]["p95"]
        # image streams are then consolidated (two replay steps a correction), recordings are not
        consolidated = row["consolidated"]
        if row["modality"] == "image":
            assert consolidated["steps"] == 2 * row["corrections"] and consolidated["seconds"] > 0
            assert {"taught", "untaught"} <= set(consolidated)
        else:
            assert consolidated is None
    assert_bench_result(result, "corrections")
    assert result["targets"]["Reset memory restores every weight (1 = bit for bit)"]["met"]
    assert result["speed"]["corrections_held"] == 20


def test_bench_scale_makes_its_gallery_queries_it_cold_then_cached_and_reports_the_shape():
    proc = nlmm("bench", "scale", "--json", "--quick")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert_bench_result(result, "scale")
    assert result["gallery_rows"] == {"text": 200, "image": 40, "audio": 200}   # 5 distinct captions and clips an image
    assert result["read_from_cache"] is True, "the in-process gallery came from the cache the CLI wrote"
    assert 0 < result["first_query_cached_s"] and 0 < result["first_query_s"]
    for modality in ("text", "image", "audio"):
        figures = result["query"][modality]
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] and figures["first_ms"] > 0 and figures["n"] == 2
    busy = result["beside_busy"]   # the same again beside one busy process, as a desktop runs other programs
    assert busy["busy_processes"] == 1 and busy["first_query_cached_s"] > 0
    assert set(busy["query"]) == {"text", "image", "audio"} and all(f["p50_ms"] > 0 for f in busy["query"].values())


def test_bench_startup_times_a_fresh_query_cold_then_cached_and_a_refused_input_beside_help():
    proc = nlmm("bench", "startup", "--json", "--quick")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert_bench_result(result, "startup")
    quiet = result["phases"]["quiet"]["median_s"]
    assert set(quiet) == {"help", "first_query", "next_query", "bad_input"} and min(quiet.values()) > 0
    assert quiet["first_query"] > quiet["next_query"], "the next query read the gallery the first one cached"
    assert result["phases"]["quiet"]["next_over_help"] == round(quiet["next_query"] / quiet["help"], 2)


def test_bench_all_runs_the_quick_set_in_the_one_shape_and_kernels_has_every_figure():
    proc = nlmm("bench", "all", "--json", "--only", "kernels")
    assert proc.returncode == 0, proc.stderr
    everything = json.loads(proc.stdout)
    assert everything["bench"] == "all" and everything["quick"] is True
    assert [b["bench"] for b in everything["benches"]] == ["kernels"]
    assert everything["targets_met"] == all(b["targets_met"] for b in everything["benches"])
    result = everything["benches"][0]
    assert result["quick"] is True
    assert_bench_result(result, "kernels")
    assert [row["T"] for row in result["delta_rule"]] == [32, 64]
    for row in result["delta_rule"]:
        assert set(row) == {"T", "recurrent_ms", "chunked_ms", "speedup", "max_difference"}
        assert row["recurrent_ms"] > 0 and row["chunked_ms"] > 0
        assert abs(row["speedup"] - row["recurrent_ms"] / row["chunked_ms"]) < 1e-6
    # correctness is a target every run must meet, quick or not: the chunked kernel is the recurrent one
    agree = result["targets"]["chunked delta rule = recurrent (max difference)"]
    assert agree["met"] and agree["value"] < 1e-4 and agree["at_most"]
    from engine.device import cpu_has_native_bf16
    own = "bfloat16" if cpu_has_native_bf16() else "float32"   # tiny asks for bf16
    steps = result["train_step"]
    assert list(steps) == list(dict.fromkeys(["float32", own]))   # fp32 always, the config's own beside it
    for precision, train in steps.items():
        assert {"samples_per_s", "gflops", "peak_gflops", "fraction_of_peak", "peak_tries", "rounds"} <= set(train)
        assert train["precision"] == precision and train["samples_per_s"] > 0 and train["gflops"] > 0
        assert abs(train["fraction_of_peak"] - train["gflops"] / train["peak_gflops"]) < 1e-9
    share = result["targets"]["train step in fp32, share of the fp32 matmul peak"]
    assert share["value"] == steps["float32"]["fraction_of_peak"] and share["limit"] == 0.40
    if own != "float32":
        ratio = result["targets"][f"train step in {own} / in fp32 (samples/s)"]
        assert ratio["value"] == steps[own]["samples_per_s"] / steps["float32"]["samples_per_s"]
    busy = result["train_step_busy"]
    assert busy[-1]["threads"] == 1 and all(row["busy_processes"] == 1 and row["samples_per_s"] > 0 for row in busy)
    refused = nlmm("bench", "all", "--only", "train")
    one_line_error(refused, "nlmm bench all: argument --only: expected some of kernels, query")
