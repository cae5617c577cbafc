"""What a state snapshot costs: time and memory to snapshot and restore model + AdamW.

    python studies/bench_snapshot.py                      # 100M parameters on the CPU
    python studies/bench_snapshot.py --device cuda        # on a GPU: on the device, and to the CPU
    python studies/bench_snapshot.py --params 10          # millions of parameters

A ``BudgetedRun`` in branch mode keeps the trunk (model and optimizer state) at the start
of each cooldown and restores it after; restart keeps the initial state and restores it
at every budget. This times the library's own snapshot and restore (``BudgetedRun``'s
``_state`` and ``_restore``, what a branch cooldown does) on a model of ``--params``
million parameters (fp32, a stack of 4096 x 4096 linear layers) after one AdamW step, so
that the optimizer holds its two moments, and reports each operation's best time of
``--repeats`` and the process's peak resident memory over its baseline.

What a snapshot holds, and the formula for a GPU: with ``N`` parameters in fp32 and
AdamW, the model is ``4N`` bytes and the optimizer ``8N`` (two moments), so a snapshot is
``S = 12N`` bytes (1.2 GB at 100M). Kept on the device (``snapshot_device=None``) it costs
``S`` more device memory and a device-to-device copy, about ``2S / HBM bandwidth`` (read
and write: under 1 ms at 100M on an H100/H200's 3-5 TB/s). With ``snapshot_device="cpu"``
it costs ``S`` of pinned host memory instead and ``S / host-link bandwidth`` to take
(about 25 GB/s on PCIe 4 x16, 50 GB/s on PCIe 5: 25-50 ms at 100M), the same again to
restore; the copies to the host are queued without blocking and synchronized once.
Restoring the optimizer also makes a transient copy of its state (``8N``) on the
snapshot's device before ``Optimizer.load_state_dict`` moves it to the parameters'.
"""

from __future__ import annotations

import argparse
import gc
import resource
import time

import torch
from torch import nn

from budgetopt import BudgetedRun


def rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def nbytes(obj) -> int:
    if isinstance(obj, torch.Tensor):
        return obj.nelement() * obj.element_size()
    if isinstance(obj, dict):
        return sum(nbytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(nbytes(v) for v in obj)
    return 0


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(params_m: float, device: torch.device, snapshot_device: str | None, repeats: int) -> dict:
    layers = max(1, round(params_m * 1e6 / (4096 * 4097)))
    model = nn.Sequential(*(nn.Linear(4096, 4096) for _ in range(layers))).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.randn(4, 4096, device=device)).sum().backward()
    optimizer.step()  # the moments exist from here on
    optimizer.zero_grad(set_to_none=True)
    run = BudgetedRun([10, 20], model, optimizer, mode="branch", snapshot_device=snapshot_device)
    gc.collect()
    base_rss, base_gpu = rss_mib(), torch.cuda.memory_allocated(device) if device.type == "cuda" else 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    best = {"snapshot": float("inf"), "restore": float("inf")}
    state = None
    for _ in range(repeats):
        state = None
        gc.collect()
        sync(device)
        start = time.perf_counter()
        state = run._state()
        sync(device)
        best["snapshot"] = min(best["snapshot"], time.perf_counter() - start)
        start = time.perf_counter()
        run._restore(state)
        sync(device)
        best["restore"] = min(best["restore"], time.perf_counter() - start)
    out = {
        "params": sum(p.numel() for p in model.parameters()),
        "snapshot_bytes": nbytes({k: v for k, v in state.items() if k != "grad_scaler"}),
        "snapshot_s": best["snapshot"],
        "restore_s": best["restore"],
        "held_rss_mib": rss_mib() - base_rss,
        "peak_rss_mib": peak_mib(),
        "base_rss_mib": base_rss,
    }
    if device.type == "cuda":
        out["peak_gpu_over_base_mib"] = (torch.cuda.max_memory_allocated(device) - base_gpu) / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--params", type=float, default=100, help="millions of parameters (default: %(default)s)")
    parser.add_argument("--device", default="cpu", help="where the model trains (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    device = torch.device(args.device)
    places = [None] if device.type == "cpu" else [None, "cpu"]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), model on {device}, AdamW, fp32")
    print(f"{'snapshot_device':>16}  {'params':>8}  {'snapshot':>9}  {'snapshot s':>10}  {'restore s':>9}  "
          f"{'GB/s':>6}  {'held RSS':>9}  {'peak RSS':>9}  peak GPU over base")
    for place in places:
        r = measure(args.params, device, place, args.repeats)
        gb = r["snapshot_bytes"] / 1e9
        gpu = f"{r['peak_gpu_over_base_mib']:.0f} MiB" if "peak_gpu_over_base_mib" in r else "-"
        print(f"{str(place or 'model device'):>16}  {r['params'] / 1e6:>7.1f}M  {gb:>7.2f}GB  {r['snapshot_s']:>10.3f}  "
              f"{r['restore_s']:>9.3f}  {gb / r['snapshot_s']:>6.1f}  {r['held_rss_mib']:>6.0f}MiB  "
              f"{r['peak_rss_mib']:>6.0f}MiB  {gpu}")
    print("peak RSS is the process's high-water mark, model, optimizer and one snapshot included; "
          "held RSS is what the last snapshot adds while kept")


if __name__ == "__main__":
    main()
