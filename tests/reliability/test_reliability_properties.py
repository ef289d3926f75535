"""Property tests: whatever text or value comes in, refs, names, aliases, patch sizes and config values
either parse to something safe and well-formed or are refused with the project's own error (never
another exception, never a name that could leave the registry folder)."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest
from automl_seg_registry.refs import MAX_VERSION, NAME_PATTERN, check_alias, check_name, parse_ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from automl_seg.cli.engine_cmd import parse_patch
from automl_seg.config import DataSettings, build_settings
from automl_seg.data.plan import DIVISOR, MAX_OVERRIDE_VOXELS, check_patch_size
from automl_seg.engine.settings import SearchRunSettings, train_settings
from automl_seg.errors import ConfigError, RegistryError

pytestmark = pytest.mark.timeout(300)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: text as users and attackers type it: anything, and strings built from the characters refs use
ANY_TEXT = st.text(max_size=40)
REF_ALPHABET = st.sampled_from(list("ab0Z._-:@/\\ .%\x00é１") + ["..", "latest"])
REF_LIKE = st.lists(REF_ALPHABET, max_size=12).map("".join)
NAMES = st.from_regex(NAME_PATTERN, fullmatch=True)
ROOT = Path("/registry/records")


def _stays_inside(name: str) -> bool:
    return Path(os.path.normpath(ROOT / name)).parent == ROOT


# ----------------------------------------------------------------------------- names and aliases


@FAST
@given(st.one_of(ANY_TEXT, REF_LIKE))
def test_a_name_is_accepted_exactly_when_it_is_safe(text: str) -> None:
    try:
        accepted = check_name(text) == text
    except RegistryError as exc:
        assert "invalid record name" in str(exc)
        accepted = False
    assert accepted == bool(NAME_PATTERN.fullmatch(text))
    if accepted:  # a directory name that stays where the registry puts it
        assert _stays_inside(text) and "/" not in text and not text.startswith(".")


@FAST
@given(NAMES)
def test_every_safe_name_is_one_folder_under_the_root(name: str) -> None:
    assert check_name(name) == name and _stays_inside(name)


@FAST
@given(st.one_of(ANY_TEXT, REF_LIKE, NAMES))
def test_an_alias_is_a_safe_name_other_than_latest(text: str) -> None:
    try:
        assert check_alias(text) == text
    except RegistryError:
        assert text == "latest" or not NAME_PATTERN.fullmatch(text)
    else:
        assert text != "latest" and _stays_inside(text)


# ----------------------------------------------------------------------------- references


@FAST
@given(st.one_of(ANY_TEXT, REF_LIKE))
def test_any_text_parses_to_a_safe_ref_or_is_refused(text: str) -> None:
    try:
        ref = parse_ref(text)
    except RegistryError as exc:
        assert "registry reference" in str(exc)
        return
    assert str(ref) == text or (ref.alias == "latest" and str(ref) == f"{text}@latest")
    if ref.name is not None:
        assert NAME_PATTERN.fullmatch(ref.name) and ref.name != "latest" and _stays_inside(ref.name)
    if ref.version is not None:
        assert 1 <= ref.version <= MAX_VERSION


@FAST
@given(NAMES.filter(lambda n: n != "latest"), st.integers(min_value=1, max_value=MAX_VERSION), NAMES)
def test_well_formed_refs_round_trip(name: str, version: int, alias: str) -> None:
    for text in (name, f"{name}:{version}", f"{name}@{alias}"):
        parsed = parse_ref(text)
        assert parse_ref(str(parsed)) == parsed and parsed.name == name


# ----------------------------------------------------------------------------- patch sizes


@FAST
@given(st.one_of(ANY_TEXT, st.lists(st.integers(-64, 4096).map(str), max_size=5).map("x".join)))
def test_patch_text_parses_to_a_bounded_patch_or_one_config_error(text: str) -> None:
    try:
        patch = check_patch_size(parse_patch(text))
    except (ConfigError, TypeError) as exc:  # TypeError: parse_patch gave None for no text, never here
        assert isinstance(exc, ConfigError), exc
        return
    assert len(patch) == 3 and all(side > 0 and side % DIVISOR == 0 for side in patch)
    assert math.prod(patch) <= MAX_OVERRIDE_VOXELS


@FAST
@given(st.lists(st.integers(min_value=-(2**70), max_value=2**70), min_size=0, max_size=5))
def test_any_integers_make_a_valid_patch_or_one_config_error(sides: list[int]) -> None:
    try:
        patch = check_patch_size(sides)
    except ConfigError as exc:
        assert "patch size" in str(exc)
        return
    assert len(patch) == 3 and all(0 < side and side % DIVISOR == 0 for side in patch)
    assert math.prod(patch) <= MAX_OVERRIDE_VOXELS


# ----------------------------------------------------------------------------- config values

VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.lists(st.integers(-5, 200), max_size=4),
    st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)
DATA_KEYS = st.sampled_from(["dataset", "val_fraction", "split_seed", "holdout_fraction", "max_cases", "patch_size"])
TRAIN_KEYS = st.sampled_from(["epochs", "iterations", "lr", "batch_size", "val_every", "amp", "weight_decay", "bogus"])
RUN_KEYS = st.sampled_from(["seed", "device", "workers", "budget", "strategy", "resume", "colour"])


@FAST
@given(st.dictionaries(DATA_KEYS, VALUES, max_size=4))
def test_data_settings_from_any_values(section: dict) -> None:
    try:
        made = build_settings(DataSettings, section, source="data settings")
    except ConfigError as exc:
        assert str(exc).startswith("invalid settings in data settings: ")
        return
    assert 0 < made.val_fraction < 1 and (made.max_cases is None or made.max_cases > 0)


@FAST
@given(st.dictionaries(TRAIN_KEYS, VALUES, max_size=4))
def test_train_settings_from_any_values(section: dict) -> None:
    try:
        train_settings("quick", section)
    except ConfigError as exc:
        assert str(exc).startswith("invalid settings in train settings: ")


@FAST
@given(st.dictionaries(RUN_KEYS, VALUES, max_size=4))
def test_run_settings_from_any_values(section: dict) -> None:
    try:
        build_settings(SearchRunSettings, section, source="search settings")
    except ConfigError as exc:
        assert str(exc).startswith("invalid settings in search settings: ")
