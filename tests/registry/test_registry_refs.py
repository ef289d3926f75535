"""References: the accepted forms, and everything malformed or path-like is refused."""

from __future__ import annotations

import pytest
from automl_seg_registry import Ref, parse_ref
from automl_seg_registry.refs import check_alias, check_name, check_record_name

from automl_seg.errors import RegistryError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("latest", Ref(name=None)),
        ("dints-Task04_Hippocampus", Ref(name="dints-Task04_Hippocampus", alias="latest")),
        ("dints-Task04_Hippocampus:12", Ref(name="dints-Task04_Hippocampus", version=12)),
        ("a.b_c-d@my-alias", Ref(name="a.b_c-d", alias="my-alias")),
        ("x@best", Ref(name="x", alias="best")),
        ("x@latest", Ref(name="x", alias="latest")),
        ("9lives:1", Ref(name="9lives", version=1)),
    ],
)
def test_good_refs_parse(text: str, expected: Ref) -> None:
    assert parse_ref(text) == expected
    assert str(parse_ref(text)) == (text if ":" in text or "@" in text or text == "latest" else f"{text}@latest")


@pytest.mark.parametrize(
    "text",
    [
        "", "../x", "..", ".", "/abs/path", "a/b", "a\\b", "C:\\x", "~/x", "x:../../etc", "x@../../etc", "x@a/b",
        "x:0", "x:-1", "x:1.5", "x:abc", "x:", "x@", ":3", "@best", "x:1:2", "x@a@b", "a\x00b", ".hidden",
        "a b", "latest:1", "latest@best", "x:١", "é", "a" * 200, "x:99999999999999999999999",
    ],
)  # fmt: skip
def test_malformed_or_escaping_refs_are_refused(text: str) -> None:
    with pytest.raises(RegistryError) as info:
        parse_ref(text)
    message = str(info.value)
    assert "\n" not in message
    assert "NAME:VERSION" in message or "empty" in message


def test_names_aliases_and_reserved_words() -> None:
    assert check_name("weights") == "weights"
    with pytest.raises(RegistryError, match="reserved"):
        check_record_name("latest")
    with pytest.raises(RegistryError, match="moved by the registry"):
        check_alias("latest")
    for bad in ("../weights", "a/b", "", "-x"):
        with pytest.raises(RegistryError, match="invalid artifact name"):
            check_name(bad, "artifact name")
