"""A finished comparison: its report (JSON), its Dice-versus-time figure (PNG), and its registry record.

The record is the winner's architecture under the comparison's name, tagged ``compare:<name>``, with
the best run's trained model as parent and the report and figure as artifacts; a comparison that
ends with the same numbers as its latest version registers nothing new.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from automl_seg.compare.stats import PairedTest, RunRow, StrategySummary
from automl_seg.errors import RegistryError

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord, Registry

REPORT_ARTIFACT = "comparison"
FIGURE_ARTIFACT = "dice_vs_time"


class CompareReport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    dataset: str
    budget: str
    seeds: int
    strategies: list[str]
    device: str
    equal_compute: str = Field(description="how the runs were given equal compute")
    heldout_cases: list[str]
    runs: list[RunRow]
    summary: list[StrategySummary] = Field(description="best first, by mean held-out Dice")
    best: str
    tests: list[PairedTest]
    created: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def digest(self) -> str:
        """What the comparison found, apart from when and whether runs were reused."""
        payload = self.model_dump(mode="json", exclude={"created"})
        for run in payload["runs"]:
            run.pop("reused")
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def write_json(report: CompareReport, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(report.model_dump_json(indent=2))
    return path


def plot_dice_vs_time(report: CompareReport, path: Path) -> Path:
    """Every run's held-out mean Dice against its wall time (search + retraining); per strategy the mean with
    its standard deviation on both axes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 5), tight_layout=True)
    ax = fig.subplots()
    for index, summary in enumerate(report.summary):
        color = f"C{index}"
        runs = [r for r in report.runs if r.strategy == summary.strategy]
        times = [r.search_wall_s + r.retrain_wall_s for r in runs]
        ax.scatter(times, [r.dice_mean for r in runs], color=color, alpha=0.5, label=f"{summary.strategy} (runs)")
        ax.errorbar(
            sum(times) / len(times), summary.dice_mean.mean,
            xerr=_spread(times), yerr=summary.dice_mean.sd or 0.0,
            color=color, marker="D", markersize=8, capsize=4, label=f"{summary.strategy} mean +- sd",
        )  # fmt: skip
    ax.set_xlabel("wall time, search + retraining (s)")
    ax.set_ylabel("mean Dice on the held-out cases")
    ax.set_title(f"{report.dataset}, {report.budget} budget, {report.seeds} seed(s), {len(report.heldout_cases)} cases")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _spread(values: list[float]) -> float:
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def register_report(registry: Registry, report: CompareReport, folder: Path) -> ArchitectureRecord:
    """The comparison's record (see the module); its latest version when that one found the same."""
    digest = report.digest()
    try:
        latest = registry.get(f"{report.name}@latest")
    except RegistryError:
        latest = None
    if latest is not None and latest.provenance.get("comparison", {}).get("digest") == digest:
        return latest
    best_run = max((r for r in report.runs if r.strategy == report.best), key=lambda r: r.dice_mean)
    parent = registry.get(best_run.ref)
    payload = parent.model_dump(exclude={"version", "artifacts", "created"})
    payload["metrics"]["extra"] = {
        **payload["metrics"]["extra"],
        "heldout_dice_mean": best_run.dice_mean,
        "heldout_cases": float(len(report.heldout_cases)),
    }
    payload.update(
        name=report.name,
        parent=parent.ref,
        tags=[f"compare:{report.name}"],
        provenance={
            **parent.provenance,
            "comparison": {
                "digest": digest,
                "best": report.best,
                "strategies": report.strategies,
                "seeds": report.seeds,
                "equal_compute": report.equal_compute,
                "dice_mean": {s.strategy: s.dice_mean.model_dump() for s in report.summary},
                "p_values": {t.other: t.p_value for t in report.tests},
            },
        },
    )
    record = type(parent).model_validate(payload)
    files = {
        REPORT_ARTIFACT: (write_json(report, folder / "comparison.json"), "report"),
        FIGURE_ARTIFACT: (plot_dice_vs_time(report, folder / "dice_vs_time.png"), "figure"),
    }
    return registry.register(record, files=files)
