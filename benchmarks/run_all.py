"""Every benchmark of issues A-D, plus `make demo` and `make figures`, side by side in one report.

    python benchmarks/run_all.py                       # CPU; ~10 min on 2 cores
    python benchmarks/run_all.py --device cuda         # on a GPU machine (models on the GPU)
    python benchmarks/run_all.py --only data tokenize  # a subset; the others keep their last figures

Runs the steps one after another (never side by side: they would time each other's load) as
children of this process's own process group, so Ctrl-C stops them all. Each step writes its own
JSON under benchmarks/out/; this script adds the wall time of `make demo` (cold Tune storage, warm
data cache) and `make figures`, and writes benchmarks/report.json and benchmarks/report.md: the
headline figures next to their targets.
"""
from __future__ import annotations

import os
import sys

# benchmarks/tokenize.py would shadow the stdlib `tokenize` when this folder is sys.path[0]
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import argparse
import json
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "benchmarks" / "out"


@dataclass(frozen=True)
class Step:
    name: str
    argv: tuple[str, ...]
    json_out: str | None          # the step's own JSON (under benchmarks/out), None for make targets


def steps(py: str, device: str, scratch: Path) -> list[Step]:
    demo_args = f"--storage-path {scratch}/storage --results-root {scratch}/results --name bench-demo"
    return [
        Step("data", (py, "benchmarks/data.py", "--n", "2000"), "data.json"),
        Step("tokenize", (py, "benchmarks/tokenize.py"), "tokenize.json"),
        Step("detector_noise", (py, "benchmarks/detector_noise.py"), "detector_noise.json"),
        Step("detector_noise_seed1", (py, "benchmarks/detector_noise.py", "--noise-seed", "1", "--out",
                                      str(OUT / "detector_noise_seed1.json")), "detector_noise_seed1.json"),
        Step("detector_noise_seed2", (py, "benchmarks/detector_noise.py", "--noise-seed", "2", "--out",
                                      str(OUT / "detector_noise_seed2.json")), "detector_noise_seed2.json"),
        Step("detector_noise_cinc2021", (py, "benchmarks/detector_noise.py", "--records", "cinc2021", "--out",
                                         str(OUT / "detector_noise_cinc2021.json")), "detector_noise_cinc2021.json"),
        Step("detector_noise_ptbxl", (py, "benchmarks/detector_noise.py", "--records", "ptbxl", "--out",
                                      str(OUT / "detector_noise_ptbxl.json")), "detector_noise_ptbxl.json"),
        Step("models", (py, "benchmarks/models.py", "--device", device, "--rounds", "2"), "models.json"),
        Step("ray_overhead", (py, "benchmarks/ray_overhead.py"), "ray_overhead.json"),
        Step("make_demo", ("make", "demo", f"DEMO_ARGS={demo_args}"), None),
        Step("make_figures", ("make", "figures"), None),
    ]


def run_step(step: Step) -> dict:
    t = time.perf_counter()
    proc = subprocess.run(step.argv, cwd=REPO, capture_output=True, text=True, check=False)
    res = {"argv": list(step.argv), "rc": proc.returncode, "wall_s": round(time.perf_counter() - t, 2)}
    if proc.returncode != 0:
        res["error_tail"] = (proc.stdout[-1500:] + proc.stderr[-1500:]).strip()
    print(f"{step.name}: rc={proc.returncode} in {res['wall_s']} s", flush=True)
    return res


def _rate(data: dict, fs: int) -> dict:
    return next((r for r in data.get("rates", []) if r.get("fs") == fs), {})


