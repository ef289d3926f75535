"""Model cards: a record as Markdown with Hugging Face style YAML front matter.

The front matter is for machines (hubs, catalogues); the body tells a person what was searched, on
what data, how well it did, what it cost and how to reproduce it. Nothing here knows a strategy:
settings and architecture payloads are rendered generically.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from automl_seg_registry.schema import ArchitectureRecord

DEFAULT_LICENSE = "other"
BASE_TAGS = ("medical-imaging", "3d", "image-segmentation", "automl-seg")


def render_card(record: ArchitectureRecord, aliases: Iterable[str] = ()) -> str:
    """The record's model card: YAML front matter, then a human summary."""
    front = yaml.safe_dump(_front_matter(record), sort_keys=False, allow_unicode=True).strip()
    return f"---\n{front}\n---\n\n{_body(record, sorted(aliases))}\n"


def _front_matter(record: ArchitectureRecord) -> dict[str, Any]:
    metrics = [{"type": "dice", "name": "mean Dice", "value": _round(record.metrics.dice_mean)}]
    if record.metrics.hd95_mean is not None:
        metrics.append({"type": "hd95", "name": "mean HD95 (mm)", "value": _round(record.metrics.hd95_mean)})
    tags = _unique([*BASE_TAGS, record.strategy.name, record.space.name, *record.tags])
    return {
        "license": str(record.provenance.get("license", DEFAULT_LICENSE)),
        "library_name": "automl-seg",
        "pipeline_tag": "image-segmentation",
        "datasets": [record.dataset.name],
        "metrics": ["dice", "hd95"],
        "tags": tags,
        "model-index": [
            {
                "name": record.ref,
                "results": [
                    {
                        "task": {"type": "image-segmentation", "name": "3D segmentation"},
                        "dataset": {"name": record.dataset.name, "type": record.dataset.name},
                        "metrics": metrics,
                    }
                ],
            }
        ],
    }


def _body(record: ArchitectureRecord, aliases: list[str]) -> str:
    sections = [
        f"# {record.ref}" + (f" ({', '.join(aliases)})" if aliases else ""),
        _summary(record),
        "## What was searched",
        f"- Search space: `{record.space.name}` version {record.space.version}\n"
        f"- Strategy: `{record.strategy.name}`, seed {record.seed}",
        _json_block("Search space arguments", record.space.args),
        _json_block("Strategy settings", record.strategy.settings),
        _json_block("Architecture (discrete payload)", record.arch),
        "## Data",
        f"- Dataset: `{record.dataset.name}`, fingerprint `{record.dataset.fingerprint_hash or 'not recorded'}`",
        _key_values("Plan", record.dataset.plan),
        "## Results",
        _results_table(record),
        _costs(record),
        "## Files",
        _files_table(record),
        "## How to reproduce",
        _reproduce(record),
        "## Full report",
        f"Curves, per-case scores and case overlays in one HTML page: `automl-seg report {record.ref} -o report.html`.",
    ]
    if record.parent:
        sections += ["## Lineage", f"Derived from `{record.parent}`."]
    if record.provenance:
        sections.append(_key_values("Provenance", record.provenance))
    return "\n\n".join(section for section in sections if section)


def _summary(record: ArchitectureRecord) -> str:
    dice = record.metrics.dice_mean
    score = f"mean Dice {dice:.4f} on validation" if dice is not None else "not evaluated yet"
    created = record.created.strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"A `{record.space.name}` network found by the `{record.strategy.name}` search strategy on "
        f"`{record.dataset.name}`: {score}. Registered {created}."
    )


def _results_table(record: ArchitectureRecord) -> str:
    metrics = record.metrics
    classes = _unique([*metrics.dice_per_class, *metrics.hd95_per_class])
    if not classes and metrics.dice_mean is None:
        return "No evaluation recorded."
    rows = ["| class | Dice | HD95 (mm) |", "|---|---|---|"]
    for label in classes:
        rows.append(
            f"| {label} | {_fmt(metrics.dice_per_class.get(label))} | {_fmt(metrics.hd95_per_class.get(label))} |"
        )
    rows.append(f"| **mean** | {_fmt(metrics.dice_mean)} | {_fmt(metrics.hd95_mean)} |")
    return "\n".join(rows)


def _costs(record: ArchitectureRecord) -> str:
    metrics = record.metrics
    facts = {
        "parameters": f"{metrics.params:,}" if metrics.params is not None else None,
        "search wall time": _seconds(metrics.search_time_s),
        "training wall time": _seconds(metrics.train_time_s),
        "peak memory": f"{metrics.peak_memory_mb:.0f} MB" if metrics.peak_memory_mb is not None else None,
        **{f"memory {key}": f"{value:.0f} MB" for key, value in metrics.memory.items()},
        **{key: _fmt(value) for key, value in metrics.extra.items()},
    }
    lines = [f"- {key}: {value}" for key, value in facts.items() if value is not None]
    return "\n".join(lines)


def _files_table(record: ArchitectureRecord) -> str:
    if not record.artifacts:
        return "No files stored."
    rows = ["| name | kind | size | sha256 |", "|---|---|---|---|"]
    rows += [
        f"| {item.name} | {item.kind} | {_size(item.size)} | `{item.sha256}` |"
        for item in sorted(record.artifacts, key=lambda item: item.name)
    ]
    return "\n".join(rows)


def _reproduce(record: ArchitectureRecord) -> str:
    command = (
        f"automl-seg search --strategy {record.strategy.name} --dataset {record.dataset.name} --seed {record.seed}"
    )
    versions = ", ".join(f"{name} {version}" for name, version in sorted(record.versions.items()))
    lines = [
        "Search again with the settings above (put them in a config file passed with `--config`):",
        f"```bash\n{command}\n```",
        "Use this exact model:",
        f"```bash\nautoml-seg predict {record.ref} --input images/ --output predictions/\n```",
    ]
    if versions:
        lines.append(f"Recorded with: {versions}.")
    return "\n\n".join(lines)


def _json_block(title: str, data: Mapping[str, Any]) -> str:
    if not data:
        return ""
    return f"<details><summary>{title}</summary>\n\n```json\n{json.dumps(data, indent=2, default=str)}\n```\n</details>"


def _key_values(title: str, data: Mapping[str, Any]) -> str:
    if not data:
        return ""
    rows = [f"| {title} | |", "|---|---|"]
    rows += [f"| {key} | {json.dumps(value, default=str)} |" for key, value in data.items()]
    return "\n".join(rows)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _round(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _fmt(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "-"


def _seconds(value: float | None) -> str | None:
    if value is None:
        return None
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
