"""The settings fixtures that the space and strategy contracts share: the tiny task's budget and patch.

Every setting of a contract is a fixture, none a class attribute, so a subclass tailors all of it
one way: by overriding the fixture.

The settings are function-scoped, like every fixture that reads them. A class-scoped fixture could
not depend on them, so none does (the strategy contract's class-scoped search cache is filled by
the function-scoped ``searched``), and an override may be a plain ``@pytest.fixture``.
"""

from __future__ import annotations

from typing import Any

import pytest

from automl_seg.interfaces import Budget
from automl_seg.testing.fixtures import TINY_PATCH


class FixtureSettings:
    """Refuses, when a subclass is defined, a plain value where the contract has a fixture
    (``patch_size = (32, 32, 32)``, the form these settings once had): pytest would otherwise
    report every test that uses it as "fixture 'patch_size' not found"."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name, value in vars(cls).items():
            if name.startswith("_") or callable(value) or isinstance(value, (staticmethod, classmethod, property)):
                continue
            if any(callable(vars(base).get(name)) for base in cls.__mro__[1:]):
                raise TypeError(
                    f"{cls.__name__}.{name} = {value!r}: {name} is a fixture of the contract; override it as "
                    f"`@pytest.fixture def {name}(self): return {value!r}`"
                )


class TinyTaskSettings(FixtureSettings):
    """``budget`` and ``patch_size``, the settings of the tiny plan the contracts build on."""

    @pytest.fixture
    def budget(self) -> Budget:
        """The budget whose presets are built (``space.default_args``, ``strategy.settings``)."""
        return "quick"

    @pytest.fixture
    def patch_size(self) -> tuple[int, int, int]:
        """Training patch of the tiny plan; override when the object needs sides divisible by more than 16."""
        return TINY_PATCH
