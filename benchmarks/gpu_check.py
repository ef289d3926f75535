"""The GPU checks in one run: by hand, on a machine with a CUDA GPU (never in CI).

    AUTOML_SEG_DATA=../shared/data python benchmarks/gpu_check.py --out gpu-check
    python benchmarks/gpu_check.py --device cpu --out /tmp/gpu-check   # the same steps, tiny, on the CPU

Each step is a subprocess with its own time limit, its output in ``--out/<step>.log``; after every
step ``--out/summary.json`` is rewritten, so a run cut short still says what it got. Steps, most
important first (a machine lent for minutes may not reach the last ones):

1. ``environment``: torch, the GPU, and the onnxruntime providers a session really gets (onnxruntime-gpu
   lists CUDA even where its libraries are missing).
2. ``search``: the README's main job on the GPU (``search --strategy dints --budget quick``): CUDA
   search and training steps, the discrete network's measured memory, validation Dice.
3. ``export-onnx`` / ``export-onnx-fp16`` / ``export-torchscript``: the parity proof runs on the
   CUDA provider (fp16 needs it).
4. ``predict-torch`` / ``predict-onnxruntime``, then ``labels-agree``: the same labels from torch on
   the GPU and from onnxruntime's CUDA provider.
5. ``bench-onnx``: torch CUDA vs onnxruntime CUDA (float32 and float16) latency and memory.
6. ``bench-dints`` / ``bench-dints-amp``: the search iteration against MONAI's on the GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict
from rich.console import Console
from rich.table import Table

BENCHMARKS = Path(__file__).resolve().parent
CUDA_EP = "CUDAExecutionProvider"


class StepResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    status: str  # passed, failed, timed out, skipped
    seconds: float = 0.0
    summary: str = ""


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    argv: list[str]
    timeout_s: int
    gpu_only: bool = False


def environment(device: str) -> str:
    """One line: torch and its device, onnxruntime and the providers a session really uses."""
    import onnxruntime as ort
    import torch
    from automl_seg_export.providers import usable_providers

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA"
    forced = [CUDA_EP] if device == "cuda" else None
    used = usable_providers(forced)  # a ConfigError when CUDA is forced and does not really load
    return f"torch {torch.__version__} ({gpu}); onnxruntime {ort.__version__}: session uses {', '.join(used)}"


def steps(args: argparse.Namespace, inputs: Path) -> list[Step]:
    """The commands, sized for the device: the real quick preset on a GPU, a few cases on the CPU."""
    cli = [sys.executable, "-m", "automl_seg.cli.main"]
    where = ["--registry", str(args.out / "registry")]
    tiny = [] if args.device == "cuda" else ["--max-cases", "8", "--set", "epochs=2", "--set", "warmup_epochs=1",
                                             "--train-epochs", "2", "--patch-size", "32x32x32"]  # fmt: skip
    providers = ["--providers", CUDA_EP] if args.device == "cuda" else []
    bench_s = 240 if args.device == "cuda" else 900  # MONAI's supernet and ours, on a 2-core CPU
    bench = [sys.executable, str(BENCHMARKS / "bench_dints.py"), "--device", args.device, "--skip-decode"]
    bench += ["--iterations", "5"] if args.device == "cuda" else ["--iterations", "1", "--patch", "32", "32", "32"]
    predict = [*cli, "predict", "latest", "--input", str(inputs), "--device", args.device, "--no-progress", *where]
    return [
        Step(name="search", timeout_s=args.search_timeout,
             argv=[*cli, "search", "--strategy", "dints", "--dataset", args.dataset, "--budget", "quick",
                   "--device", args.device, "--no-progress", "--json", *tiny, *where]),
        Step(name="export-onnx", timeout_s=180,
             argv=[*cli, "export", "latest", "--format", "onnx", "--no-progress", "--json", *providers, *where]),
        Step(name="export-onnx-fp16", timeout_s=180, gpu_only=True,
             argv=[*cli, "export", "latest", "--format", "onnx", "--fp16", "--no-progress", "--json", *providers,
                   *where]),
        Step(name="export-torchscript", timeout_s=180,
             argv=[*cli, "export", "latest", "--format", "torchscript", "--no-progress", "--json", *where]),
        Step(name="predict-torch", timeout_s=120, argv=[*predict, "--output", str(args.out / "labels-torch")]),
        Step(name="predict-onnxruntime", timeout_s=120,
             argv=[*predict, "--output", str(args.out / "labels-onnxruntime"), "--backend", "onnxruntime",
                   *providers]),
        Step(name="bench-onnx", timeout_s=240,
             argv=[sys.executable, str(BENCHMARKS / "bench_onnx.py"), "--ref", "latest", "--cases", "8",
                   "--device", args.device, "--registry", str(args.out / "registry"),
                   *(["--fp16"] if args.device == "cuda" else [])]),
        Step(name="bench-dints", timeout_s=bench_s, argv=bench),
        Step(name="bench-dints-amp", timeout_s=bench_s, gpu_only=True, argv=[*bench, "--amp"]),
    ]  # fmt: skip


def labels_agree(out: Path) -> str:
    """Voxel agreement of the two backends' label maps, file by file (the worst one)."""
    import nibabel as nib
    import numpy as np

    torch_dir, ort_dir = out / "labels-torch", out / "labels-onnxruntime"
    files = sorted(p.name for p in torch_dir.glob("*.nii*"))
    if not files:
        raise RuntimeError("predict-torch wrote no label maps")
    agreement = [
        float(np.mean(np.asarray(nib.load(torch_dir / f).dataobj) == np.asarray(nib.load(ort_dir / f).dataobj)))
        for f in files
    ]
    return f"{len(files)} label maps, worst voxel agreement {min(agreement):.6f}"


