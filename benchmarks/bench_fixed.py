"""The ``fixed`` space's DynUNet as the space builds it (channels-last on the CPU, ``automl_seg.layout``;
batch-1 convolutions on oneDNN, ``automl_seg.onednn``) vs plain MONAI ``DynUNet``, in one process (run
by hand, not in CI).

Same arguments (the space's quick preset at a 48x64x48 patch, deep supervision heads included), same
weights, same batch: the fastest
training step (forward, Dice-CE loss, backward, SGD step) and the fastest no-gradient inference of
one patch, the variants taking turns.

    python benchmarks/bench_fixed.py
    python benchmarks/bench_fixed.py --batch 2 --patch 32 32 32 --iterations 5
"""

from __future__ import annotations

import argparse
import functools

import torch
from bench_dints import fastest_alternated, infer_patch, train_step
from monai.networks.nets import DynUNet
from rich.console import Console
from rich.table import Table

from automl_seg.engine.loss import segmentation_loss, training_loss
from automl_seg.plugins import load_plugins
from automl_seg.testing.fixtures import tiny_plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--patch", type=int, nargs=3, default=[48, 64, 48])
    parser.add_argument("--iterations", type=int, default=4)
    args = parser.parse_args()
    space = load_plugins().space("fixed")
    space_args = space.default_args(tiny_plan(tuple(args.patch)), "quick")
    torch.manual_seed(0)
    ours = space.build_network(space_args, {})
    plain = DynUNet(**{k: v for k, v in space.monai_network_config(space_args, {}).items() if k != "_target_"})
    plain.load_state_dict(ours.state_dict())
    x = torch.randn(args.batch, 1, *args.patch)
    y = torch.randint(0, 3, (args.batch, 1, *args.patch))
    models = {"plain MONAI": plain, "fixed space": ours}
    loss_fn = functools.partial(training_loss, segmentation_loss())  # over the deep supervision heads too
    cpu = torch.device("cpu")
    train = fastest_alternated(
        {name: functools.partial(train_step, m, torch.optim.SGD(m.parameters(), lr=0.01), loss_fn, x, y)
         for name, m in models.items()}, args.iterations, cpu)  # fmt: skip
    infer = fastest_alternated({name: functools.partial(infer_patch, m, x[:1]) for name, m in models.items()},
                               args.iterations, cpu)  # fmt: skip
    table = Table(title=f"fixed DynUNet, batch {args.batch}, patch {'x'.join(map(str, args.patch))}, CPU, "
                        f"{torch.get_num_threads()} threads")  # fmt: skip
    for column in ("measure", "plain MONAI", "fixed space", "ratio"):
        table.add_column(column)
    for label, figures in (("training step (s)", train), ("inference, 1 patch (s)", infer)):
        ref, ours_s = figures["plain MONAI"], figures["fixed space"]
        table.add_row(label, f"{ref:.4g}", f"{ours_s:.4g}", f"{ref / ours_s:.2f}x faster")
    Console(width=120).print(table)


if __name__ == "__main__":
    main()
