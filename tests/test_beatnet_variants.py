"""Issue L's BEAT-Net design variants: each does what its name says, and the defaults are unchanged."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from beat_ray.models import create
from beat_ray.models.beatnet import BeatNetConfig, kernels_for, receptive_field
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import build_model
from tests.test_models import C, assert_padding_ignored, token_batch

VARIANTS = [{"token_norm": "baseline"}, {"rf_s": 0.45}, {"rr_norm": "record"}, {"cnn_bins": 4},
            {"token_norm": "baseline", "rf_s": 0.45, "rr_norm": "record"}]


def test_receptive_field_in_seconds():
    assert receptive_field((7, 5, 3), (2, 2, 2)) == 23                 # 0.23 s at 100 Hz, 46 ms at 500 Hz
    assert kernels_for(BeatNetConfig()) == (7, 5, 3)                    # rf_s unset: kernels in samples
    assert kernels_for(BeatNetConfig(rf_s=0.23, fs=100)) == (7, 5, 3)   # the same field, said in seconds
    for fs in (100, 250, 500):
        for rf_s in (0.23, 0.45):
            rf = receptive_field(kernels_for(BeatNetConfig(rf_s=rf_s, fs=fs)), (2, 2, 2))
            assert abs(rf - rf_s * fs) <= 0.1 * rf_s * fs, (fs, rf_s, rf)
    with pytest.raises(ValueError, match="below one sample"):
        kernels_for(BeatNetConfig(rf_s=0.001, fs=100))


def test_trial_sizes_rf_for_its_own_fs():
    cfg = TrialConfig(model="beatnet", fs=500, model_kwargs={"rf_s": 0.45})
    conv = build_model(cfg, C).morphology.convs[0]
    assert conv.kernel_size[0] == kernels_for(BeatNetConfig(rf_s=0.45, fs=500))[0] > 30


def test_baseline_removal_ignores_a_window_offset_and_keeps_lead_ratios():
    torch.manual_seed(0)
    batch = token_batch()
    shifted = {k: v.clone() for k, v in batch.items()}
    shifted["tokens"] = shifted["tokens"] + 0.7 * torch.randn(*batch["tokens"].shape[:3], 1) * batch["beat_mask"][..., None, None]
    for norm, same in (("baseline", True), ("raw", False)):
        torch.manual_seed(0)
        model = create("beatnet", C, token_norm=norm).eval()
        with torch.no_grad():
            a, b = model(batch), model(shifted)
        assert torch.allclose(a, b, atol=1e-5) == same, norm
    # a lead scaled against the others is still seen: the norm subtracts, it never divides
    scaled = {k: v.clone() for k, v in batch.items()}
    scaled["tokens"][:, :, 1] *= 3.0
    model = create("beatnet", C, token_norm="baseline").eval()
    with torch.no_grad():
        assert not torch.allclose(model(batch), model(scaled), atol=1e-4)


def test_record_rr_features_are_relative():
    """rr_norm=record: the RR pattern relative to the record's mean; the mean itself is one feature."""
    from beat_ray.models.beatnet import BeatPosition
    pos = BeatPosition(BeatNetConfig(rr_norm="record")).eval()
    captured = []
    pos.mlp[0].register_forward_hook(lambda m, i, o: captured.append(i[0]))
    batch = token_batch()
    mask = batch["beat_mask"][..., None]
    with torch.no_grad():
        pos(batch["times"], batch["rr"])
        pos(batch["times"], batch["rr"] * 1.5)
    rel_a, rel_b = captured[0][..., -4:-2], captured[1][..., -4:-2]
    assert torch.allclose(rel_a * mask, rel_b * mask, atol=1e-5)       # the pattern is scale-free
    mean_a, mean_b = captured[0][..., -2], captured[1][..., -2]
    assert torch.allclose((mean_b - mean_a)[batch["beat_mask"]], torch.log(torch.tensor(1.5)), atol=1e-5)


@pytest.mark.parametrize("kw", VARIANTS)
def test_variants_keep_padding_out(kw):
    """The masking contract of every BEAT-Net holds for each variant too."""
    torch.manual_seed(0)
    assert_padding_ignored(create("beatnet", C, **kw).eval())