def summarise(name: str, log_text: str) -> str:
    """The figure worth a glance from a step's output (the full output is in its log)."""
    if name == "search" or name.startswith("export"):
        try:
            data = json.loads(log_text[log_text.index("{") : log_text.rindex("}") + 1])
        except ValueError:
            return ""
        if name == "search":
            trained = data.get("trained") or {}
            memory = data.get("search_metrics", {}).get("memory", {})
            return f"{trained.get('ref')}: Dice {trained.get('metrics', {}).get('dice_per_class')}, memory {memory}"
        parity = data.get("parity", data)
        keys = ("max_abs_diff", "min_label_agreement", "min_dice", "providers")
        return ", ".join(f"{k} {parity[k]}" for k in keys if k in parity)
    lines = [line for line in log_text.splitlines() if "│" in line]  # the rows of a benchmark's table
    return "\n".join(lines[-4:])


def run_step(step: Step, out: Path) -> StepResult:
    log_path = out / f"{step.name}.log"
    start = time.perf_counter()
    try:
        done = subprocess.run(step.argv, capture_output=True, text=True, timeout=step.timeout_s,
                              env={**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1"})  # fmt: skip
    except subprocess.TimeoutExpired as exc:
        log_path.write_text(f"$ {' '.join(step.argv)}\n{exc.stdout or ''}\n{exc.stderr or ''}")
        return StepResult(name=step.name, status="timed out", seconds=step.timeout_s)
    seconds = time.perf_counter() - start
    log_path.write_text(f"$ {' '.join(step.argv)}\n# exit {done.returncode}\n{done.stdout}\n{done.stderr}")
    if done.returncode:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or [""]
        return StepResult(name=step.name, status="failed", seconds=seconds, summary=last[0])
    return StepResult(name=step.name, status="passed", seconds=seconds, summary=summarise(step.name, done.stdout))


def in_process(name: str, work: Callable[[], str]) -> StepResult:
    start = time.perf_counter()
    try:
        return StepResult(name=name, status="passed", seconds=time.perf_counter() - start, summary=work())
    except Exception as exc:  # a check's failure is its result
        return StepResult(name=name, status="failed", seconds=time.perf_counter() - start, summary=str(exc))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for logs, registry and summary.json")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--dataset", default="Task04_Hippocampus")
    parser.add_argument("--cases", type=int, default=4, help="images for the two predict backends")
    parser.add_argument("--search-timeout", type=int, default=420, help="seconds for the main job")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    from automl_seg.data.locate import find_task  # the data root as the CLI finds it

    images = sorted((find_task(args.dataset, None) / "imagesTr").glob("*.nii.gz"))[: args.cases]
    inputs = args.out / "inputs"
    inputs.mkdir(exist_ok=True)
    for image in images:
        (inputs / image.name).write_bytes(image.read_bytes())

    results = [in_process("environment", lambda: environment(args.device))]
    for step in steps(args, inputs):
        if step.gpu_only and args.device != "cuda":
            results.append(StepResult(name=step.name, status="skipped", summary="needs --device cuda"))
        else:
            results.append(run_step(step, args.out))
        if step.name == "predict-onnxruntime":
            results.append(in_process("labels-agree", lambda: labels_agree(args.out)))
        payload = [r.model_dump() for r in results]
        (args.out / "summary.json").write_text(json.dumps(payload, indent=2))
        Console(stderr=True).print(f"{results[-1].name}: {results[-1].status} ({results[-1].seconds:.0f} s)")

    table = Table(title=f"GPU checks ({args.device}), logs in {args.out}")
    for column in ("step", "status", "seconds", "result"):
        table.add_column(column, justify="right" if column == "seconds" else "left")
    for r in results:
        table.add_row(r.name, r.status, f"{r.seconds:.0f}", r.summary)
    Console(width=200).print(table)
    return 0 if all(r.status in ("passed", "skipped") for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
