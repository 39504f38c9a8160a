"""Issue H's report: cross-fitted (fold-rotation) studies pooled into one prediction per record,
paired CIs against beatnet, and `make figures` (--all) building every preset that has results."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from formats import realdata
from report_fixture import make_results
from sklearn.metrics import roc_auc_score

from beat_ray.data.splits import record_set_hash
from beat_ray.report import analysis as an
from beat_ray.report import rotation, stats
from beat_ray.report.load import ResultsError, read_study
from beat_ray.report.tables import DASH

REPO = Path(__file__).resolve().parents[1]
N_BOOT = 60
CLASSES = ("MI", "NORM")
N_PER_FOLD = 6
RIDS = np.array([f"{i + 1}" for i in range(10 * N_PER_FOLD)])
FOLD = np.repeat(np.arange(1, 11), N_PER_FOLD)
RNG = np.random.default_rng(7)
LABELS = np.stack([np.tile([1, 1, 1, 0, 0, 0], 10), np.tile([0, 1, 0, 1, 0, 1], 10)], 1).astype(np.uint8)


def _scores(quality: float, seed: int) -> np.ndarray:
    """Scores that rank the labels with noise: higher quality, higher AUC (different per model)."""
    r = np.random.default_rng(seed)
    return (quality * LABELS + r.random(LABELS.shape)).astype(np.float32)


def _write_rotation(root: Path, study: str, arms: dict[str, float], dup: bool = False) -> Path:
    folder = root / study / "real"
    (folder / "predictions").mkdir(parents=True)
    rows, n = [], 0
    for model, quality in arms.items():
        cells = [(k, 0) for k in range(1, 11)] + [(10, 1), (10, 2)]
        full = {s: _scores(quality, 100 * s + len(model)) for s in (0, 1, 2)}
        for k, s in cells:
            idx = np.flatnonzero(FOLD == k)
            if dup and model == "resnet1d_wang" and k == 2:
                idx = np.r_[idx, np.flatnonzero(FOLD == 3)[:1]]       # a record tested twice in one rotation
            sc, y = full[s][idx], LABELS[idx]
            tid = f"{study[:3]}_{n:05d}"
            n += 1
            np.savez_compressed(folder / "predictions" / f"{tid}.npz", record_id=RIDS[idx], scores=sc, labels=y,
                                classes=np.array(CLASSES))
            auc = [roc_auc_score(y[:, c], sc[:, c]) for c in range(2)]
            rows.append({"study": study, "preset": "real", "trial_id": tid, "seed": s, "git_commit": "c" * 40,
                         "git_dirty": False, "finished_at": "2026-12-01T00:00:00", "config/model": model,
                         "config/model_kwargs": json.dumps({}), "config/dataset": "ptbxl",
                         "config/task": "superdiagnostic", "config/test_fold": k, "config/recipe": "default",
                         "epoch": 15, "train_seconds": 10.0, "time_total_s": 12.0, "n_params": 1000, "n_train": 48,
                         "n_val": 6, "n_test": len(idx), "val_macro_auc": 0.8, "best_epoch": 15,
                         "test/macro_auc": float(np.mean(auc)), "predictions_file": f"predictions/{tid}.npz",
                         "n_fallback_test": 1 if model == "beatnet" and k == 4 else 0})
    pd.DataFrame(rows).to_parquet(folder / "trials.parquet", index=False)
    return root


def _pooled(model_quality: float, model: str) -> np.ndarray:
    return _pooled_seed(model_quality, model, 0)


def _pooled_seed(model_quality: float, model: str, seed: int) -> np.ndarray:
    full = _scores(model_quality, 100 * seed + len(model))
    order = np.argsort(RIDS, kind="stable")
    return full[order], LABELS[order]


def test_pooled_auc_and_paired_delta_equal_sklearn_on_the_same_resamples(tmp_path):
    root = _write_rotation(tmp_path, "benchmark", {"beatnet": 1.0, "resnet1d_wang": 0.4})
    study = read_study(root, "benchmark", "real", problems := [])
    assert not problems
    res = {r.model: r for r in rotation.pooled_results(study, an.Bootstrap(N_BOOT, 0))}
    assert set(res) == {"beatnet", "resnet1d_wang"}
    w = stats.resample_weights(60, N_BOOT, 0)
    manual = {}
    for m, q in (("beatnet", 1.0), ("resnet1d_wang", 0.4)):
        s, y = _pooled(q, m)
        r = res[m]
        assert r.n_pooled == 60 and r.record_hash == record_set_hash(RIDS)      # every record exactly once
        assert np.array_equal(r.record_id, np.sort(RIDS))
        assert r.pooled.mean == pytest.approx(np.mean([roc_auc_score(y[:, c], s[:, c]) for c in range(2)]), abs=1e-12)
        boot = []
        for b in range(N_BOOT):                         # sklearn on the explicitly resampled records
            idx = np.repeat(np.arange(60), w[b])
            boot.append(np.mean([roc_auc_score(y[idx, c], s[idx, c]) for c in range(2)]))
        manual[m] = np.array(boot)
        assert (r.pooled.lo, r.pooled.hi) == pytest.approx(stats.ci(manual[m]), abs=1e-12)
        rows = study.rows[study.rows["config/model"] == m]
        assert r.per_fold == rows.groupby(rows["config/test_fold"].astype(int))["test/macro_auc"].mean().to_dict()
        # the primary statistic: sklearn's macro-AUC within each fold, seeds averaged, then folds averaged
        per = [np.mean([np.mean([roc_auc_score(y[FOLD[np.argsort(RIDS, kind="stable")] == k][:, c],
                                               sc[FOLD[np.argsort(RIDS, kind="stable")] == k][:, c]) for c in range(2)])
                        for sc in [_pooled_seed(q, m, sd)[0] for sd in ((0, 1, 2) if k == 10 else (0,))]])
               for k in range(1, 11)]
        assert r.fold_mean.mean == pytest.approx(np.mean(per), abs=1e-12)
        assert r.fold_mean.lo <= r.fold_mean.mean <= r.fold_mean.hi
        f10 = study.rows[(study.rows["config/model"] == m) & (study.rows["config/test_fold"] == 10)]
        assert r.n_fold10_seeds == 3 and r.fold10.mean == pytest.approx(f10["test/macro_auc"].mean())
    d = res["resnet1d_wang"].delta
    assert d.mean == pytest.approx(res["beatnet"].pooled.mean - res["resnet1d_wang"].pooled.mean)
    assert (d.lo, d.hi) == pytest.approx(stats.ci(manual["beatnet"] - manual["resnet1d_wang"]), abs=1e-12)
    assert d.lo > 0                                     # the planted gap (quality 1.0 vs 0.4) is found
    assert res["beatnet"].n_fallback == 1 and res["resnet1d_wang"].n_fallback == 0
    assert rotation.non_inferior(d) == "yes"            # beatnet better: within any margin
    assert rotation.non_inferior(an.Estimate(-0.005, -0.0099, 0.0)) == "yes"
    assert rotation.non_inferior(an.Estimate(-0.005, -0.0101, 0.0)) == "no"       # margin 0.01, CI lower bound
    t = rotation.table(list(res.values()), an.Bootstrap(N_BOOT, 0), "real", "table1_benchmark", "T", "x")
    assert f"60 (`{record_set_hash(RIDS)}`)" in t.markdown()


def test_a_score_scale_that_moves_between_folds_costs_pooled_auc_not_per_fold_auc(tmp_path):
    """Two models rank every fold's records identically; one adds a different constant per fold. The
    per-fold Δ is exactly 0 (CI included); the pooled Δ, which ranks fold models together, is not."""
    folder = tmp_path / "benchmark" / "real"
    (folder / "predictions").mkdir(parents=True)
    base = _scores(0.6, 3)
    rows = []
    for model, shift in (("beatnet", 0.0), ("resnet1d_wang", 5.0)):
        for s in (0, 1, 2):
            for k in range(1, 11):
                idx = np.flatnonzero(FOLD == k)
                sc = base[idx] + shift * (k % 3) + 0.01 * s          # a per-fold (and per-seed) offset only
                tid = f"{model[:3]}_{s}_{k:02d}"
                np.savez_compressed(folder / "predictions" / f"{tid}.npz", record_id=RIDS[idx], scores=sc,
                                    labels=LABELS[idx], classes=np.array(CLASSES))
                auc = np.mean([roc_auc_score(LABELS[idx, c], sc[:, c]) for c in range(2)])
                rows.append({"study": "benchmark", "preset": "real", "trial_id": tid, "seed": s, "git_commit": "c" * 40,
                             "git_dirty": False, "finished_at": "2026-12-01T00:00:00", "config/model": model,
                             "config/model_kwargs": "{}", "config/dataset": "ptbxl", "config/task": "superdiagnostic",
                             "config/test_fold": k, "config/recipe": "default", "epoch": 15, "train_seconds": 1.0,
                             "time_total_s": 1.0, "n_params": 10, "n_train": 48, "n_val": 6, "n_test": len(idx),
                             "val_macro_auc": 0.8, "best_epoch": 15, "test/macro_auc": float(auc),
                             "predictions_file": f"predictions/{tid}.npz", "n_fallback_test": 0})
    pd.DataFrame(rows).to_parquet(folder / "trials.parquet", index=False)
    study = read_study(tmp_path, "benchmark", "real", problems := [])
    assert not problems
    res = {r.model: r for r in rotation.pooled_results(study, an.Bootstrap(N_BOOT, 0))}
    r = res["resnet1d_wang"]
    assert r.folds.seed_text() == "3 (0–2)" and len(r.folds.by_fold) == 10
    assert (r.delta_fold_mean.mean, r.delta_fold_mean.lo, r.delta_fold_mean.hi) == (0.0, 0.0, 0.0)
    assert set(r.fold_deltas.values()) == {0.0}
    assert r.delta.lo > 0.05                            # pooled: the shifted model looks worse, wrongly
    assert res["beatnet"].fold_mean.mean == pytest.approx(r.fold_mean.mean, abs=1e-12)


def test_a_record_tested_twice_in_one_rotation_is_refused(tmp_path):
    root = _write_rotation(tmp_path, "benchmark", {"beatnet": 1.0, "resnet1d_wang": 0.4}, dup=True)
    study = read_study(root, "benchmark", "real", [])
    with pytest.raises(ResultsError, match="two test predictions in one rotation"):
        rotation.pooled_results(study, an.Bootstrap(N_BOOT, 0))


def test_make_figures_builds_every_preset_with_results(tmp_path):
    root = make_results(tmp_path / "results")                             # cpu: all four studies
    _write_rotation(root, "benchmark", {"beatnet": 1.0, "xresnet1d101": 0.6})
    _write_rotation(root, "ablations", {"beatnet": 1.0, "beatnet_no_temporal": 0.3})
    out = tmp_path / "paper_figures"
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    p = subprocess.run([sys.executable, "-m", "beat_ray.report", "--all", "--results", root, "--out", out,
                        "--realdata", realdata(), "--n-boot", str(N_BOOT)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert sorted(os.listdir(out)) == ["README.md", "cpu", "real"]
    real = sorted(os.listdir(out / "real"))
    assert real == sorted(["README.md", "fig4_tokenization.pdf", "fig4_tokenization.png", "fig5_benchmark_folds.pdf",
                           "fig5_benchmark_folds.png", "fig6_ablations_folds.pdf", "fig6_ablations_folds.png",
                           "table1_benchmark.md", "table1_benchmark.tex", "table2_ablations.md",
                           "table2_ablations.tex", "table4_model_cost.md", "table4_model_cost.tex",
                           "table5b_recorded_noise.md", "table5b_recorded_noise.tex"])   # ids 1-60 are PTB-XL's
    assert "table6_lead_ii_share.md" in os.listdir(out / "cpu")          # the classic full set for cpu
    readme = (out / "real" / "README.md").read_text()
    assert "Not run for this preset yet: `data_efficiency`, `noise_robustness`" in readme
    t2 = (out / "real" / "table2_ablations.md").read_text()
    assert "| ptbxl/superdiagnostic | beatnet_no_temporal |" in t2 and "Fold rotation" in t2
    index = (out / "README.md").read_text()
    assert index.index("`real`") < index.index("`cpu`") and "positive control" in index


def test_summary_of_a_rotated_study_is_its_pooled_table(tmp_path):
    """`--summary` on a fold-rotation folder prints the pooled numbers (not per-seed cells) and draws Fig. 5."""
    from beat_ray.report.summary import summarize
    root = _write_rotation(tmp_path, "benchmark", {"beatnet": 1.0, "resnet1d_wang": 0.4})
    study = read_study(root, "benchmark", "real", [])
    res = {r.model: r for r in rotation.pooled_results(study, an.Bootstrap(N_BOOT, 0))}
    s = summarize(root / "benchmark" / "real", n_boot=N_BOOT, seed=0)
    text = s.text()
    for m, r in res.items():
        line = next(ln for ln in text.splitlines() if ln.startswith(f"| ptbxl/superdiagnostic | {m} |"))
        assert f"{r.pooled.mean:.3f} [{r.pooled.lo:.3f}, {r.pooled.hi:.3f}]" in line
    assert [p.name for p in s.figures] == ["fig5_benchmark_folds.png"] and s.figures[0].is_file()
    assert s.figures[0].parent == root / "benchmark" / "real" / "summary"
    rotated_eff = _write_rotation(tmp_path / "e", "data_efficiency", {"beatnet": 1.0})
    rows = pd.read_parquet(rotated_eff / "data_efficiency" / "real" / "trials.parquet")
    rows.assign(**{"config/label_fraction": 1.0}).to_parquet(rotated_eff / "data_efficiency" / "real" / "trials.parquet")
    # rotated data_efficiency: pooled over the rotation seed's ten folds; the fold-10-only seeds are left out
    eff = summarize(rotated_eff / "data_efficiency" / "real", n_boot=N_BOOT, seed=0)
    pooled = next(r for r in res.values() if r.model == "beatnet").pooled
    line = next(ln for ln in eff.text().splitlines() if "| beatnet | 100% |" in ln)
    assert f"{pooled.mean:.3f} [" in line and "seeds 1,2 left out (other folds)" in eff.text()
    with pytest.raises(ResultsError, match="not a study results folder"):
        summarize(tmp_path / "x" / "real")


def test_rotation_seed_is_shared_by_tables_and_noise():
    """One rule picks the rotating seed for the pooled tables (rotation._one) and the noise study."""
    import pandas as pd

    from beat_ray.report.rotation import rotation_seed
    rows = lambda pairs: pd.DataFrame({"seed": [s for s, _ in pairs], "config/test_fold": [f for _, f in pairs]})
    assert rotation_seed(rows([(0, k) for k in range(1, 11)] + [(1, 10), (2, 10)])) == 0
    assert rotation_seed(rows([(0, 10), (1, 2), (1, 4), (1, 10), (2, 10)])) == 1
    assert rotation_seed(rows([(0, 10), (1, 10)])) is None
    assert rotation.rotation_seeds(rows([(s, k) for s in (0, 1) for k in (2, 4)] + [(2, 2)])) == [0, 1]


def _two_rates(tmp_path: Path, quality: dict[int, dict[str, float]]):
    """A benchmark study whose arms ran at 100 and 500 Hz on the same records (quality per rate and model)."""
    import shutil
    parts = []
    for fs, arms in quality.items():
        root = _write_rotation(tmp_path / str(fs), "benchmark", arms)
        folder = root / "benchmark" / "real"
        rows = pd.read_parquet(folder / "trials.parquet")
        rows["trial_id"] = rows["trial_id"] + f"_{fs}"
        rows["predictions_file"] = "predictions/" + rows["trial_id"] + ".npz"
        rows["config/fs"] = fs
        for t in rows["trial_id"]:
            shutil.copy(folder / "predictions" / f"{t.rsplit('_', 1)[0]}.npz", folder / "predictions" / f"{t}.npz")
        parts.append((folder, rows))
    dest = parts[0][0]
    for t in parts[1][1]["trial_id"]:
        shutil.copy(parts[1][0] / "predictions" / f"{t}.npz", dest / "predictions" / f"{t}.npz")
    pd.concat([p[1] for p in parts]).to_parquet(dest / "trials.parquet", index=False)
    study = read_study(tmp_path / "100", "benchmark", "real", problems := [])
    assert not problems
    return study


def test_two_rates_on_the_same_records_give_table_1c(tmp_path):
    """A study at 100 and 500 Hz: arms labelled by rate, each paired with beatnet at its own rate, and each
    model's Δ(500 − 100) per fold on the same records (beatnet planted better at 500 Hz, resnet unchanged)."""
    study = _two_rates(tmp_path, {100: {"beatnet": 0.5, "resnet1d_wang": 0.5},
                                  500: {"beatnet": 1.5, "resnet1d_wang": 0.5}})
    res = rotation.pooled_results(study, an.Bootstrap(N_BOOT, 0))
    assert {r.model for r in res} == {"beatnet (100 Hz)", "beatnet (500 Hz)", "resnet1d_wang (100 Hz)",
                                      "resnet1d_wang (500 Hz)"}
    by = {r.model: r for r in res}
    assert by["resnet1d_wang (500 Hz)"].delta_fold_mean.lo > 0            # paired with beatnet at 500 Hz
    t = rotation.rate_table(res, an.Bootstrap(N_BOOT, 0), "real")
    rows = {r[1]: r for r in t.rows}
    assert set(rows) == {"beatnet", "resnet1d_wang"}
    assert rows["resnet1d_wang"][5].startswith("+0.000 [+0.000, +0.000]")  # the same scores at both rates
    assert float(rows["beatnet"][5].split(" [")[1].split(",")[0]) > 0      # the planted gain, CI above 0
    # the question real500 asks, answered both ways on planted data: beatnet gains more than resnet1d_wang
    gain_gap = rows["resnet1d_wang"][6]
    assert float(gain_gap.split(" [")[1].split(",")[0]) > 0 and float(gain_gap.split(" ")[0]) == pytest.approx(
        float(rows["beatnet"][5].split(" ")[0]), abs=1e-3)                # resnet's own gain is 0
    assert rows["beatnet"][6] == DASH
    assert "differ" not in rows["beatnet"][9]


