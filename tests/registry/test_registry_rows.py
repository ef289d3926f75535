"""One record's index rows (``rows``): version allocation, look-ups, writes."""

from __future__ import annotations

import pytest
from automl_seg_registry import Registry, parse_ref, rows

from automl_seg.errors import RegistryError


def test_next_version_is_above_the_index_and_every_folder_on_disk(sqlite_registry: Registry) -> None:
    def allocate(on_disk: list[int]) -> int:
        return sqlite_registry.index.write(lambda conn: rows.next_version(conn, "a", on_disk))

    assert allocate([]) == 1
    assert allocate([7, 3]) == 8
    assert allocate([]) == 9  # reserved: never handed out twice


def test_reserve_version_never_lowers_the_last_version(sqlite_registry: Registry) -> None:
    sqlite_registry.index.write(lambda conn: rows.reserve_version(conn, "a", 5))
    sqlite_registry.index.write(lambda conn: rows.reserve_version(conn, "a", 2))
    assert sqlite_registry.index.write(lambda conn: rows.next_version(conn, "a")) == 6


def test_insert_then_look_up_then_delete(sqlite_registry: Registry, sample_record) -> None:
    record = sample_record("a").model_copy(update={"version": 1})

    def insert(conn) -> None:
        rows.reserve_version(conn, "a", 1)
        rows.insert(conn, record)
        rows.set_alias(conn, "a", "best", 1)

    sqlite_registry.index.write(insert)
    with sqlite_registry.index.read() as conn:
        assert rows.resolve(conn, parse_ref("a@best"), sqlite_registry.root) == ("a", 1)
        assert rows.load(conn, "a", 1) == record
        assert rows.versions(conn) == {("a", "1")}
        assert rows.alias_target(conn, "a", "best") == rows.newest(conn, "a") == 1
    sqlite_registry.index.write(lambda conn: rows.delete_record(conn, "a", 1))
    with sqlite_registry.index.read() as conn:
        assert rows.indexed(conn) == [] and rows.alias_target(conn, "a", "best") is None
        with pytest.raises(RegistryError, match="removed meanwhile"):
            rows.record_id(conn, "a", 1)
        with pytest.raises(RegistryError, match="is empty"):
            rows.resolve(conn, parse_ref("latest"), sqlite_registry.root)