def _variant_rows(deltas: dict[str, float], folds=(2, 4, 6), drop=None) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    kwargs = {"original": {}, "baseline": {"token_norm": "baseline"}, "rr": {"rr_norm": "record"}}
    base = {k: 0.85 + 0.02 * rng.standard_normal() for k in folds}
    rows = [{"config/model_kwargs": json.dumps({"size": "small", **kwargs[v]}), "config/test_fold": k, "seed": 0,
             "best_val_macro_auc": base[k] + d + 0.001 * (k % 3), "test/macro_auc": float("nan"),
             "git_commit": "abcdef0123", "config/hparams": "best.json#x", "config/epochs": 15}
            for v, d in {"original": 0.0, **deltas}.items() for k in folds if (v, k) != drop]
    return pd.DataFrame(rows)


def test_variants_table_pairs_per_fold_and_applies_the_rule(tmp_path):
    from beat_ray.report import variants
    from beat_ray.report.load import ResultsError
    _variant_rows({"baseline": 0.01, "rr": -0.004}).to_parquet(tmp_path / "trials.parquet")
    t = variants.table(variants.load(tmp_path))
    got = {r[0]: r for r in t.rows}
    assert got["tokens baseline"][3].startswith("+0.0100") and got["tokens baseline"][5] == "yes, best"
    assert got["tokens baseline"][4] == "3 of 3"
    assert got["rr record"][3].startswith("-0.0040") and got["rr record"][5] == "no"
    assert "Kept here: tokens baseline." in t.caption
    _variant_rows({"baseline": 0.01}, drop=("baseline", 4)).to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(ResultsError, match="lack some variant"):
        variants.table(variants.load(tmp_path))
    scored = _variant_rows({"baseline": 0.01}).assign(**{"test/macro_auc": 0.9})
    scored.to_parquet(tmp_path / "trials.parquet")
    with pytest.raises(ResultsError, match="validation only"):
        variants.table(variants.load(tmp_path))


def test_validation_only_trial_is_finished_at_its_last_epoch():
    from beat_ray.train.runner import finished
    cell = {"trial": TrialConfig(epochs=3, score_test=False).to_dict()}
    assert not finished(cell, {"epoch": 2, "best_val_macro_auc": 0.8})
    assert finished(cell, {"epoch": 3, "best_val_macro_auc": 0.8})
    scored = {"trial": TrialConfig(epochs=3).to_dict()}
    assert not finished(scored, {"epoch": 3}) and finished(scored, {"epoch": 3, "test/macro_auc": 0.9})


def test_tuned_arms_pair_with_tuned_beatnet():
    from beat_ray.report.analysis import reference_for
    labels = ["beatnet", "beatnet (tuned)", "xresnet1d101 (tuned)", "resnet1d_wang", "x (train noise ma:12)",
              "beatnet (train noise ma:12)"]
    assert reference_for("xresnet1d101 (tuned)", labels) == "beatnet (tuned)"
    assert reference_for("resnet1d_wang", labels) == "beatnet"
    assert reference_for("x (train noise ma:12)", labels) == "beatnet (train noise ma:12)"
    assert reference_for("xresnet1d101 (tuned)", ["beatnet", "xresnet1d101 (tuned)"]) == "beatnet"
    assert reference_for("resnet1d_wang", ["resnet1d_wang"]) is None


def test_cnn_bins_keeps_where_a_deflection_is():
    """Global avg+max pooling cannot tell a deflection early in the window from the same one late (shifted by
    a multiple of the CNN's total stride, away from the edges); cnn_bins=n can, at any window length."""
    from beat_ray.models.beatnet import BeatCNN
    x = torch.zeros(2, 200)
    x[0, 64], x[1, 128] = 1.0, 1.0                                      # 64 samples apart = 8 x stride 8
    for bins, same in ((0, True), (4, False)):
        torch.manual_seed(0)
        cnn = BeatCNN(BeatNetConfig(cnn_bins=bins)).eval()
        with torch.no_grad():
            h = cnn(x)
        assert h.shape == (2, BeatNetConfig().d)
        assert torch.allclose(h[0], h[1], atol=1e-6) == same, bins
    torch.manual_seed(0)
    assert BeatCNN(BeatNetConfig(cnn_bins=4))(torch.randn(3, 350)).shape == (3, BeatNetConfig().d)   # 500 Hz W
