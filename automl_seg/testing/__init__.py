"""Conformance kit for automl-seg plugins, in the spirit of ``optuna.testing``.

A plugin author subclasses a contract and points it at their object through a fixture::

    from automl_seg.testing import SearchStrategyContract

    class TestMyStrategy(SearchStrategyContract):
        @pytest.fixture
        def strategy(self):
            return MyStrategy()

The contracts (``SearchSpaceContract``, ``SearchStrategyContract``, ``ExporterContract``,
``ObserverContract``) need pytest; the plain check functions in :mod:`automl_seg.testing.checks`
(``play_run`` plays an observer a run) and the tiny data helpers in :mod:`automl_seg.testing.fixtures`
(``installed`` gets an installed plugin's strategy, space or exporter) do not
(``automl-seg plugins list --verify`` runs them).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from automl_seg.testing.checks import ContractViolation

#: contract class -> module holding it; imported on first use so that importing this package
#: (e.g. from ``automl_seg.verify``) does not need pytest.
_CONTRACTS = {
    "SearchSpaceContract": "automl_seg.testing.spaces",
    "SearchStrategyContract": "automl_seg.testing.strategies",
    "ExporterContract": "automl_seg.testing.exporters",
    "ObserverContract": "automl_seg.testing.observers",
}

__all__ = ["ContractViolation", *_CONTRACTS]


def __getattr__(name: str) -> Any:
    if name in _CONTRACTS:
        return getattr(import_module(_CONTRACTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
