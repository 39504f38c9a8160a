"""Issue I: the lead-attribution measure finds planted evidence (positive control) and follows it.

Synth task rhythm with `atrial_lead`: P waves and AF f-waves only in one lead, AF's RR regular, so a
model can tell AFIB from SR by that lead alone. Trained here as the `smoke` preset of
experiments/lead_attribution.py configures it, then summarised by the report's own code.

Only the preset's resnet1d_wang cells: the control checks the method, and beatnet's smoke cells never learned
the planted evidence (AFIB AUC 0.66 and 0.64 in every CI run since the graded synth), so they were an xfail that
checked nothing and cost about half of the fixture's 251 s. The smoke study itself still trains both models.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from beat_ray.report import attribution
from beat_ray.report.analysis import Bootstrap
from beat_ray.report.load import Predictions, Study
from beat_ray.train.config import TrialConfig
from beat_ray.train.loop import fit

REPO = Path(__file__).resolve().parents[1]


def _smoke_cells() -> list[dict]:
    spec = importlib.util.spec_from_file_location("lead_attribution", REPO / "experiments" / "lead_attribution.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod                  # dataclasses look their module up while it executes
    spec.loader.exec_module(mod)
    return mod.PRESETS["smoke"].cells()


@pytest.fixture(scope="module")
def controls() -> dict[tuple[str, str], attribution.Attribution]:
    rows, preds = [], {}
    for i, cell in enumerate(c for c in _smoke_cells() if c["model"] == "resnet1d_wang"):
        m = fit(TrialConfig.from_dict(cell))
        p = m["_predictions"]
        tid = f"t{i}"
        preds[tid] = Predictions(p["record_id"], p["scores"].astype(float), p["labels"].astype(np.int8),
                                 tuple(p["classes"]), p.get("lead_attention"), p["lead_attribution"].astype(float))
        rows.append({"trial_id": tid, "_model": cell["model"], "config/dataset": cell["dataset"],
                     "config/task": cell["task"], "config/synth": json_synth(cell), "seed": cell["seed"],
                     "config/test_fold": cell["test_fold"], "auc_afib": float(m["test/auc/AFIB"])})
    study = Study("lead_attribution", "smoke", None, pd.DataFrame(rows), preds)
    res = attribution.results(study, Bootstrap(n_boot=300))
    return {(r.model, r.data.split("atrial_lead=")[1].split(")")[0]): r for r in res}, study.rows


def json_synth(cell: dict) -> str:
    import json
    return json.dumps(cell["synth"], sort_keys=True)


@pytest.mark.parametrize("model", ["resnet1d_wang"])
@pytest.mark.parametrize("lead", ["II", "V1"])
def test_attribution_puts_the_planted_lead_first(controls, model, lead):
    res, rows = controls
    r = res[(model, lead)]
    auc = rows.loc[rows["_model"] == model, "auc_afib"]
    # learned the planted evidence, clear of chance (0.5): the gate only keeps the attribution checks below
    # from passing on a model that learned nothing. Not tighter: resnet1d_wang's AFIB AUC at this budget
    # is bimodal over seeds (0.81-0.998 in 15 fits), and the checks below held on every fit measured,
    # down to a 0.59 one (lead II first, 1.7x V1; experiments/lead_attribution.py's smoke comment)
    assert auc.min() > 0.7
    top, share = r.top("AFIB")
    assert top == lead, f"{model}: AFIB's top lead is {top}, the evidence is in {lead}: {r.heatmap}"
    assert share.lo > attribution.UNIFORM                  # CI excludes the uniform share 1/12
    other = "V1" if lead == "II" else "II"
    i = r.classes.index("AFIB")
    from beat_ray.data.leads import LEADS
    # generator 1: > 2x; graded synth, resnet1d_wang's V1 control: 0.122 against lead II's 0.092
    assert r.heatmap[i, LEADS.index(lead)] > 1.2 * r.heatmap[i, LEADS.index(other)]
    # the moved evidence moves the attribution: the other control's planted lead is not first here
    assert res[(model, other)].top("AFIB")[0] == other
