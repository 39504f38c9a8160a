"""Issue E: `python -m beat_ray.report` rebuilds every table and figure from a results tree.

Golden numbers come from tests/report_fixture.py, whose scores give each class an AUC of k/16;
bootstrap CIs are checked against a plain scikit-learn loop over the same resamples.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from formats import realdata
from report_fixture import (
    CLASSES,
    FIXTURE_COMMAND,
    LABELS,
    make_results,
    predictions,
)
from sklearn.metrics import roc_auc_score

from beat_ray.report import analysis as an
from beat_ray.report import build, stats
from beat_ray.report.load import NO_COMMAND, ResultsError, load_all

REPO = Path(__file__).resolve().parents[1]
N_BOOT = 100
FILES = sorted([f"table{i}_{n}.{e}" for i, n in enumerate(
    ["benchmark", "ablations", "label_efficiency", "model_cost", "noise_robustness", "lead_ii_share"], 1)
    for e in ("md", "tex")] + [f"{f}.{e}" for f in ("fig1_data_efficiency", "fig2_noise_robustness",
                                                      "fig3_interpretability", "fig4_tokenization")
                                for e in ("png", "pdf")] + ["README.md"])


# ------------------------------------------------------------------ the AUC behind every CI
def test_midrank_auc_equals_sklearn_with_ties_and_resample_weights():
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 60))
        y = rng.integers(0, 2, n)
        s = rng.integers(0, 6, n) / 5.0                 # many ties
        if 0 < y.sum() < n:
            assert stats.auc_midrank(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        else:
            assert np.isnan(stats.auc_midrank(y, s))    # sklearn raises: one label value
    n, b = 40, 50
    y = rng.integers(0, 2, (n, 3))
    s = rng.normal(size=(2, n, 3)).round(1)
    w = stats.resample_weights(n, b, seed=7)
    idx = np.random.default_rng(7).integers(0, n, (b, n))
    assert np.array_equal(w, np.stack([np.bincount(i, minlength=n) for i in idx]))
    got = stats.class_auc(y, s, w)
    for k in range(2):
        for j in range(b):
            for c in range(3):
                yy = y[idx[j], c]
                want = roc_auc_score(yy, s[k, idx[j], c]) if 0 < yy.sum() < n else np.nan
                assert got[k, j, c] == pytest.approx(want, abs=1e-12, nan_ok=True)


def test_paired_delta_is_the_difference_on_each_shared_resample():
    """stats.paired_delta: a minus b, point on the full set and the CI over the same resamples of records and
    seeds for both (two-level bootstrap), checked against scikit-learn on the resamples drawn by hand."""
    rng = np.random.default_rng(5)
    n, b, cols = 50, 200, [0, 2]
    y = np.stack([np.arange(n) % 2, np.arange(n) % 3 == 0, np.arange(n) % 5 == 0], 1).astype(int)
    a, c = rng.normal(size=(2, n, 3)) + y, rng.normal(size=(2, n, 3))
    w = stats.resample_weights(n, b, seed=1)
    idx = np.random.default_rng(1).integers(0, n, (b, n))
    seed_draws = np.random.default_rng([stats.SEED, 2]).multinomial(2, [0.5, 0.5], size=b)

    def macro_sk(s, rows, sw=(1, 1)):               # mean over the drawn seeds of the macro-AUC over `cols`
        per = [np.mean([roc_auc_score(y[rows, j], s[k, rows, j]) for j in cols]) for k in range(2)]
        return np.average(per, weights=sw)
    full = np.arange(n)
    point, lo, hi = stats.paired_delta(y, a, c, w, cols)
    assert point == pytest.approx(macro_sk(a, full) - macro_sk(c, full), abs=1e-12)
    diffs = [macro_sk(a, i, sw) - macro_sk(c, i, sw) for i, sw in zip(idx, seed_draws)]
    assert (lo, hi) == pytest.approx(tuple(np.percentile(diffs, [2.5, 97.5])), abs=1e-12)
    assert lo > 0                                   # a carries the labels, c is noise


def test_ci_holds_the_spread_between_seeds():
    """Planted: model a learned the labels at seed 0 and nothing at seed 1; b learned nothing. Averaged over
    both seeds in every resample, Δ = a − b has a CI far from 0, which says more than two runs can: one of
    them learned nothing. Resampling seeds too, the CI reaches down to that run."""
    rng = np.random.default_rng(0)
    n = 400
    y = (np.arange(n)[:, None] % np.array([2, 3]) == 0).astype(int)
    a = np.stack([y + 0.5 * rng.normal(size=y.shape), rng.normal(size=y.shape)])
    b = rng.normal(size=(2, n, 2))
    w = stats.resample_weights(n, 1000)
    point, lo, hi = stats.paired_delta(y, a, b, w)
    averaged = stats.ci(stats.macro(stats.class_auc(y, a, w), seed_w=np.ones((1000, 2)))
                        - stats.macro(stats.class_auc(y, b, w), seed_w=np.ones((1000, 2))))
    assert point > 0.2 and averaged[0] > 0.15                   # the seeds-averaged CI: ~0.25 +- 0.03
    assert lo < 0.05 and hi > 0.4                               # both runs' Δ inside: ~0 and ~0.5
    one_seed = stats.paired_delta(y, a[:1], b[:1], w)           # a single seed has no second level
    assert one_seed[1:] == pytest.approx(stats.ci(stats.macro(stats.class_auc(y, a[:1], w), seed_w=np.ones((1000, 1)))
                                                  - stats.macro(stats.class_auc(y, b[:1], w), seed_w=np.ones((1000, 1)))))


def test_bootstrap_redraws_resamples_that_lose_a_class():
    """The PTB-XL benchmark's rule: a resample in which a class has no positive or no negative is
    rejected and redrawn (from the same generator), not averaged over fewer classes."""
    n, b = 30, 400
    y = np.zeros((n, 4), int)
    y[:2, 0] = 1                                    # 2 positives: lost in ~13% of draws
    y[:, 1] = np.arange(n) % 2
    y[1:, 2] = 1                                    # 1 negative: lost in ~36% of draws
    # class 3 has no positive at all: never defined, so it rejects nothing
    w, redrawn = stats.valid_resamples(y, b, seed=5)
    rng = np.random.default_rng(5)                  # the draws by hand, batch after batch
    raw = np.concatenate([np.stack([np.bincount(i, minlength=n) for i in rng.integers(0, n, (b, n))])
                          for _ in range(3)])
    pos = raw @ y[:, :3]
    ok = (pos > 0).all(1) & (pos < n).all(1)
    assert ok.sum() >= b and 0 < redrawn == int(np.flatnonzero(ok)[b - 1]) + 1 - b
    assert np.array_equal(w, raw[ok][:b])
    assert np.isfinite(stats.class_auc(y[:, :3], np.random.default_rng(0).normal(size=(1, n, 3)), w)).all()
    boot = an.Bootstrap(b, 5)
    assert np.array_equal(boot.weights(y), w) and f"{redrawn:,} draws rejected and redrawn" in boot.redraw_text()
    y_easy = np.tile([[1, 0], [0, 1]], (20, 1))      # nothing to reject: the plain draws, unchanged
    w_easy, r_easy = stats.valid_resamples(y_easy, 50, seed=2)
    assert r_easy == 0 and np.array_equal(w_easy, stats.resample_weights(40, 50, seed=2))


def test_rows_of_one_cell_with_different_configs_are_refused(tmp_path):
    """Rows used to be keyed by model, data and seed: a rerun at other epochs silently replaced the
    first. Now the report names the field; train noise makes a cell of its own."""
    from beat_ray.report.load import read_study
    root = make_results(tmp_path / "results")
    path = root / "benchmark" / "cpu" / "trials.parquet"
    rows = pd.read_parquet(path)
    first = rows.index[(rows["config/model"] == "beatnet") & (rows["config/task"] == "all")][0]
    rows.loc[first, "config/epochs"] = 20
    rows.to_parquet(path, index=False)
    problems: list[str] = []
    assert read_study(root, "benchmark", "cpu", problems) is None
    assert len(problems) == 1 and "cell (beatnet, synth, all" in problems[0] and "epochs: 10 vs 20" in problems[0]
    rows.loc[first, "config/epochs"] = 10
    rows["config/train_noise"] = None
    rows.loc[first, "config/train_noise"] = "ma:12"
    rows.to_parquet(path, index=False)
    study = read_study(root, "benchmark", "cpu", problems := [])
    assert not problems and "beatnet (train noise ma:12)" in set(study.rows["_model"])
    rows["config/threads"] = np.arange(len(rows))   # where it ran is not what it ran
    rows.to_parquet(path, index=False)
    assert read_study(root, "benchmark", "cpu", problems := []) is not None and not problems


def test_recovery_needs_every_larger_fraction():
    from beat_ray.report.efficiency import recovery
    f = [0.05, 0.2, 0.5]                                   # 100% is the reference itself
    lo = np.array([[-0.2], [0.0], [-0.02]])                # 50% misses the margin: 20% does not count
    assert recovery(f, lo, 0.01).tolist() == [1.0]
    assert recovery(f, np.array([[-0.2], [0.0], [-0.005]]), 0.01).tolist() == [0.2]
    assert recovery(f, np.array([[-0.009], [0.0], [0.0]]), 0.01).tolist() == [0.05]


# ------------------------------------------------------------------ golden tables
def _reference_ci(per_seed_ks, n_boot=N_BOOT, cols=None):
    """95% CI of the mean-over-seeds macro-AUC with sklearn, over the report's resamples: records drawn by
    numpy's generator at stats.SEED, seeds by a multinomial from the generator at [stats.SEED, n_seeds]."""
    idx = np.random.default_rng(stats.SEED).integers(0, len(LABELS), (n_boot, len(LABELS)))
    cols = range(len(CLASSES)) if cols is None else cols
    n_seeds = len(per_seed_ks)
    seed_draws = (np.ones((n_boot, 1)) if n_seeds == 1 else
                  np.random.default_rng([stats.SEED, n_seeds]).multinomial(n_seeds, [1 / n_seeds] * n_seeds, n_boot))
    dist = []
    for i, sw in zip(idx, seed_draws):
        per_seed = []
        for ks in per_seed_ks:
            s = predictions(ks)
            aucs = [roc_auc_score(LABELS[i, c], s[i, c]) for c in cols if 0 < LABELS[i, c].sum() < len(i)]
            per_seed.append(np.mean(aucs) if aucs else np.nan)
        dist.append(np.average(per_seed, weights=sw))
    return np.array(dist)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = make_results(tmp_path_factory.mktemp("results"))
    out = tmp_path_factory.mktemp("build") / "paper_figures"
    inputs = load_all(root, "cpu", realdata())
    boot = an.Bootstrap(N_BOOT)
    nums = build.compute(inputs, boot)
    build.run(root, out, "cpu", realdata(), n_boot=N_BOOT)
    return root, out, nums


