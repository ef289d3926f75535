"""The report's sections that the registry record alone answers (no data, no network)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from automl_seg.report.page import image, key_values, missing, section, table, text

if TYPE_CHECKING:
    from automl_seg_registry import ArchitectureRecord


def summary(record: ArchitectureRecord, aliases: list[str], lineage: list[ArchitectureRecord]) -> str:
    m = record.metrics
    facts = {
        "ref": record.ref + (f" ({', '.join(aliases)})" if aliases else ""),
        "created": record.created.strftime("%Y-%m-%d %H:%M UTC"),
        "search space": f"{record.space.name} {record.space.version}",
        "strategy": record.strategy.name,
        "dataset": record.dataset.name,
        "mean Dice": m.dice_mean,
        "mean HD95 (mm)": m.hd95_mean,
        "parameters": m.params,
        "tags": ", ".join(record.tags) or "-",
    }
    rows = [(key, "-" if value is None else value) for key, value in facts.items()]
    chain = " &larr; ".join(f"<code>{text(r.ref)}</code>" for r in lineage)
    return section("summary", "Summary and lineage", table(("", ""), rows), f"<p>Lineage (newest first): {chain}</p>")


def settings(record: ArchitectureRecord) -> str:
    parts = [f"<p>Seed {text(record.seed)}; budget {text(record.provenance.get('budget', '-'))}; "
             f"device {text(record.provenance.get('device', '-'))}.</p>",
             "<h3>Strategy settings</h3>", key_values(record.strategy.settings) if record.strategy.settings
             else missing("no strategy settings recorded")]  # fmt: skip
    train = record.provenance.get("train")
    parts += ["<h3>Training settings</h3>", key_values(train) if isinstance(train, Mapping) else missing(
        "not trained: no training settings (an architecture-only record)")]  # fmt: skip
    parts += ["<h3>Package versions</h3>", key_values(record.versions)]
    return section("settings", "Settings", *parts)


def dataset(record: ArchitectureRecord) -> str:
    ref = record.dataset
    return section(
        "dataset",
        "Dataset fingerprint and plan",
        f"<p>Dataset <code>{text(ref.name)}</code>, fingerprint <code>{text(ref.fingerprint_hash or '-')}</code>.</p>",
        "<h3>Plan</h3>",
        key_values(ref.plan) if ref.plan else missing("no plan recorded"),
        "<h3>Split</h3>",
        key_values(ref.split) if ref.split else missing("no split recorded"),
    )


def figures(record: ArchitectureRecord, files: Mapping[str, Path]) -> str:
    """The topology figure and the search and training curves, as stored with the record (or its parent)."""
    wanted = {
        "topology": ("Topology", "no topology figure (the search space draws none)"),
        "search_curves": ("Search curves", "no search curves recorded"),
        "train_curves": ("Training curves", "not trained: no training curves"),
    }
    parts = []
    for stem, (title, absent) in wanted.items():
        name = next((n for n in files if n.startswith(stem) and files[n].suffix == ".png"), None)
        parts += [f"<h3>{title}</h3>", image(files[name], title) if name else missing(absent)]
    return section("figures", "Topology and curves", *parts)


def memory(record: ArchitectureRecord) -> str:
    m = record.metrics
    rows: list[tuple[str, Any]] = [(key, value) for key, value in sorted(m.memory.items())]
    if m.peak_memory_mb is not None:
        rows.append(("measured peak while training (MB)", m.peak_memory_mb))
    body = table(("figure", "MB or fraction"), rows) if rows else missing("no memory figures recorded")
    return section("memory", "Memory: requested, estimated, measured", body)


def cases(evaluation: Mapping[str, Any] | None) -> str:
    if evaluation is None:
        return section("cases", "Per-case Dice and HD95", missing("not evaluated: no per-case scores"))
    names = list(evaluation["dice_per_class"])
    header = ["case", *(f"Dice {n}" for n in names), *(f"HD95 {n} (mm)" for n in names)]
    rows = [[c["case"], *(c["dice"][n] for n in names), *(c["hd95"][n] for n in names)] for c in evaluation["cases"]]
    rows.append(["mean", *evaluation["dice_per_class"].values(), *evaluation["hd95_per_class"].values()])
    return section("cases", "Per-case Dice and HD95", table(header, rows))