@pytest.mark.parametrize("gains, verdict", [((1.5, 0.5), "**supported**"), ((0.5, 1.5), "**contradicted**"),
                                            ((0.5, 0.5), "not shown")])
def test_rate_claim_answers_either_way(tmp_path, gains, verdict):
    """The real500 claim row: beatnet planted to gain from 500 Hz (or resnet1d_wang, or neither)."""
    from beat_ray.report import claims
    b500, r500 = gains
    study = _two_rates(tmp_path, {100: {"beatnet": 0.5, "resnet1d_wang": 0.5},
                                  500: {"beatnet": b500, "resnet1d_wang": r500}})
    boot = an.Bootstrap(N_BOOT, 0)
    protocol, effect, got = claims.rate_gain(study, claims.default_results(study, boot), boot)
    assert got == verdict, effect
    assert "at 100 and 500 Hz on the same records" in protocol and effect.endswith("vs resnet1d_wang")


def test_a_tuned_cell_merges_one_entry_per_fold_and_refuses_two():
    """Each fold's row names its own best.json entry; two entries on one fold, or two files, are two experiments."""
    from beat_ray.report.load import mixed_cells

    def rows(tags: list[tuple[int, str]]) -> pd.DataFrame:
        return pd.DataFrame([{"_model": "beatnet (tuned)", "config/dataset": "ptbxl", "config/task": "superdiagnostic",
                              "config/test_fold": k, "seed": 0, "config/seed": 0, "config/lr": 1e-3 * k,
                              "config/epochs": 15, "config/hparams": tag} for k, tag in tags])

    assert mixed_cells(rows([(1, "best.json#a"), (2, "best.json#b")]), "benchmark") == []
    two_entries = mixed_cells(rows([(1, "best.json#a"), (1, "best.json#c"), (2, "best.json#b")]), "benchmark")
    assert len(two_entries) == 1 and "hparams" in two_entries[0]
    assert len(mixed_cells(rows([(1, "best.json#a"), (2, "other.json#b")]), "benchmark")) == 1
    assert len(mixed_cells(rows([(1, "best.json#a"), (2, "best.json#b")]).assign(**{"config/epochs": [15, 20]}),
                           "benchmark")) == 1          # an untuned field still may not differ


