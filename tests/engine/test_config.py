"""Configs load from YAML, round-trip, and every impossible setting names its key path."""
import re

import pytest

from engine.config import ConfigError, config_from_dict, config_to_dict, load_config, preset_names, save_config


def test_presets_load_and_round_trip(tmp_path):
    assert {"tiny", "base", "paper_exact"} <= set(preset_names())
    for name in ("tiny", "base", "paper_exact"):
        cfg = load_config(name)
        save_config(cfg, tmp_path / f"{name}.yaml")
        assert load_config(tmp_path / f"{name}.yaml") == cfg
    tiny = load_config("tiny")
    assert [lvl.chunk_size for lvl in tiny.cms_levels] == [1, 4, 16]
    assert load_config("paper_exact").cms_mode == "nested"


def bad(change: dict) -> ConfigError:
    data = config_to_dict(load_config("tiny"))
    for path, value in change.items():
        node = data
        keys = path.split(".")
        for key in keys[:-1]:
            node = node[int(key)] if key.isdigit() else node[key]
        last = keys[-1]
        if value is KeyError:
            node.pop(last)
        elif last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value
    with pytest.raises(ConfigError) as info:
        config_from_dict(data)
    return info.value


@pytest.mark.parametrize("change,path,reason", [
    ({"cms_levels.1.chunk_size": 0}, "cms_levels[1].chunk_size", "must be >= 1, got 0"),
    ({"n_heads": 3}, "n_heads", "must divide d_model (128), got 3"),
    ({"cms_levels": []}, "cms_levels", "needs at least one level"),
    ({"cms_levels.2.name": "fast"}, "cms_levels[2].name", "duplicate level name 'fast'"),
    ({"cms_levels.0.optimizer": "adam"}, "cms_levels[0].optimizer", "did you mean 'adamw'"),
    ({"cms_levels.0.lr": -1.0}, "cms_levels[0].lr", "must be > 0"),
    ({"ttt.topk": 99}, "ttt.topk", "must be <= L_mem (32)"),
    ({"image.width": 60}, "image.width", "multiple of image.patch_size"),
    ({"image.stem": "resnet"}, "image.stem", "must be one of"),
    ({"image.stem": "conv", "image.patch_size": 16}, "image.stem", "needs image.patch_size 8, got 16"),
    ({"cms_mode": "nestd"}, "cms_mode", "did you mean 'nested'"),
    ({"d_model": "big"}, "d_model", "must be an integer, got 'big'"),
    ({"data.batch_size": 1}, "data.batch_size", "must be >= 2"),
    ({"data.num_workers": -1}, "data.num_workers", "must be >= 0, got -1"),
    ({"data.num_workers": "many"}, "data.num_workers", "must be an integer or 'auto', got 'many'"),
    ({"data.num_workers": True}, "data.num_workers", "must be an integer or a string, got True"),
])
def test_impossible_settings_name_the_key_path(change, path, reason):
    err = bad(change)
    assert err.path == path
    assert reason in str(err) and str(err).startswith(path)


def test_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"^d_modle: unknown key \(did you mean 'd_model'\?\)"):
        config_from_dict({"d_modle": 64})
    with pytest.raises(ConfigError, match=r"^cms_levels\[0\]\.chunk: unknown key \(did you mean 'chunk_size'\?\)"):
        config_from_dict({"cms_levels": [{"name": "a", "chunk": 2}]})


def test_broken_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("d_model: 64\ncms_levels: [\n  {name: a\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_config(path)


def test_missing_file_and_non_mapping_are_clear(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping of keys"):
        load_config(path)


def test_yaml_exponent_without_dot_is_accepted():
    cfg = config_from_dict({"cms_levels": [{"name": "a", "lr": "1e-3"}]})
    assert cfg.cms_levels[0].lr == pytest.approx(1e-3)


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    save_config(load_config("tiny"), tmp_path / "c.yaml")
    assert [p.name for p in tmp_path.iterdir()] == ["c.yaml"]


def _anchor_bomb(path) -> None:
    """324 bytes of YAML whose value expands to 9^8 strings (the probe's 409-byte variant made a
    722 MB error message, 4.9 GB at peak, and the studio aborted when it was the last config)."""
    lines = ["d_model:", '  - &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"  - &{name} [" + ", ".join([f"*{previous}"] * 9) + "]")
    path.write_text("\n".join(lines) + "\n")


def test_a_yaml_anchor_bomb_is_a_short_error(tmp_path):
    path = tmp_path / "bomb.yaml"
    _anchor_bomb(path)
    assert path.stat().st_size < 500
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith("d_model: must be an integer, got [[")
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)


@pytest.mark.parametrize("text,message", [
    ("train: {lr: inf}\n", "train.lr: must be a finite number, got 'inf'"),
    ("train: {lr: .inf}\n", "train.lr: must be a finite number, got inf"),
    ("train: {weight_decay: nan}\n", "train.weight_decay: must be a finite number, got 'nan'"),
    ("hope: {lr: -.inf}\n", "hope.lr: must be a finite number, got -inf"),
    ("train: {lr: 1.0e+39}\n", "train.lr: must be <= 1000, got 1e+39"),  # overflowed inside torch.optim
])
def test_infinite_and_nan_numbers_are_refused(tmp_path, text, message):
    """`lr: "inf"` passed every `> 0` check; the first step turned every weight into NaN."""
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(path)


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x" * 65, "tab\there"])
def test_a_name_that_is_not_a_plain_folder_name_is_refused(name):
    """The name becomes part of the run folder's name: '../escape' wrote outside runs/."""
    with pytest.raises(ConfigError, match=r"^name: must be letters, digits"):
        config_from_dict({"name": name})
    assert config_from_dict({"name": "tiny-v2.1_b"}).name == "tiny-v2.1_b"


def test_a_huge_file_is_refused_before_parsing(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("d_model: 64\n" + "# padding\n" * 200_000)
    with pytest.raises(ConfigError, match="too large for a config"):
        load_config(path)


def test_worker_processes_are_chosen_for_the_machine_unless_a_number_is_given():
    """`data.num_workers: auto` (tiny's and every fine-tune's) leaves the count to engine.threads; a number stays."""
    from engine.threads import data_workers, step_threads, work_threads
    assert load_config("tiny").data.num_workers == "auto"
    data = config_to_dict(load_config("tiny"))
    data["data"]["num_workers"] = 3
    assert config_from_dict(data).data.num_workers == 3
    # on the CPU the workers and the step share the cores big work may use, each its own
    workers = data_workers("cpu")
    assert step_threads(workers) >= 1 and workers + step_threads(workers) == work_threads()
