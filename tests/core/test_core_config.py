"""Typed settings: files, overrides, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from automl_seg.config import DataSettings, build_settings, check_sections, read_config_file, section
from automl_seg.errors import ConfigError


def test_yaml_and_toml_files_give_the_same_settings(tmp_path: Path):
    (tmp_path / "run.yaml").write_text("data:\n  dataset: Task99_Synthetic\n  val_fraction: 0.25\n")
    (tmp_path / "run.toml").write_text('[data]\ndataset = "Task99_Synthetic"\nval_fraction = 0.25\n')
    for name in ("run.yaml", "run.toml"):
        config = read_config_file(tmp_path / name)
        settings = build_settings(DataSettings, section(config, "data"))
        assert settings.dataset == "Task99_Synthetic" and settings.val_fraction == 0.25


def test_cli_overrides_win_over_the_file_and_none_means_not_given():
    settings = build_settings(
        DataSettings, {"dataset": "A", "split_seed": 3}, overrides={"dataset": "B", "split_seed": None}
    )
    assert (settings.dataset, settings.split_seed) == ("B", 3)


def test_preset_is_the_lowest_layer():
    settings = build_settings(DataSettings, {"split_seed": 5}, base={"split_seed": 1, "val_fraction": 0.5})
    assert (settings.split_seed, settings.val_fraction) == (5, 0.5)


def test_unknown_key_is_one_clear_line():
    with pytest.raises(ConfigError) as err:
        build_settings(DataSettings, {"datset": "x"}, source="run.yaml [data]")
    message = str(err.value)
    assert message == "invalid settings in run.yaml [data]: datset: unknown setting"
    assert "\n" not in message


def test_invalid_value_names_key_and_value():
    with pytest.raises(ConfigError, match=r"val_fraction: Input should be less than 1 \(got 1.5\)"):
        build_settings(DataSettings, {"val_fraction": 1.5})


def test_negative_patch_size_is_rejected():
    with pytest.raises(ConfigError, match="patch_size"):
        build_settings(DataSettings, {"patch_size": [-16, 32, 32]})


@pytest.mark.parametrize("axes", [[3], [0, 0], [-1, 2]])
def test_mirror_axes_must_be_distinct_spatial_axes(axes: list[int]):
    with pytest.raises(ConfigError, match="mirror_axes must be distinct axes among 0, 1, 2"):
        build_settings(DataSettings, {"mirror_axes": axes}, source="data")
    assert build_settings(DataSettings, {"mirror_axes": []}).mirror_axes == ()


def test_unparsable_and_missing_files(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="cannot be parsed"):
        read_config_file(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        read_config_file(tmp_path / "missing.toml")
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        read_config_file(listy)


def test_unknown_section_is_rejected(tmp_path: Path):
    with pytest.raises(ConfigError, match="unknown section"):
        check_sections({"dta": {}}, {"data", "train"}, tmp_path / "run.yaml")
