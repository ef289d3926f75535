"""``SearchSpaceContract``: what every search space must do, as a pytest class to subclass.

Override the ``space`` fixture (and, where needed, ``patch_size``, ``budget``, ``plan``, ``space_args``
or ``arch``: every setting is a fixture)::

    class TestMySpace(SearchSpaceContract):
        @pytest.fixture
        def space(self):
            return MySpace()

        @pytest.fixture
        def patch_size(self):
            return (32, 32, 32)  # MySpace halves the patch five times
"""

from __future__ import annotations

from typing import Any

import pytest

from automl_seg.data.models import Plan
from automl_seg.interfaces import Budget, SamplingSpace, SearchSpace
from automl_seg.testing import checks
from automl_seg.testing.fixtures import tiny_plan
from automl_seg.testing.tiny_task import TinyTaskSettings


class SearchSpaceContract(TinyTaskSettings):
    """Subclass and override the ``space`` fixture; every ``test_*`` here then runs on it."""

    @pytest.fixture
    def space(self) -> SearchSpace:
        pytest.fail("override the `space` fixture to return the search space under test")

    @pytest.fixture
    def plan(self, patch_size: tuple[int, int, int]) -> Plan:
        return tiny_plan(patch_size=patch_size)

    @pytest.fixture
    def space_args(self, space: SearchSpace, plan: Plan, budget: Budget) -> dict[str, Any]:
        """Constructor args to build; override to shrink a large space (keep them JSON-able)."""
        return space.default_args(plan, budget)

    @pytest.fixture
    def arch(self, space: SearchSpace, space_args: dict[str, Any]) -> dict[str, Any]:
        """An architecture of the space: ``space.sample_arch(args, rng)`` when offered, else ``{}``."""
        return checks.sample_arch(space, space_args, seed=0)

    def test_host_admits_space(self, space: SearchSpace) -> None:
        checks.check_identity("space", space)

    def test_default_args_are_json_and_deterministic(self, space: SearchSpace, plan: Plan, budget: Budget) -> None:
        checks.check_space_args(space, plan, budget)

    def test_network_output_matches_labels_and_trains(
        self, space: SearchSpace, space_args: dict[str, Any], arch: dict[str, Any], plan: Plan
    ) -> None:
        checks.check_space_network(space, space_args, arch, plan)

    def test_record_rebuilds_the_same_network(
        self, space: SearchSpace, space_args: dict[str, Any], arch: dict[str, Any], plan: Plan
    ) -> None:
        net = checks.check_space_network(space, space_args, arch, plan)
        checks.check_space_rebuild(space, net, space_args, arch, plan)

    def test_sample_arch_is_seeded(self, space: SearchSpace, space_args: dict[str, Any]) -> None:
        """Spaces offering ``sample_arch`` give the same architecture for the same seed."""
        if not isinstance(space, SamplingSpace):
            pytest.skip("space offers no sample_arch (single-architecture space)")
        first = checks.sample_arch(space, space_args, seed=3)
        assert first == checks.sample_arch(space, space_args, seed=3), "sample_arch ignores its rng"
        checks.json_roundtrip(first, "sample_arch(args, rng)")
