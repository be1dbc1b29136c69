"""Configs load from YAML, round-trip, and every impossible setting names its key path."""
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
    ({"cms_mode": "nestd"}, "cms_mode", "did you mean 'nested'"),
    ({"d_model": "big"}, "d_model", "must be an integer, got 'big'"),
    ({"data.batch_size": 1}, "data.batch_size", "must be >= 2"),
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