def test_a_delta_between_arms_with_different_seeds_is_paired_at_the_seeds_both_have():
    """A seed's luck reaches every fold (one initialisation): set a one-seed arm against beatnet's same
    seed, not against its mean over seeds. Planted: beatnet's seed 0 is good and seeds 1-2 poor; the
    other arm is beatnet's seed 0 exactly, so the paired Δ is 0 while the unpaired one is far below."""
    from beat_ray.report import perfold
    boot = an.Bootstrap(N_BOOT, 0)
    three, one, same = perfold.Folds(), perfold.Folds(), perfold.Folds()
    for k in range(1, 11):
        idx = np.flatnonzero(FOLD == k)
        y, rid = LABELS[idx], RIDS[idx]
        s = np.stack([_scores(q, 100 * s + k)[idx] for s, q in ((0, 1.0), (1, 0.2), (2, 0.2))])
        three.by_fold[k] = perfold.Fold(rid, y, s, (0, 1, 2))
        one.by_fold[k] = perfold.Fold(rid, y, s[:1].copy(), (0,))
        same.by_fold[k] = perfold.Fold(rid, y, s.copy(), (0, 1, 2))
    d, _ = perfold.paired(three, one, boot)
    assert (d.mean, d.lo, d.hi) == (0.0, 0.0, 0.0)
    assert set(perfold.fold_deltas(three, one).values()) == {0.0}
    unpaired = perfold.averaged(three, boot)[0].mean - perfold.averaged(one, boot)[0].mean
    assert unpaired < -0.05                             # what the old pairing reported: the seed gap
    d, dist = perfold.paired(three, same, boot)         # equal seeds: nothing is dropped
    assert d.mean == 0.0 and not dist.any()
    both = perfold.common(three, one)
    assert {f.seeds for f in both[0].by_fold.values()} == {(0,)} and three.by_fold[1].seeds == (0, 1, 2)