def _md(out: Path, name: str) -> str:
    return (out / f"{name}.md").read_text()


def test_table1_benchmark_exact(built):
    _, out, nums = built
    by = {(r.model, r.data): r for r in nums["benchmark"]}
    assert by[("beatnet", "synth/all")].macro.mean == 0.828125        # seeds (1+.75+.5+.875)/4, (1+1+.75+.75)/4
    assert by[("resnet1d_wang", "synth/all")].macro.mean == 0.8125
    assert by[("xresnet1d101", "synth/all")].macro.mean == 0.953125
    assert by[("beatnet", "synth/rhythm")].macro == an.Estimate(1.0, 1.0, 1.0)
    ref = stats.ci(_reference_ci([(16, 12, 8, 14), (16, 16, 12, 12)]))
    assert (by[("beatnet", "synth/all")].macro.lo, by[("beatnet", "synth/all")].macro.hi) == pytest.approx(ref, abs=1e-12)
    md = _md(out, "table1_benchmark")
    lo, hi = ref
    assert f"| beatnet | 0.828 [{lo:.3f}, {hi:.3f}] | **1.000 [1.000, 1.000]** |" in md
    assert "| xresnet1d101 | **0.953 [" in md and md.rstrip().endswith("| – |")   # best bold; no rhythm run
    assert "| resnet1d_wang | 0.812 [" in md
    tex = (out / "table1_benchmark.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex
    assert "resnet1d\\_wang & 0.812" in tex and "\\textbf{0.953 [" in tex


def test_table2_ablations_exact_and_paired(built):
    _, out, nums = built
    ref, var = nums["ablations"]
    assert ref.result.model == "beatnet" and ref.drop is None
    assert var.result.macro.mean == 0.65625 and var.drop.mean == 0.21875
    assert var.result.groups["rhythm"].mean == 0.5625 and var.group_drops["rhythm"].mean == 0.4375
    assert var.group_drops["morphology"] == an.Estimate(0.0, 0.0, 0.0)        # same scores: paired drop is 0
    d = _reference_ci([(16, 16, 12, 12)] * 2) - _reference_ci([(8, 10, 12, 12)] * 2)
    assert (var.drop.lo, var.drop.hi) == pytest.approx(stats.ci(d), abs=1e-12)
    md = _md(out, "table2_ablations")
    assert "| Model | Macro-AUC | Δ vs beatnet | rhythm | Δ rhythm | morphology |" in md
    assert "| beatnet_no_temporal | 0.656 [" in md and "| +0.219 [" in md and "| +0.000 [+0.000, +0.000] |" in md


def test_table3_label_efficiency_hand_computed(built):
    _, out, nums = built
    curves = {c.model: c for c in nums["efficiency"]}
    b = curves["beatnet"]
    # seeds (constant, perfect) at 20%: AUC 0.5 or 1.0 in every record resample, so the two-level
    # bootstrap's Δ is -0.5, -0.25 or 0 by the seed draw alone: CI [-0.5, 0], 20% does not recover.
    assert [p.auc.mean for p in b.points] == [0.5, 0.75, 1.0, 1.0]
    assert b.points[1].delta == an.Estimate(-0.25, -0.5, 0.0)
    assert b.points[2].delta == an.Estimate(0.0, 0.0, 0.0) and b.points[2].recovers(0.01)
    # per resample 20% recovers exactly when both drawn seeds are the perfect one (1 in 4): CI [20%, 50%]
    assert b.recovery == 0.5 and b.recovery_ci == (0.2, 0.5)
    # resnet1d_wang: perfect at 20% but not at 50%, so "this and every larger fraction" fails until 100%.
    assert curves["resnet1d_wang"].points[1].recovers(0.01) and curves["resnet1d_wang"].recovery == 1.0
    md = _md(out, "table3_label_efficiency")
    assert "| Data | Model | Labels | Train records | Optimizer steps | Best epoch | Macro-AUC | Δ vs 100% |" in md
    assert "| synth/all | beatnet | 20% |" in md and "| -0.250 [-0.500, +0.000] | no |" in md
    assert "| 50% [20%, 50%] |" in md                                   # beatnet's recovery fraction
    assert "non-inferiority margin m = 0.01" in md


def test_cost_noise_and_attention_tables(built):
    _, out, nums = built
    assert "| beatnet | synth/all | 1,000 | 208 | 5.0 ± 1.4 | 11.0 | 2 |" in _md(out, "table4_model_cost")
    md = _md(out, "table5_noise_robustness")
    assert "| Model | Noise | clean | 24 dB | 0 dB | -6 dB |" in md
    assert "| beatnet | baseline wander | 1.000 [1.000, 1.000] | 1.000 | 0.875 | 0.625 |" in md
    # resnet1d_wang: AUC; Δ level (beatnet − it); Δ robustness (its AUC loss minus beatnet's), paired CIs
    assert "| resnet1d_wang | baseline wander | 1.000 [1.000, 1.000] | 1.000; +0.000 [+0.000, +0.000]; " \
           "+0.000 [+0.000, +0.000] | 0.750; +0.125 [" in md
    assert "| resnet1d_wang | muscle artefact | 1.000 [1.000, 1.000] | 1.000; +0.000 [+0.000, +0.000]; " \
           "+0.000 [+0.000, +0.000] | 0.750; +0.000 [+0.000, +0.000]; +0.000 [+0.000, +0.000] | 0.500; +0.000" in md
    arms = {a.model: a for a in nums["noise"]}
    r = arms["resnet1d_wang"]
    assert r.delta[("bw", -6.0)].mean == pytest.approx(0.125) and r.delta_drop[("bw", 0.0)].mean == pytest.approx(0.125)
    # beatnet's bw AUC at 0 dB is never below resnet's in a resample (equal where no misordered pair is drawn)
    assert r.delta[("bw", 0.0)].lo == 0 and r.delta[("bw", 0.0)].hi > 0.125
    assert arms["beatnet"].delta == {} and r.pooled_over == "2 seeds on test fold 10"
    from beat_ray.report.robustness import verdict
    (line,) = verdict(nums["noise"])
    # 2 seeds of 8 identical records: no CI excludes 0; the largest difference is bw's (0 or -6 dB: a tie)
    assert line.startswith("synth/all, beatnet vs resnet1d_wang: beatnet loses less AUC at 0 of 6 (type, SNR) "
                           "cells and more at 0"), line
    assert "largest Δ robustness +0.125 [+0.000, " in line and "(bw " in line and "smallest +0.000" in line
    res = {r.model: r for r in nums["attribution"]}
    att = res["beatnet"]
    assert att.data == "synth/all" and att.rhythm == ["SR", "AFIB"] and att.n_seeds == 2
    assert att.shares["rhythm"].mean == pytest.approx(0.4) and att.shares["non-rhythm"].mean == pytest.approx(0.3)
    assert att.shares["difference"].mean == pytest.approx(0.1)
    assert att.heatmap[0, 1] == pytest.approx(0.4) and att.heatmap[2, 0] == pytest.approx(0.7 / 11)
    assert att.top("SR")[0] == "II" and res["resnet1d_wang"].attention == {}
    # the global attention equals the attribution here, so its summary does too
    assert att.attention["difference"].mean == pytest.approx(0.1)
    # CI: the same record resamples (both seeds are identical, so the seed draw changes nothing), plain loops
    from report_fixture import LEAD_II
    idx = np.random.default_rng(stats.SEED).integers(0, 8, (N_BOOT, 8))
    diff = []
    for i in idx:
        share = [LEAD_II[i][LABELS[i, c] == 1].mean() if LABELS[i, c].any() else np.nan for c in range(4)]
        diff.append(np.nanmean(share[:2]) - np.nanmean(share[2:]))
    assert (att.shares["difference"].lo, att.shares["difference"].hi) == pytest.approx(stats.ci(diff), abs=1e-9)
    md = _md(out, "table6_lead_ii_share")
    assert "| synth/all | beatnet | 8 | 1.000 / 1.000 | 0.400 [" in md and "SR: II 0.400 [" in md


def test_every_file_and_readme(built):
    root, out, _ = built
    assert sorted(os.listdir(out)) == FILES
    for f in FILES:
        assert (out / f).stat().st_size > 0
    assert (out / "fig1_data_efficiency.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "fig4_tokenization.pdf").read_bytes()[:5] == b"%PDF-"
    readme = (out / "README.md").read_text()
    for stem in ("fig1_data_efficiency", "fig2_noise_robustness", "fig3_interpretability", "fig4_tokenization"):
        assert f"]({stem}.png)" in readme and f"({stem}.pdf)" in readme
    for i in range(1, 7):
        assert f"## Table {i}." in readme
    assert "| ablations | `ablations/cpu/trials.parquet` | 4 | `0123456789abcdef0123456789abcdef01234567` | yes |" in readme
    assert "| benchmark | `benchmark/cpu/trials.parquet` | 10 | `0123456789abcdef0123456789abcdef01234567` | no |" in readme
    assert "Source: `ablations/cpu/trials.parquet`, commit `0123456789ab` (dirty)." in readme
    assert "--preset cpu" in readme and str(root) not in readme
    # each launch's command, as its rows record it; rows without one say so instead of a guessed command
    assert f"| benchmark | `0123456789ab` | `{FIXTURE_COMMAND}` | 10 |" in readme
    assert f"| ablations | `0123456789ab` | {NO_COMMAND} | 4 |" in readme


# ------------------------------------------------------------------ the CLI, as `make figures` runs it
PROBE = ("import sys; from beat_ray.report.__main__ import main; rc = main(sys.argv[1:]); "
         "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'torch') or m.startswith('beat_ray.train')); "
         "print('IMPORTED', bad); sys.exit(rc)")


def _cli(*args, seed="0"):
    env = {**os.environ, "PYTHONHASHSEED": seed}
    env.pop("SOURCE_DATE_EPOCH", None)
    return subprocess.run([sys.executable, "-c", PROBE, *map(str, args)], check=False, cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _hashes(folder: Path) -> dict[str, str]:
    return {f: hashlib.sha256((folder / f).read_bytes()).hexdigest() for f in sorted(os.listdir(folder))}


def test_cli_reruns_are_byte_identical_and_never_import_ray(built, tmp_path):
    root, first, _ = built
    runs = []
    for i, seed in enumerate(("1", "12345")):
        out = tmp_path / f"run{i}"
        p = _cli("--results", root, "--out", out, "--realdata", realdata(), "--n-boot", N_BOOT, seed=seed)
        assert p.returncode == 0, p.stderr
        assert "IMPORTED []" in p.stdout
        runs.append(_hashes(out))
    assert runs[0] == runs[1] == _hashes(first)
    assert sorted(runs[0]) == FILES


def _partial(tmp_path: Path) -> Path:
    root = make_results(tmp_path / "results")
    shutil.rmtree(root / "noise_robustness")
    (root / "ablations" / "cpu" / "predictions" / "abl_00003.npz").unlink()
    df = pd.read_parquet(root / "data_efficiency" / "cpu" / "trials.parquet")
    df.drop(columns=["config/label_fraction"]).to_parquet(root / "data_efficiency" / "cpu" / "trials.parquet")
    return root


@pytest.mark.parametrize("case", ["empty", "partial", "no_realdata"])
def test_missing_results_exit_2_with_message_and_write_nothing(tmp_path, case):
    if case == "empty":
        root = tmp_path / "results"
        root.mkdir()
        want = [f"{s}: no results file" for s in ("benchmark", "ablations", "data_efficiency", "noise_robustness")]
    elif case == "partial":
        root = _partial(tmp_path)
        want = ["noise_robustness: no results file", "predictions file missing:", "abl_00003.npz",
                "data_efficiency:", "lacks column(s) ['config/label_fraction']"]
    else:
        root = make_results(tmp_path / "results")
        want = ["real record for Fig. 4 missing:", "nowhere/ptbdb/s0010_re.hea"]
    out = tmp_path / "site" / "paper_figures"
    out.parent.mkdir()
    (out.parent / "keep.txt").write_text("old")
    p = _cli("--results", root, "--out", out, "--realdata", tmp_path / "nowhere" if case == "no_realdata" else realdata())
    assert p.returncode == 2
    assert "Traceback" not in p.stderr + p.stdout
    assert "cannot build the paper figures" in p.stderr and "Nothing was written." in p.stderr
    for w in want:
        assert w in p.stderr, p.stderr
    assert sorted(os.listdir(out.parent)) == ["keep.txt"]           # no output folder, no temp folder


def test_failed_build_leaves_previous_set_untouched(built, tmp_path):
    root = _partial(tmp_path)
    out = tmp_path / "paper_figures"
    out.mkdir()
    (out / "fig1_data_efficiency.png").write_bytes(b"previous")
    with pytest.raises(ResultsError) as exc:
        build.run(root, out, "cpu", realdata(), n_boot=10)
    assert len(exc.value.problems) == 3
    assert os.listdir(out) == ["fig1_data_efficiency.png"]
    assert (out / "fig1_data_efficiency.png").read_bytes() == b"previous"
    assert sorted(os.listdir(tmp_path)) == ["paper_figures", "results"]


def test_detector_arm_is_labelled_and_paired_with_plain_beatnet():
    from beat_ray.report.load import _model_labels, fill_later_fields

    rows = fill_later_fields(pd.DataFrame({"config/model": ["beatnet", "beatnet", "resnet1d_wang"],
                                           "config/detector": [None, "select", None]}))
    labels = list(_model_labels(rows))
    assert labels == ["beatnet", "beatnet (select detector)", "resnet1d_wang"]
    assert an.reference_for("beatnet (select detector)", labels) == "beatnet"
    assert an.reference_for("resnet1d_wang", labels) == "beatnet"
    assert an.reference_for("beatnet (tuned)", ["beatnet", "beatnet (tuned)"]) == "beatnet (tuned)"


def test_palette_keeps_a_models_colour_across_figures():
    """fig1 and Fig. 2 show different model sets; a model's colour must not depend on its neighbours."""
    from beat_ray.report.figures import palette
    alone = palette(["resnet1d_wang", "xresnet1d101"])
    crowded = palette(["beatnet", "beatnet (select detector)", "beatnet (tuned)", "beatnet_no_spatial",
                       "resnet1d_wang", "xresnet1d101", "inception1d", "some_new_model"])
    assert alone["resnet1d_wang"] == crowded["resnet1d_wang"]
    assert alone["xresnet1d101"] == crowded["xresnet1d101"]
    assert len(set(crowded.values())) == len(crowded)             # distinct within one figure
    assert crowded["beatnet (select detector)"] != crowded["beatnet"]
    # past tab10's ten slots a registered model still keeps one colour of its own
    ablations = palette(["beatnet", "beatnet_no_morphology", "beatnet_no_shape", "beatnet_patch"])
    assert ablations["beatnet_no_shape"] == palette(["beatnet_no_shape", "some_new_model"])["beatnet_no_shape"]
    assert len(set(ablations.values())) == 4


def test_table2_caption_names_every_ablations_stand_in():
    """Each ablation of experiments/ablations.py has its stand-in in the Table 2 caption, and only those present."""
    sys.path.insert(0, str(REPO / "experiments"))
    import ablations

    from beat_ray.report.tables import STAND_INS, stand_ins
    assert set(ablations.VARIANTS) - {"beatnet"} == set(STAND_INS)
    assert stand_ins(["beatnet"]) == ""
    assert stand_ins(["beatnet_no_shape", "beatnet"]) == \
        " Stand-ins: beatnet_no_shape (beat CNN replaced by each window's mean level, so no beat shape)."
