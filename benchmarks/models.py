"""Parameters and training / inference throughput of every registered model, side by side.

    .venv/bin/python benchmarks/models.py                 # CPU, 2 threads, batch 64
    .venv/bin/python benchmarks/models.py --device cuda   # on a GPU machine

Inputs are what each model sees in the study at 100 Hz, 10 s:
  tokens   B=32 beat slots, 12-15 of them valid (a 10-s record at 72-90 bpm), W=70 samples
  signal   12 x 1000 for a whole record; the baselines' own protocol trains on 2.5-s crops (12 x 250)
           and evaluates 7 windows of 2.5 s every 1.25 s, so both are reported.

One training step = forward + BCE-with-logits + backward + AdamW step. Samples/s counts records
(for the sliding-window evaluation, one record = 7 windows), from the fastest timed step; the
median is stored too (`*_median`). Writes benchmarks/out/models.json.
"""
from __future__ import annotations

import sys
from pathlib import Path

# Running `python benchmarks/models.py` puts benchmarks/ first on sys.path, where a sibling
# benchmarks/tokenize.py shadows the stdlib `tokenize` that torch/numpy import. Drop that entry.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from beat_ray.models import create, list_models, sliding_window_logits

FS, SECONDS, N_CLASSES = 100, 10.0, 5


def token_batch(n: int, device: str, B: int = 32, W: int = 70, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    n_valid = torch.randint(12, 16, (n,), generator=g)
    mask = torch.arange(B)[None, :] < n_valid[:, None]
    rr = 0.6 + 0.2 * torch.rand(n, B, 2, generator=g)
    times = torch.cumsum(rr[..., 0], dim=1)
    batch = {"tokens": torch.randn(n, B, 12, W, generator=g) * mask[..., None, None],
             "beat_mask": mask, "rr": rr * mask[..., None], "times": times * mask}
    return {k: v.to(device) for k, v in batch.items()}


def signal_batch(n: int, T: int, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    return {"signal": torch.randn(n, 12, T, generator=torch.Generator().manual_seed(seed)).to(device)}


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _rate(step, n: int, device: str, min_s: float, max_steps: int, warmup: int) -> tuple[float, float]:
    """Samples/s of `step()` (which processes n samples), after `warmup` untimed calls.

    Uses the fastest step: on a shared 2-core machine other processes only ever add time, so the
    minimum is the stable estimate of what the model costs (the median is stored beside it).
    """
    for _ in range(warmup):
        step()
    _sync(device)
    times: list[float] = []
    t_start = time.perf_counter()
    while len(times) < max_steps and (len(times) < 3 or time.perf_counter() - t_start < min_s):
        t0 = time.perf_counter()
        step()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return n / min(times), n / statistics.median(times)


def train_rate(model, batch, n: int, device: str, **kw) -> tuple[float, float]:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    y = (torch.rand(n, N_CLASSES, generator=torch.Generator().manual_seed(1)) < 0.3).float().to(device)

    def step():
        opt.zero_grad(set_to_none=True)
        F.binary_cross_entropy_with_logits(model(batch), y).backward()
        opt.step()

    return _rate(step, n, device, **kw)


def infer_rate(fn, n: int, device: str, **kw) -> tuple[float, float]:
    def step():
        with torch.inference_mode():
            fn()

    return _rate(step, n, device, **kw)


def bench(name: str, n: int, device: str, timing: dict) -> dict:
    torch.manual_seed(0)
    model = create(name, N_CLASSES).to(device)
    row = {"model": name, "input_kind": model.input_kind,
           "params": sum(p.numel() for p in model.parameters())}
    T = int(SECONDS * FS)
    rates: dict[str, tuple[float, float]] = {}
    if model.input_kind == "tokens":
        row["token_mode"] = model.token_mode
        b = token_batch(n, device)
        rates["train"] = train_rate(model, b, n, device, **timing)
        model.eval()
        rates["infer"] = infer_rate(lambda: model(b), n, device, **timing)
    else:
        crop = int(model.crop_s * FS)
        full, cropped = signal_batch(n, T, device), signal_batch(n, crop, device)
        rates["train"] = train_rate(model, full, n, device, **timing)
        rates["train_crop"] = train_rate(model, cropped, n, device, **timing)
        model.eval()
        rates["infer"] = infer_rate(lambda: model(full), n, device, **timing)
        rates["infer_sliding"] = infer_rate(
            lambda: sliding_window_logits(model, full["signal"], FS, model.eval_win_s, model.eval_stride_s,
                                          model.eval_reduce), n, device, **timing)
    for k, (best, median) in rates.items():
        row[f"{k}_samples_per_s"], row[f"{k}_samples_per_s_median"] = best, median
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--models", nargs="*", default=None, help="default: every registered model")
    ap.add_argument("--min-s", type=float, default=3.0, help="time each measurement at least this long")
    ap.add_argument("--max-steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=1, help="repeat all models; keep each one's best")
    ap.add_argument("--out", default=str(Path(__file__).parent / "out" / "models.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    timing = dict(min_s=args.min_s, max_steps=args.max_steps, warmup=1 if args.device == "cpu" else 3)

    names = args.models or list_models()
    rounds: list[list[dict]] = []
    for r in range(args.rounds):  # repeated rounds: each model gets several chances at a quiet machine
        rounds.append([bench(name, args.batch, args.device, timing) for name in names])
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    rows = []
    for i, name in enumerate(names):
        row = dict(rounds[0][i])
        for k in row:
            if k.endswith("_samples_per_s"):
                row[k] = max(rd[i][k] for rd in rounds)
            elif k.endswith("_samples_per_s_median"):
                row[k] = statistics.median(rd[i][k] for rd in rounds)
        rows.append(row)
        extra = "".join(f"  {k}={row[k]:8.1f}" for k in ("train_crop_samples_per_s", "infer_sliding_samples_per_s")
                        if k in row)
        print(f"{name:24s} params={row['params']:>9,d}  train={row['train_samples_per_s']:8.1f}/s"
              f"  infer={row['infer_samples_per_s']:8.1f}/s{extra}", flush=True)

    by = {r["model"]: r for r in rows}
    ratios = {}
    if "xresnet1d101" in by:
        ref = by["xresnet1d101"]
        for name in ("beatnet", "beatnet_base"):
            if name in by:
                ratios[f"{name}_vs_xresnet1d101_train_full"] = by[name]["train_samples_per_s"] / ref["train_samples_per_s"]
                ratios[f"{name}_vs_xresnet1d101_train_crop"] = by[name]["train_samples_per_s"] / ref["train_crop_samples_per_s"]
        for k, v in ratios.items():
            print(f"{k:45s} {v:6.2f}x  (target >= 2x)")
    device_name = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu"
    out = {"device": args.device, "device_name": device_name, "threads": torch.get_num_threads(),
           "batch": args.batch, "rounds": args.rounds, "fs": FS, "seconds": SECONDS, "torch": torch.__version__,
           "rows": rows, "ratios": ratios}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
