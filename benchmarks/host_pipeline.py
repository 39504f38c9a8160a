"""Host work per training step and device syncs per step, before and after issue 36, on CPU.

    .venv/bin/python benchmarks/host_pipeline.py --base /path/to/a/checkout/of/the/old/commit
    -> benchmarks/out/host_pipeline.json

Both code versions run the same measurements in their own process (PYTHONPATH=<base>, then
--after, by default this checkout). Each one runs its own `loop.train_epoch` on synth data: 200 records, whose training split is
tiled to about 12 steps of batch 128 an epoch. The cases are BEAT-Net tiny and xresnet1d101 at 100 and
500 Hz, plus BEAT-Net with train_noise.

* host ms per step: the model is a stub whose forward sleeps `device_ms` (a GPU step, simulated:
  the sleep releases the GIL as a kernel launch would) and returns constant logits.
  `host_cpu_ms_per_step` is the process's CPU time per step: the host's work in every thread, which
  load on the machine hardly changes. `waits_ms_per_step` is (epoch wall time - device time) / steps,
  what the device would wait for the host. At device_ms=0 that is the whole host cost; at
  device_ms=20 it is what prefetching leaves exposed. This needs a free core for the batch thread, so
  on a loaded machine it is noisy.
* syncs per step: the real model, at batch 16, for 3 steps under the torch profiler. On the training
  thread, after the batch is moved to the device, it counts every aten::nonzero and every
  aten::_local_scalar_dense (item/bool of a tensor). On a GPU each of these blocks until the device
  catches up. The optimizer's own scalar reads are left out: it keeps `step` on the CPU. The
  host-side input checks of the old loop come before the move, so they are left out too. The new
  loop copies its losses back once every LOSS_CHECK_STEPS (50) steps and at the end of an epoch
  (read_losses). Over these 3 steps that is 1/3 a step.
"""
from __future__ import annotations

import sys
from pathlib import Path

# benchmarks/tokenize.py would shadow the standard library's tokenize when run as a script
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from dataclasses import replace

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out" / "host_pipeline.json"
N_RECORDS, BATCH, STEPS, DEVICE_MS = 200, 128, 12, (0, 20)
CASES = [  # name, model, model_kwargs, fs, train_noise, epochs timed
    ("beatnet_100hz", "beatnet", {"size": "tiny"}, 100, None, 3),
    ("beatnet_500hz", "beatnet", {"size": "tiny"}, 500, None, 3),
    ("beatnet_100hz_train_noise", "beatnet", {"size": "tiny"}, 100, "ma:12", 2),
    ("xresnet1d101_100hz", "xresnet1d101", {}, 100, None, 3),
    ("xresnet1d101_500hz", "xresnet1d101", {}, 500, None, 3),
]


def _stub(real, n_classes: int, device_ms: float):
    """A model that eats the real model's batches, 'computes' for device_ms and returns constant logits."""
    import torch
    from torch import nn

    class Stub(nn.Module):
        input_kind = real.input_kind
        token_mode = getattr(real, "token_mode", "fixed")
        crop_s = getattr(real, "crop_s", None)

        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(n_classes))

        def forward(self, b):
            time.sleep(device_ms / 1000)
            return self.bias.expand(next(iter(b.values())).shape[0], -1)

    return Stub()


def host_ms(cfg, data, real, device_ms: float, epochs: int) -> dict:
    from beat_ray.train import loop

    stub = _stub(real, data.labels.shape[1], device_ms)
    steps = loop.steps_per_epoch(cfg, data)[0]
    opt, sched = loop.make_optimizer(cfg, stub, steps * (epochs + 1) + 1)
    loop.train_epoch(stub, data, opt, sched, cfg, 0)                  # warm: page cache, allocator, threads
    wall, cpu = [], []
    for e in range(1, epochs + 1):
        t0, c0 = time.perf_counter(), time.process_time()
        n = loop.train_epoch(stub, data, opt, sched, cfg, e)[1]
        wall.append((time.perf_counter() - t0) * 1000 / n - device_ms)
        cpu.append((time.process_time() - c0) * 1000 / n)
    return {"waits_ms_per_step_best": round(min(wall), 2), "waits_ms_per_step_median": round(statistics.median(wall), 2),
            "host_cpu_ms_per_step_median": round(statistics.median(cpu), 2), "epochs": epochs, "steps_each": n}


