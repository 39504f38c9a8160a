"""Positive control for the encoder ablations on the graded synth (issue J part 3).

Each class group was planted for one encoder: rhythm needs the beat sequence, territory the lead
pattern, morphology the shape of one beat. Removing an encoder must lower its own group's AUC (paired
bootstrap CI over the same test records). Small preset: 1,500 records, 8 epochs, one seed, the official
split (150 test records), trained in-process (fit) so the test stays short (~2 min on 2 cores).

The small preset carries the rhythm and beat-shape controls but not the spatial one: removing lead
attention cost territory +0.045 at seed 0 and *raised* it at seeds 1 and 2 (-0.070, -0.032; measured
2026-12-03), so a small-preset assertion on it passed by the seed's luck. The spatial control is asserted
on the committed cpu study instead (3,000 records, 12 epochs, 3 seeds: +0.080, +0.044, +0.047 per seed),
which is the evidence the README quotes; that test reads results/ablations/cpu, it does not train.

Removing beat shape (`beatnet_no_shape`: each window averaged to one level, as no_spatial averages the
leads and no_temporal the beats) costs the morphology group; the cpu study's CI excludes 0 (+0.100
[+0.066, +0.138], README). It costs territory even more (+0.194): MI and bundle-branch block are shapes in
particular leads, so this removal is not specific to its group and the test does not ask it to be.

Against a linear map of the window the morphology control does not hold (strict xfail): on the graded synth the linear window map of
`beatnet_no_morphology` reads ST depression, T inversion and LVH at least as well as BEAT-Net's
BeatCNN, whose global average+max pooling forgets where in the beat a deflection is; a position-keeping
BeatCNN (cnn_bins, rf_s) only draws level with it (benchmarks/morphology_probe.py), and a 2.7x stronger
LVH notch is read as well by the map. At 500 Hz it leads by +0.010 [-0.005, +0.028] over 3 seeds, not excluding 0. The
cpu ablation study measures it with 3 seeds and 3,000 records (README, Table 2).
"""
from __future__ import annotations

import pytest

from beat_ray.report.stats import paired_delta, valid_resamples
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit

VARIANTS = ("beatnet", "beatnet_no_temporal", "beatnet_no_morphology", "beatnet_no_shape")   # no_spatial: see the docstring


@pytest.fixture(scope="module")
def runs():                                     # datasets go to conftest's session-wide $BEAT_RAY_CACHE
    out = {}
    for name in VARIANTS:
        cfg = TrialConfig(model=name, model_kwargs={"size": "tiny"}, dataset="synth", task="all",
                          n_records=1500, epochs=8, batch_size=64, seed=0)
        out[name] = fit(cfg)["_predictions"]
    ids = {tuple(p["record_id"]) for p in out.values()}
    assert len(ids) == 1                       # the same test records for every model
    return out


def drop(runs, variant: str, group: str) -> tuple[float, float, float]:
    """beatnet minus `variant` on `group`'s AUC, with its paired 95% bootstrap CI over test records."""
    from beat_ray.data.synth import CLASS_GROUPS
    ref = runs["beatnet"]
    y, classes = ref["labels"], list(ref["classes"])
    cols = [i for i, c in enumerate(classes) if CLASS_GROUPS[c] == group]
    w, _ = valid_resamples(y, 1000, 0)
    point, lo, hi = paired_delta(y, ref["scores"][None], runs[variant]["scores"][None], w, cols)
    print(f"\n{variant} on {group}: beatnet - variant = {point:+.3f} [{lo:+.3f}, {hi:+.3f}]")
    return point, lo, hi


def test_temporal_encoder_needed_for_rhythm(runs):
    point, lo, _ = drop(runs, "beatnet_no_temporal", "rhythm")
    assert lo > 0, (point, lo)


def test_temporal_removal_hurts_rhythm_most(runs):
    """The planted design: removing the rhythm transformer costs rhythm more than the other groups
    (small preset, seeds 0-2: rhythm +0.26 to +0.30, territory and morphology at most +0.03)."""
    d = {g: drop(runs, "beatnet_no_temporal", g)[0] for g in ("rhythm", "territory", "morphology")}
    assert d["rhythm"] == max(d.values()), d


CONTROLS = (("beatnet_no_temporal", "rhythm"), ("beatnet_no_spatial", "territory"), ("beatnet_no_shape", "morphology"))


def test_committed_cpu_ablations_hold_each_control():
    """The committed cpu ablation study (results/ablations/cpu: 3,000 records, 12 epochs, 3 seeds, 300 test
    records): each removal costs its own group, at every seed and with a two-level CI (records and seeds)
    above 0, and costs its own group more than either other group. No training: a recommitted study in which
    a control no longer holds fails here."""
    from pathlib import Path

    from beat_ray.report import analysis as an
    from beat_ray.report.load import cells, read_study
    study = read_study(Path(__file__).resolve().parents[1] / "results", "ablations", "cpu", [])
    table2 = {a.result.model: a for a in an.ablations(study, an.Bootstrap()) if a.result.data == "synth/all"}
    rows = {c.key[0]: c.rows.set_index("seed") for c in cells(study, ("_model", "config/dataset", "config/task"))
            if c.key[1:] == ("synth", "all")}
    for variant, own in CONTROLS:
        a = table2[variant]
        assert a.result.n_seeds == 3
        d = a.group_drops[own]
        per_seed = (rows["beatnet"][f"test/group_auc/{own}"] - rows[variant][f"test/group_auc/{own}"]).dropna()
        assert d.lo > 0 and len(per_seed) == 3 and per_seed.min() > 0, (variant, own, d, per_seed.tolist())
        others = {g: e.mean for g, e in a.group_drops.items() if g != own}
        if variant != "beatnet_no_shape":   # beat shape is also territory's evidence (module docstring)
            assert d.mean > max(others.values()), (variant, d, others)


def test_beat_shape_needed_for_morphology(runs):
    # 150 test records, one seed: measured +0.059 [-0.009, +0.128]; the cpu study (3 seeds x 300 records)
    # gives +0.100 [+0.070, +0.134]. Here the direction and a size of at least 0.02, as for territory
    point, lo, _ = drop(runs, "beatnet_no_shape", "morphology")
    assert point > 0.02, (point, lo)


@pytest.mark.xfail(strict=True, reason="BeatCNN does not beat a linear window map on the morphology group "
                                       "of the graded synth (module docstring; README ablations)")
def test_morphology_encoder_needed_for_morphology(runs):
    point, lo, _ = drop(runs, "beatnet_no_morphology", "morphology")
    assert lo > 0, (point, lo)
