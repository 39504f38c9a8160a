"""The claims page: each verdict rule gives each verdict on planted inputs, a missing study gives
"no result", and README.md embeds exactly paper_figures/CLAIMS.md."""
from __future__ import annotations

from pathlib import Path

import pytest
from test_report_rotation import _write_rotation

from beat_ray.report import analysis as an
from beat_ray.report import claims

REPO = Path(__file__).resolve().parents[1]
E = an.Estimate
M = 0.01


@pytest.mark.parametrize(("deltas", "verdict"), [
    ({"resnet": E(0.0, -0.009, 0.01), "xresnet": E(0.02, 0.005, 0.03)}, claims.SUPPORTED),
    ({"resnet": E(0.0, -0.009, 0.01), "xresnet": E(-0.03, -0.04, -0.011)}, claims.CONTRADICTED),
    ({"resnet": E(-0.01, -0.02, 0.0)}, claims.NOT_SHOWN),        # worse than 0 for sure is not beyond the margin
    ({}, claims.NO_RESULT),
])
def test_noninferiority_rule(deltas, verdict):
    assert claims.noninferior(deltas, M) == verdict


@pytest.mark.parametrize(("deltas", "verdict"), [
    ({"resnet": E(0.05, 0.001, 0.1), "xresnet": E(0.02, 0.01, 0.03)}, claims.SUPPORTED),
    ({"resnet": E(0.05, 0.001, 0.1), "xresnet": E(-0.02, -0.03, -0.001)}, claims.CONTRADICTED),
    ({"resnet": E(0.05, -0.001, 0.1)}, claims.NOT_SHOWN),
    ({}, claims.NO_RESULT),
])
def test_direction_rule(deltas, verdict):
    assert claims.better(deltas) == verdict


def _cost(model: str, params: int, sps: float) -> an.Cost:
    return an.Cost(model, "ptbxl/superdiagnostic", 1, params, sps, 1.0, 0.0, 1.0)


def test_cost_rule():
    beat = _cost("beatnet", 10, 300.0)
    assert claims.cheaper(beat, [_cost("a", 20, 100.0), _cost("b", 30, 200.0)]) == claims.SUPPORTED
    assert claims.cheaper(beat, [_cost("a", 5, 100.0), _cost("b", 30, 200.0)]) == claims.NOT_SHOWN
    assert claims.cheaper(beat, [_cost("a", 5, 400.0), _cost("b", 9, 900.0)]) == claims.CONTRADICTED
    assert claims.cheaper(None, [_cost("a", 5, 400.0)]) == claims.NO_RESULT


@pytest.mark.parametrize(("beatnet", "resnet", "verdict"), [
    (1.0, 0.3, claims.SUPPORTED), (0.3, 1.0, claims.CONTRADICTED)])
def test_planted_rows_give_the_cnn_level_verdict_and_missing_studies_no_result(tmp_path, beatnet, resnet, verdict):
    root = _write_rotation(tmp_path, "benchmark", {"beatnet": beatnet, "resnet1d_wang": resnet})
    got = {c.claim: c for c in claims.preset_claims(root, "real", REPO / "no-realdata", an.Bootstrap(60, 0))}
    assert got["CNN-level macro-AUC"].verdict == verdict
    assert "per-fold mean" in got["CNN-level macro-AUC"].effect
    assert got["CNN-level macro-AUC"].source == "/paper_figures/real/table1_benchmark.md"
    for claim in ("Robustness: generated noise", "Full-data AUC from 30-35 % of the labels",
                  "Lead II for rhythm classes", "Robustness: recorded noise (PTB-XL annotations)"):
        assert got[claim].verdict == claims.NO_RESULT and got[claim].source == ""   # no study: no guess


def test_readme_embeds_the_claims_page():
    page = (REPO / "paper_figures" / "CLAIMS.md").read_text(encoding="utf-8")
    assert claims.block(REPO / "README.md") == page, "run `make figures` (python -m beat_ray.report --claims)"
    for preset in ("real", "real_tuned", "cpu"):
        assert f"| CNN-level macro-AUC | `{preset}` |" in page


def test_embed_replaces_only_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{claims.BEGIN}\nold\n{claims.END}\n\nrest\n", encoding="utf-8")
    claims.embed(readme, "new page\n")
    assert readme.read_text(encoding="utf-8") == f"# x\n\n{claims.BEGIN}\nnew page\n{claims.END}\n\nrest\n"
    assert claims.block(readme) == "new page\n"
