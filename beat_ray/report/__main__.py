"""`python -m beat_ray.report`: rebuild every paper table and figure from `results/` (make figures).

`--claims` writes paper_figures/CLAIMS.md, the paper's claims answered per preset, and the same text
into README.md between its claims markers.

`--summary RESULTS_DIR` instead prints one study folder's table (and writes its figure to
RESULTS_DIR/summary/): what every study prints when it ends.

Exit codes: 0 built; 2 missing or partial results (one message naming each gap, nothing written).
"""
from __future__ import annotations

import argparse
import sys
import time

from beat_ray.data.sources import default_realdata
from beat_ray.report.load import ResultsError
from beat_ray.report.stats import MARGIN, N_BOOT, SEED


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m beat_ray.report", description=__doc__.splitlines()[0])
    p.add_argument("--results", default="results", help="results root holding <study>/<preset>/ (default: results)")
    p.add_argument("--out", default="paper_figures", help="output folder (default: paper_figures)")
    p.add_argument("--preset", default="cpu", help="which preset's results to draw (default: cpu); every study "
                                                    "of it must exist")
    p.add_argument("--all", action="store_true",
                   help="build every preset with results into OUT/<preset>/ (what `make figures` runs)")
    p.add_argument("--claims", action="store_true",
                   help="write OUT/CLAIMS.md (the paper's claims answered per preset) and embed it in README.md "
                        "(make figures runs it after --all)")
    p.add_argument("--summary", metavar="RESULTS_DIR", default=None,
                   help="print the table of one study folder (results/<study>/<preset>) and write its figure "
                        "to RESULTS_DIR/summary/")
    p.add_argument("--realdata", default=None,
                   help="real-record folder with ptbdb/s0010_re for Fig. 4 "
                        "(default: $BEAT_RAY_REALDATA, else <repo>/../shared/realdata)")
    p.add_argument("--n-boot", type=int, default=N_BOOT, help=f"bootstrap resamples (default: {N_BOOT})")
    p.add_argument("--seed", type=int, default=SEED, help=f"bootstrap RNG seed (default: {SEED})")
    p.add_argument("--margin", type=float, default=MARGIN,
                   help=f"non-inferiority margin m for 'matches' and 'recovers': the lower 95%% bound of the paired "
                        f"difference must be above -m (default: {MARGIN})")
    a = p.parse_args(argv)
    t0 = time.perf_counter()
    from beat_ray.report.build import run, run_all

    try:
        if a.summary:
            from beat_ray.report.summary import summarize
            try:
                print(summarize(a.summary, n_boot=a.n_boot, seed=a.seed, margin=a.margin).text())
            except ResultsError as exc:
                print(f"no summary for {a.summary}:\n" + "\n".join(f"  - {p}" for p in exc.problems),
                      file=sys.stderr)
                return 2
            return 0
        if a.claims:
            from beat_ray.report.claims import write
            path = write(a.results, a.out, a.realdata or default_realdata(), a.n_boot, a.seed, a.margin)
            print(f"wrote {path} (and its block in README.md) in {time.perf_counter() - t0:.1f} s")
            return 0
        if a.all:
            built = run_all(a.results, a.out, a.realdata or default_realdata(), a.n_boot, a.seed, a.margin)
            files = [f for fs in built.values() for f in fs]
            print("presets: " + ", ".join(f"{p} ({len(fs)} files)" for p, fs in built.items()))
        else:
            files = run(a.results, a.out, a.preset, a.realdata or default_realdata(), a.n_boot, a.seed, a.margin)
    except ResultsError as exc:
        print(exc.message(), file=sys.stderr)
        return 2
    print(f"wrote {len(files)} files to {a.out}/ in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
