"""The run log: what the trainer writes reads back as the same events; resumed steps count once; a long
run is summarised from the end of its log; `nlmm runs` lists and shows runs."""
import json
import subprocess
import sys
from pathlib import Path

from engine.events import Evaluation, RunEnded, StepMetrics
from engine.training import runs
from engine.training.runs import RunLog, last_events, list_runs, read_run, summarize

ROOT = Path(__file__).resolve().parents[3]


def _write(folder: Path, lines: list[dict], tail: str = "") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines) + tail)


def test_what_the_log_writes_reads_back_as_the_same_events(tmp_path):
    log = RunLog(tmp_path)
    steps = [StepMetrics(i, 3.0 / i, 10, {"image-text": 2.0 / i}, ("fast",), {"fast": 1e-3, "outer": 2e-3}, 50.0, 1.0)
             for i in (1, 2)]
    evaluation = Evaluation(2, {"image->text": {"R@1": 0.5, "R@5": 0.75, "R@10": 1.0}})
    for event in (*steps, evaluation, RunEnded("stopped", 2, "stopped at step 2", "ck.pt")):
        log.write(event)
    log.close()
    history = read_run(tmp_path)
    assert history.steps == tuple(steps) and history.evaluations == (evaluation,)
    assert history.levels == ("fast",) and history.total_steps == 10


def test_a_resumed_runs_repeated_steps_are_read_once_with_the_newest_values(tmp_path):
    lines = [{"kind": "step", "step": i, "loss": 5.0 - i, "lrs": {"fast": 1e-3}} for i in range(1, 6)]
    lines.append({"kind": "eval", "step": 5, "recall": {}})
    # crashed after step 5, resumed from the checkpoint of step 3: steps 4 and 5 come again
    lines += [{"kind": "step", "step": i, "loss": 10.0 + i, "lrs": {"fast": 1e-3}} for i in range(4, 7)]
    lines.append({"kind": "eval", "step": 5, "recall": {}})
    _write(tmp_path, lines, tail="not json\n")
    history = read_run(tmp_path)
    assert [s.step for s in history.steps] == [1, 2, 3, 4, 5, 6]
    assert [s.loss for s in history.steps][3:] == [14.0, 15.0, 16.0]
    assert [e.step for e in history.evaluations] == [5] and history.levels == ("fast",)


def test_a_long_runs_summary_comes_from_the_end_of_its_log(tmp_path, monkeypatch):
    lines = [{"kind": "step", "step": i, "total_steps": 50_000, "loss": 1.0 + 1 / i} for i in range(1, 30_001)]
    lines.insert(20_000, {"kind": "eval", "step": 20_000, "recall": {"image->text": {"R@1": 0.42}}})
    _write(tmp_path, lines, tail='{"kind": "step", "step": 30001, "los')    # cut off by a crash
    last = last_events(tmp_path / "metrics.jsonl", chunk=4096)      # small chunks: lines cross chunk borders
    assert last["step"].step == 30_000 and last["eval"].step == 20_000
    assert summarize(tmp_path).describe() == "30000/50000 steps, loss 1.000, best R@1 42%, no checkpoint"
    # the eval lies ~500 KB before the end: a narrower search leaves it out rather than reading everything
    monkeypatch.setattr(runs, "SUMMARY_SCAN_BYTES", 64 << 10)
    assert "eval" not in last_events(tmp_path / "metrics.jsonl", chunk=4096)


def test_runs_are_listed_newest_first_and_shown_by_the_command_line(tmp_path):
    _write(tmp_path / "20240101-000000-old", [{"kind": "step", "step": 3, "total_steps": 9, "loss": 0.5}])
    _write(tmp_path / "20240202-000000-new", [{"kind": "step", "step": 1, "total_steps": 9, "loss": 2.0},
                                              {"kind": "step", "step": 2, "total_steps": 9, "loss": 1.0}])
    (tmp_path / "20240202-000000-new" / "checkpoint.pt").write_bytes(b"")
    (tmp_path / "not-a-run").mkdir()
    assert [run.name for run in list_runs(tmp_path)] == ["20240202-000000-new", "20240101-000000-old"]

    def nlmm(*args):
        return subprocess.run([sys.executable, "-m", "engine.cli", "runs", *args], cwd=ROOT, capture_output=True,
                              text=True, timeout=120)
    listed = nlmm("--dir", str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.splitlines() == [f"{'20240202-000000-new':<40} 2/9 steps, loss 1.000",
                                          f"{'20240101-000000-old':<40} 3/9 steps, loss 0.500, no checkpoint"]
    rows = [json.loads(line) for line in nlmm("--dir", str(tmp_path), "--json").stdout.splitlines()]
    assert [(r["step"], r["checkpoint"]) for r in rows] == [(2, True), (3, False)]
    steps = nlmm(str(tmp_path / "20240202-000000-new"), "--steps", "--json")
    assert [json.loads(line)["loss"] for line in steps.stdout.splitlines()] == [2.0, 1.0]
    missing = nlmm(str(tmp_path / "not-a-run"))
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "no steps logged" in missing.stderr


def test_config_differences_name_each_differing_setting_by_its_key_path():
    from engine.config import config_to_dict, load_config
    from engine.training.runs import config_differences, flatten_config
    a = config_to_dict(load_config("tiny"))
    b = config_to_dict(load_config("tiny"))
    b["cms_levels"][1]["chunk_size"] = 7
    b["train"]["steps"] = 99
    c = config_to_dict(load_config("tiny"))
    assert flatten_config(a)["cms_levels[1].chunk_size"] == a["cms_levels"][1]["chunk_size"]
    assert "train.steps" in flatten_config(a)
    rows = dict(config_differences([a, b, c]))
    assert set(rows) == {"cms_levels[1].chunk_size", "train.steps"}
    assert rows["train.steps"] == (a["train"]["steps"], 99, a["train"]["steps"])
    assert config_differences([a, c]) == [], "the same config has no differences"
    # a run without a config is left out of the comparison, not different in everything
    assert dict(config_differences([a, None, b])).keys() == rows.keys()
    assert dict(config_differences([a, None, b]))["train.steps"][1] is None
    b["cms_levels"].append(dict(b["cms_levels"][0], name="extra"))
    added = dict(config_differences([a, b]))[f"cms_levels[{len(a['cms_levels'])}].name"]
    assert added == (None, "extra"), "a level only one run has: None in the other"


def test_runs_are_read_for_comparison_with_their_configs_or_a_reason(tmp_path):
    from engine.config import load_config, save_config
    from engine.training.runs import CONFIG, read_for_comparison
    lines = [{"kind": "step", "step": i, "loss": 3.0 - i, "lrs": {"fast": 1e-3, "outer": 1e-3}} for i in (1, 2)]
    for name in ("a", "b", "c"):
        _write(tmp_path / name, lines)
    save_config(load_config("tiny"), tmp_path / "a" / CONFIG)
    (tmp_path / "b" / CONFIG).write_text("d_model: [unclosed\n")
    a, b, c = read_for_comparison([tmp_path / n for n in ("a", "b", "c")])
    assert a.config is not None and a.config["name"] == load_config("tiny").name and not a.config_problem
    assert len(a.history.steps) == 2 and a.name == "a"
    assert b.config is None and b.config_problem.startswith("b: ") and "YAML" in b.config_problem
    assert c.config is None and "no config.yaml" in c.config_problem
    assert len(c.history.steps) == 2, "a run without a config is still compared by its curves"