def headline(results: dict) -> list[dict]:
    """The figures the issues ask for, each with its target (None: no target, just reported)."""
    rows: list[dict] = []

    def add(what: str, value, unit: str, target: str | None = None, met: bool | None = None) -> None:
        rows.append({"figure": what, "value": value, "unit": unit, "target": target, "met": met})

    d = results.get("data", {}).get("json") or {}
    if d:
        v = d["synth_100hz"]["records_per_s"]
        add("synth generation, 100 Hz, 10 s x 12 leads", round(v), "records/s", ">= 500", v >= 500)
        add("synth generation, 500 Hz", round(d["synth_500hz"]["records_per_s"]), "records/s")
        p = d["prepare_ptbxl_tree"]
        add(f"prepare, {p['records']}-record PTB-XL tree, 1 worker", round(p["workers_1"]["records_per_s"]), "records/s")
        add(f"prepare, {p['records']}-record PTB-XL tree, 2 workers", round(p["workers_2"]["records_per_s"]), "records/s")
    t = results.get("tokenize", {}).get("json") or {}
    if t:
        for fs in (100, 500):
            r = _rate(t, fs)
            if r:
                add(f"tokenizer, {fs} Hz, one record at a time", round(r["records_per_s_one_by_one"]), "records/s")
                add(f"tokenizer / wfdb.rdsamp time, {fs} Hz", round(r["ratio_tokenize_one_to_rdsamp"], 2), "x",
                    "< 1 (cheaper than reading)", r["ratio_tokenize_one_to_rdsamp"] < 1)
                add(f"tokenizer (12 leads) / neurokit2.ecg_peaks (1 lead), {fs} Hz",
                    round(r["ratio_tokenize_one_to_nk_one_lead"], 2), "x")
        c = t.get("corpus", {})
        if c:
            add(f"tokenize a PTB-XL-sized corpus ({c['records']} records, {c['n_jobs']} processes)",
                round(c["tokenize_corpus_s"], 1), "s", "< 60", c["tokenize_corpus_s"] < 60)
    for step, seed_note in (("detector_noise", "noise seed 0"), ("detector_noise_seed1", "noise seed 1, held out"),
                            ("detector_noise_seed2", "noise seed 2, held out"),
                            ("detector_noise_cinc2021", "CinC 2021 records, held out, peer-agreement reference"),
                            ("detector_noise_ptbxl", "PTB-XL release, 100 Hz, held out, peer-agreement reference")):
        dn = results.get(step, {}).get("json") or {}
        for cond, r in (dn.get("f1") or {}).items():
            peer = max(r["neurokit2"]["f1"], r["xqrs"]["f1"])      # on lead II (detector_noise.best_peer)
            for det in ("ours", "ours, select"):
                if det in r:
                    add(f"R-peak F1, {dn['windows']} real 10-s windows, {seed_note}, {cond}: {det} / neurokit2 / xqrs",
                        f"{r[det]['f1']:.4f} / {r['neurokit2']['f1']:.4f} / {r['xqrs']['f1']:.4f}", "F1",
                        ">= max(neurokit2, xqrs)", r[det]["f1"] >= peer)
        sw = dn.get("ptbxl_select_changed")
        if sw and step == "detector_noise":
            add("clean real PTB-XL records whose beats `select` changes", f"{sw['changed']} of {sw['records']}",
                "records")
    m = results.get("models", {}).get("json") or {}
    for r in m.get("rows", []):
        add(f"{r['model']}: params / train / infer ({m.get('device_name', m.get('device'))}, batch {m.get('batch')})",
            f"{r['params']:,} / {r['train_samples_per_s']:.0f} / {r['infer_samples_per_s']:.0f}", "- / samples/s")
    for k, v in (m.get("ratios") or {}).items():
        add(f"train throughput ratio {k}", round(v, 2), "x", ">= 2", v >= 2)
    o = results.get("ray_overhead", {}).get("json") or {}
    if o:
        add("Ray smoke sweep: wall / (in-trial s / concurrency)", o["ratio_in_trial"], "x", "<= 1.3",
            o["ratio_in_trial"] <= 1.3)
        add("Ray smoke sweep: wall / (optimizer-step s / concurrency)", o["ratio_train"], "x")
        add("Ray smoke sweep wall time", o["wall_s"], "s")
    for name, what, target, limit in (("make_demo", "`make demo` wall time", "<= 300 (smoke study)", 300),
                                      ("make_figures", "`make figures` wall time", "<= 20", 20)):
        s = results.get(name)
        if s:
            ok = s["rc"] == 0
            add(what, s["wall_s"] if ok else f"failed (rc {s['rc']})", "s", target, ok and s["wall_s"] <= limit)
    return rows


def markdown(report: dict) -> str:
    lines = [f"# Benchmark report ({report['machine']['device']})", "",
             f"Generated by `python benchmarks/run_all.py` at commit `{report['git_commit'][:10]}`"
             f"{' (dirty tree)' if report['git_dirty'] else ''}, {report['machine']['cpus']} CPUs, "
             f"Python {report['machine']['python']}. Raw figures: `benchmarks/out/*.json`.", "",
             "| figure | value | unit | target | met |", "|---|---:|---|---|---|"]
    for r in report["headline"]:
        met = "" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(f"| {r['figure']} | {r['value']} | {r['unit']} | {r['target'] or ''} | {met} |")
    failed = [n for n, s in report["steps"].items() if s.get("rc")]
    if failed:
        lines += ["", f"Failed steps: {', '.join(failed)} (see `error_tail` in report.json)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="cpu", help="device for the model benchmark (cpu or cuda)")
    ap.add_argument("--only", nargs="*", default=None, help="run only these steps; others reuse their last JSON")
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "report.json"))
    a = ap.parse_args(argv)
    try:
        os.setpgrp()                      # one process group: Ctrl-C or a kill of the group stops every step
    except OSError:
        pass
    # the code under test, read before the steps rewrite their own JSON under benchmarks/out/
    sys.path.insert(0, str(REPO))
    from beat_ray.train.results import git_info
    commit, dirty = git_info(str(REPO))
    scratch = Path(tempfile.mkdtemp(prefix="bench_all_"))
    py = sys.executable
    previous = json.loads(Path(a.out).read_text()) if Path(a.out).exists() else {}
    results: dict[str, dict] = {}
    try:
        for step in steps(py, a.device, scratch):
            if a.only is not None and step.name not in a.only:
                if step.name in previous.get("steps", {}):
                    results[step.name] = previous["steps"][step.name]
                continue
            results[step.name] = run_step(step)
            if step.json_out and (OUT / step.json_out).exists() and results[step.name]["rc"] == 0:
                results[step.name]["json"] = json.loads((OUT / step.json_out).read_text())
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    device = "cpu"
    if a.device != "cpu":
        device = (results.get("models", {}).get("json") or {}).get("device_name", a.device)
    report = {"git_commit": commit, "git_dirty": dirty, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
              "machine": {"device": device, "cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()},
              "steps": results}
    report["headline"] = headline(results)
    out = Path(a.out)
    out.write_text(json.dumps(report, indent=1, default=str) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"written: {out} and {out.with_suffix('.md')}")
    return 1 if any(s.get("rc") for s in results.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