def test_table5_sets_a_one_seed_arm_against_beatnets_same_seed(tmp_path):
    """Rotated Table 5: the select arm (seed 0 only) scores exactly as beatnet's seed 0, clean and noisy, and
    beatnet's seeds 1-2 are far worse: the paired Δ level and Δ robustness are 0, not the seed gap."""
    from beat_ray.report import robustness
    folder = tmp_path / "noise_robustness" / "real"
    (folder / "predictions").mkdir(parents=True)
    rows = []
    arms = {"consensus": {0: (1.0, 0.6), 1: (0.2, 0.0), 2: (0.2, 0.0)}, "select": {0: (1.0, 0.6)}}
    for detector, seeds in arms.items():
        for s, (clean_q, noisy_q) in seeds.items():
            for k in range(1, 11):
                idx = np.flatnonzero(FOLD == k)
                tid, noisy = f"noi_{len(rows):05d}", _scores(noisy_q, 100 * s + k + 50)[idx]
                clean = _scores(clean_q, 100 * s + k)[idx]
                np.savez_compressed(folder / "predictions" / f"{tid}.npz", record_id=RIDS[idx], labels=LABELS[idx],
                                    scores=clean, classes=np.array(CLASSES),
                                    noise_specs=np.array(["em:0"]), noise_scores=noisy[None])
                rows.append({"study": "noise_robustness", "preset": "real", "trial_id": tid, "seed": s,
                             "git_commit": "c" * 40, "git_dirty": False, "finished_at": "2026-12-01T00:00:00",
                             "config/model": "beatnet", "config/model_kwargs": "{}", "config/dataset": "ptbxl",
                             "config/task": "superdiagnostic", "config/test_fold": k, "config/recipe": "default",
                             "config/detector": detector, "epoch": 15, "train_seconds": 1.0, "time_total_s": 1.0,
                             "n_params": 10, "n_train": 48, "n_val": 6, "n_test": len(idx), "val_macro_auc": 0.8,
                             "best_epoch": 15, "predictions_file": f"predictions/{tid}.npz", "n_fallback_test": 0,
                             "test/macro_auc": stats.macro_point(LABELS[idx], clean[None].astype(np.float64)),
                             "noise/em/0/macro_auc": stats.macro_point(LABELS[idx], noisy[None].astype(np.float64))})
    pd.DataFrame(rows).to_parquet(folder / "trials.parquet", index=False)
    study = read_study(tmp_path, "noise_robustness", "real", problems := [])
    assert not problems
    res = {a.model: a for a in robustness.arms(study, an.Bootstrap(N_BOOT, 0))}
    sel, ref = res["beatnet (select detector)"], res["beatnet"]
    assert sel.clean.mean - ref.clean.mean > 0.1                 # its own columns: seed 0 against the mean
    for d in (sel.delta[("em", 0.0)], sel.delta_drop[("em", 0.0)]):
        assert (d.mean, d.lo, d.hi) == (0.0, 0.0, 0.0)
