"""Issue M: what a researcher sees in the first hour. The demo path prints its answer (the summary
equals the rows), Tune's live table names each trial's coordinates, and progress bars stay sparse
in logs."""
from __future__ import annotations

import re
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pandas as pd
import pytest
from procs import load_presets

from beat_ray.train.runner import table_columns

REPO = Path(__file__).resolve().parents[1]
SHARED_PTBXL = REPO.parent / "shared" / "realdata" / "ptbxl"
VALUE = re.compile(r"^(\d\.\d{3}) \[(\d\.\d{3}), (\d\.\d{3})\]$")


def summary_table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """The label-efficiency table the study printed after its rows: header and cells."""
    lines = stdout[stdout.index("Table 3. Label efficiency"):].splitlines()[1:]
    rows = [[c.strip() for c in ln.strip().strip("|").split("|")] for ln in lines if ln.startswith("|")]
    return rows[0], rows[2:]


@pytest.mark.ray
def test_demo_prints_summary_equal_to_rows(beat_ray_cache, tmp_path):
    res = tmp_path / "results"
    cmd = [sys.executable, "experiments/data_efficiency.py", "--preset", "smoke", "--set", "n_records=300",
           "--set", "epochs=2", "--results-root", str(res), "--storage-path", str(tmp_path / "st"), "--name", "demo"]
    run = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = run.stdout
    rows = pd.read_parquet(res / "data_efficiency" / "smoke" / "trials.parquet")
    header, table = summary_table(out)
    col = {h: i for i, h in enumerate(header)}
    want = rows.groupby(["config/model", "config/label_fraction"])["test/macro_auc"].mean()
    steps = rows.groupby("config/model")["optimizer_steps"].nunique()
    assert (steps == 1).all(), steps                  # matched budget: one step count per model, every fraction
    seen = 0
    for cells in table:
        model, f = cells[col["Model"]], float(cells[col["Labels"]].rstrip("%")) / 100
        m = VALUE.match(cells[col["Macro-AUC"]])
        assert m, cells
        mean, lo, hi = map(float, m.groups())
        assert mean == float(f"{want[(model, f)]:.3f}"), (model, f, cells, want[(model, f)])
        assert lo <= mean <= hi
        assert cells[col["Optimizer steps"]] == str(int(rows.loc[rows["config/model"] == model, "optimizer_steps"].iloc[0]))
        seen += 1
    assert seen == len(want) == rows.groupby(["config/model", "config/label_fraction"]).ngroups
    fig = Path(re.search(r"^figure: (\S+\.png)$", out, re.MULTILINE).group(1))
    fig = fig if fig.is_absolute() else REPO / fig            # printed relative to the cwd when under it
    assert fig == res / "data_efficiency" / "smoke" / "summary" / "fig1_data_efficiency.png"
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and fig.with_suffix(".pdf").is_file()
    # Tune's live table: one column per grid coordinate, filled with the trial's values
    head = [ln for ln in out.splitlines() if ln.startswith("| Trial name")][-1]      # the final table
    cols = [c.strip() for c in head.strip("|").split("|")]
    for c in ("model", "task", "fraction", "seed", "fold", "test AUC"):
        assert c in cols, cols
    final = out[out.rindex(head):].splitlines()
    body = [[c.strip() for c in ln.strip("|").split("|")] for ln in final if ln.startswith("| trainable_")]
    assert all(r[cols.index("status")] == "TERMINATED" for r in body)
    got = {(r[cols.index("model")], float(r[cols.index("fraction")]), int(r[cols.index("seed")])) for r in body}
    assert got == set(zip(rows["config/model"], rows["config/label_fraction"], rows["seed"]))
    # the same summary from the report CLI, for any study folder
    again = subprocess.run([sys.executable, "-m", "beat_ray.report", "--summary",
                            str(res / "data_efficiency" / "smoke")], cwd=REPO, capture_output=True, text=True,
                           timeout=300, check=True).stdout
    assert summary_table(again) == (header, table)


def test_tune_table_columns_name_the_grid():
    cells = load_presets("data_efficiency")["smoke"].cells()
    cols = table_columns(cells)
    assert cols["trial/model"] == "model" and cols["trial/label_fraction"] == "fraction"
    assert {"trial/seed", "trial/test_fold", "trial/task"} <= set(cols)
    assert "trial/model_kwargs" in cols            # varies between the two models
    assert "trial/epochs" not in cols              # the same in every cell: no column
    bench = load_presets("benchmark")["real"].cells()
    assert "trial/recipe" in table_columns(bench)  # both recipes in one sweep


def test_progress_bar_sparse_off_a_terminal():
    from beat_ray.progress import progress_bar

    class Tty(StringIO):
        def isatty(self) -> bool:
            return True

    log, tty = StringIO(), Tty()
    for stream in (log, tty):
        for _ in progress_bar(range(200_000), desc="x", file=stream):
            pass
    assert len(re.split(r"[\r\n]+", log.getvalue().strip())) <= 3      # first, last (and one more at most)
    assert "200000/200000" in re.split(r"[\r\n]+", log.getvalue().strip())[-1]
    assert len(re.split(r"[\r\n]+", tty.getvalue().strip())) >= 1     # a terminal keeps tqdm's own pace


@pytest.mark.skipif(not (SHARED_PTBXL / "ptbxl_database.csv").is_file(), reason="../shared/realdata/ptbxl absent")
def test_prepare_prints_few_progress_lines_in_a_log(tmp_path):
    """Preparing the 987-record PTB-XL release with stdout and stderr redirected (as in a Ray job's log)."""
    env = {**__import__("os").environ, "BEAT_RAY_CACHE": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-m", "beat_ray.data", "prepare", "--dataset", "ptbxl",
                          "--root", str(SHARED_PTBXL), "--fs", "100", "--task", "superdiagnostic"],
                         cwd=REPO, capture_output=True, text=True, timeout=600, env=env, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    text = run.stdout + run.stderr
    updates = [s for s in re.split(r"[\r\n]+", text) if s.strip()]
    bar = [s for s in updates if s.startswith("prepare ptbxl/")]
    assert bar and re.search(r"\| (\d+)/\1 \[", bar[-1]), bar[-3:]          # the final redraw: done
    assert len(bar) <= 6, f"{len(bar)} progress lines/redraws:\n" + "\n".join(bar[:50])   # tqdm's default: ~40