def syncs(cfg, data, real) -> dict:
    """nonzero and scalar reads per step on the training thread, after the batch moved (see the docstring)."""
    import numpy as np
    import torch

    from beat_ray.train import loop

    cfg = replace(cfg, batch_size=16)
    data = replace(data, train=np.asarray(data.train)[:48])
    opt, sched = loop.make_optimizer(cfg, real, 3)
    orig_to, orig_batch = loop._to, loop.make_batch

    def marked(name, fn):
        def call(*a, **k):
            with torch.profiler.record_function(name):
                pass
            return fn(*a, **k)
        return call

    loop._to, loop.make_batch = marked("bench::to", orig_to), marked("bench::host", orig_batch)
    orig_read = getattr(loop, "_read_losses", None)           # after: the losses' one copy back per N steps
    if orig_read is not None:
        loop._read_losses = marked("bench::read_losses", orig_read)
    try:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            steps = loop.train_epoch(real, data, opt, sched, cfg, 0)[1]
    finally:
        loop._to, loop.make_batch = orig_to, orig_batch
        if orig_read is not None:
            loop._read_losses = orig_read
    events = list(prof.events())
    main = next(e.thread for e in events if e.name == "bench::to")
    counts, phase = {"aten::nonzero": 0, "aten::_local_scalar_dense": 0, "bench::read_losses": 0}, None
    for e in sorted((e for e in events if e.thread == main), key=lambda e: e.time_range.start):
        if e.name in ("bench::host", "bench::to"):
            phase = e.name
        if phase == "bench::to" and e.name in counts:
            parent = e.cpu_parent
            while parent is not None and not parent.name.startswith("Optimizer.step"):
                parent = parent.cpu_parent
            counts[e.name] += parent is None
    per = {k.split("::")[1] + "_per_step": round(v / steps, 2) for k, v in counts.items()}   # read_losses: a
    # device-to-host copy of the stacked losses (on CPU a no-op, so the profiler would not show it)
    return {**per, "syncs_per_step": round(sum(counts.values()) / steps, 2), "steps": steps}


def worker(label: str, out: str) -> None:
    import numpy as np
    import torch

    import beat_ray
    from beat_ray.train.config import TrialConfig
    from beat_ray.train.inputs import build_inputs, load_dataset, make_batch
    from beat_ray.train.loop import build_model

    torch.set_num_threads(1)
    res = {"beat_ray": str(Path(beat_ray.__file__).parent), "cases": {}}
    for name, model, kw, fs, noise, epochs in CASES:
        cfg = TrialConfig(model=model, model_kwargs=kw, fs=fs, dataset="synth", n_records=N_RECORDS,
                          batch_size=BATCH, threads=1, train_noise=noise)
        ds = load_dataset(cfg)
        real = build_model(cfg, len(ds.classes))
        data = build_inputs(cfg, real, ds)
        data = replace(data, train=np.tile(data.train, -(-STEPS * BATCH // len(data.train)))[:STEPS * BATCH])
        one = make_batch(data, data.train[:BATCH], train=True, rng=np.random.default_rng(0),
                         crop_s=getattr(real, "crop_s", None))
        case = {"batch_mb": round(sum(v.numel() * v.element_size() for v in one.values()) / 2**20, 1)}
        for d in DEVICE_MS:
            case[f"device_{d}ms"] = host_ms(cfg, data, real, d, epochs)
        case["syncs"] = syncs(cfg, data, real)
        res["cases"][name] = case
        print(label, name, json.dumps(case), flush=True)
    Path(out).write_text(json.dumps(res))


def _git(path: Path) -> str:
    r = subprocess.run(["git", "-C", str(path), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                       check=False)
    return r.stdout.strip() or "unknown"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=False, help="checkout of the code before (e.g. a worktree at HEAD)")
    ap.add_argument("--after", default=str(REPO), help="the code after (default: this checkout)")
    ap.add_argument("--note", default="", help="stored in the JSON (e.g. what --after holds)")
    ap.add_argument("--worker", nargs=2, metavar=("LABEL", "OUT"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        worker(*a.worker)
        return 0
    cache = os.environ.get("BEAT_RAY_CACHE") or tempfile.mkdtemp(prefix="host_pipeline_cache_")
    report = {"what": __doc__.split("\n\n")[2].strip(), "data": f"synth, {N_RECORDS} records (generated)",
              "batch": BATCH, "threads": 1, "machine": f"{platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores", "load_average_at_start": os.getloadavg()[0], "runs": {}}
    for label, path in (("before", Path(a.base) if a.base else None), ("after", Path(a.after))):
        if path is None:
            continue
        with tempfile.NamedTemporaryFile(suffix=".json") as f:
            env = {**os.environ, "PYTHONPATH": str(path), "BEAT_RAY_CACHE": cache, "RAY_USAGE_STATS_ENABLED": "0"}
            subprocess.run([sys.executable, __file__, "--worker", label, f.name], env=env, cwd="/tmp", check=True)
            report["runs"][label] = {"commit": _git(path), **json.loads(Path(f.name).read_text())}
    report["load_average_at_end"] = os.getloadavg()[0]
    report["note"] = a.note
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
