"""Figures of a search: the decoded topology on its blocks x resolutions grid, and the search curves."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from automl_seg_dints.topology import OPS, DecodedArch, Topology

_OP_COLOURS = ("#7f7f7f", "#d62728", "#1f77b4", "#2ca02c", "#9467bd")


def _figure(width: float, height: float) -> Any:
    """A figure bound to the Agg canvas (no global pyplot state, no display needed)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_topology(arch: DecodedArch, path: Path) -> Path:
    """Blocks left to right, resolutions top (finest) to bottom; each chosen path coloured by its operation."""
    from matplotlib.lines import Line2D

    blocks, depths = arch.arch_code_a.shape[0], arch.node_a.shape[1]
    topo = Topology(depths)
    fig = _figure(1.2 + 0.9 * (blocks + 1), 1.0 + 0.9 * depths)
    ax = fig.add_subplot(1, 1, 1)
    for b in range(blocks):
        for p in range(topo.num_paths):
            if arch.arch_code_a[b, p]:
                op = int(arch.arch_code_c[b, p])
                ax.plot([b, b + 1], [topo.path_in[p], topo.path_out[p]], color=_OP_COLOURS[op], linewidth=2.5, zorder=1)
    for b in range(blocks + 1):
        for d in range(depths):
            active = bool(arch.node_a[b, d])
            ax.scatter(
                [b], [d], s=120, zorder=2, edgecolors="black", color="black" if active else "white", linewidths=1.0
            )
    ax.set_xticks(range(blocks + 1), ["in"] + [str(b + 1) for b in range(blocks)])
    ax.set_yticks(range(depths), [f"1/{2 ** (d + 1)}" for d in range(depths)])
    ax.invert_yaxis()
    ax.set_xlabel("block")
    ax.set_ylabel("resolution")
    ax.set_title("DiNTS decoded topology")
    handles = [Line2D([0], [0], color=c, linewidth=2.5, label=name) for c, name in zip(_OP_COLOURS, OPS, strict=True)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    return path


def plot_search_curves(history: Sequence[dict[str, Any]], requested_fraction: float, path: Path) -> Path:
    """Losses per epoch (left) and the expected memory share against the requested budget (right)."""
    fig = _figure(10, 3.8)
    losses, memory = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    epochs = [h["epoch"] for h in history]
    for key in ("train_loss", "arch_loss", "arch_seg_loss", "memory_loss", "topology_loss"):
        points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
        if points:
            losses.plot(*zip(*points, strict=True), marker="o", label=key)
    losses.set_xlabel("epoch")
    losses.set_title("search losses")
    losses.legend(fontsize=8)
    memory.plot(epochs, [h["memory_estimated"] for h in history], marker="o", label="expected (soft)")
    memory.plot(epochs, [h["memory_decoded"] for h in history], marker="s", label="decoded")
    memory.axhline(requested_fraction, color="black", linestyle="--", label="requested")
    memory.set_xlabel("epoch")
    memory.set_ylabel("fraction of full supernet")
    memory.set_title("memory estimate")
    memory.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    return path
