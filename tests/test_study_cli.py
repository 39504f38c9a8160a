"""The shared study command line: overrides, data roots, and clear errors before any Ray starts."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from procs import load_presets

from beat_ray.train.study import parse_data_root, parse_overrides

REPO = Path(__file__).resolve().parents[1]


def test_parse_overrides_types_and_unknown_keys():
    assert parse_overrides(["epochs=5", "train_noise=ma:12", "use_gpu=false", "lr=0.003"]) == \
        {"epochs": 5, "train_noise": "ma:12", "use_gpu": False, "lr": 0.003}
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        parse_overrides(["epochs"])
    with pytest.raises(Exception, match="epoch"):
        parse_overrides(["epoch=5"])                        # a typo is an error, not a silent default


def test_parse_data_root():
    assert parse_data_root(None) == {}
    assert parse_data_root("/data/ptb-xl") == {"": "/data/ptb-xl"}
    assert parse_data_root("ptbxl=/a,cpsc2018=/b,") == {"ptbxl": "/a", "cpsc2018": "/b"}
    with pytest.raises(SystemExit, match="DATASET=PATH"):
        parse_data_root("ptbxl=/a,cpsc2018")


def test_paper_preset_without_data_root_fails_before_ray():
    run = subprocess.run([sys.executable, "experiments/benchmark.py", "--preset", "paper"], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "--data-root is needed for ['chapman', 'cpsc2018', 'ptbxl']" in run.stderr


def test_missing_data_root_folder_fails_before_ray(tmp_path):
    run = subprocess.run([sys.executable, "experiments/ablations.py", "--preset", "real", "--data-root",
                          str(tmp_path / "nowhere")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert f"data root {tmp_path / 'nowhere'} (ptbxl) does not exist" in run.stderr


def test_every_study_has_four_presets_and_well_formed_cells():
    for study in ("benchmark", "ablations", "data_efficiency", "noise_robustness", "lead_attribution"):
        presets = load_presets(study)
        assert set(presets) >= {"smoke", "cpu", "real", "paper"}, study
        assert set(presets) - {"smoke", "cpu", "real", "paper"} <= {"real_tuned", "real500"}, study
        for name, grid in presets.items():
            cells = grid.cells()
            assert cells and len({repr(sorted(c.items())) for c in cells}) == len(cells), (study, name)
    de = load_presets("data_efficiency")
    assert all(c["budget"] == "matched" for p in de.values() for c in p.cells())     # issue I: equal steps
    la = load_presets("lead_attribution")
    assert all(c["attribution_steps"] > 0 for p in la.values() for c in p.cells())
    bench = load_presets("benchmark")["paper"].cells()
    assert {c["dataset"] for c in bench} == {"ptbxl", "cpsc2018", "chapman"}
    r500 = load_presets("benchmark")["real500"].cells()          # issue 34: both rates on the same records
    arms: dict[tuple, list[int]] = {}
    for c in r500:
        arms.setdefault((c["model"], c["fs"]), []).append(c["test_fold"])
    arms = {k: sorted(v) for k, v in arms.items()}
    assert set(arms) == {(m, f) for m in ("beatnet", "resnet1d_wang", "xresnet1d101") for f in (100, 500)}
    assert all(v == sorted(list(range(1, 11)) * 3) for v in arms.values())      # seeds 0, 1, 2 on every fold
    assert {c["records_at_fs"] for c in r500} == {500} and {c["epochs"] for c in r500} == {15}
    # BEAT-Net's beat CNN sees the same time at both rates (its default kernels would see 46 ms at 500 Hz), and
    # at 100 Hz it is the default net
    from beat_ray.models.beatnet import beatnet_config, kernels_for, receptive_field
    from beat_ray.train.config import TrialConfig
    from beat_ray.train.loop import model_kwargs
    field = {}
    for c in (c for c in r500 if c["model"] == "beatnet"):
        kw = {k: v for k, v in model_kwargs(TrialConfig.from_dict(c)).items() if k != "window"}
        cfg = beatnet_config(**kw)
        field[c["fs"]] = receptive_field(kernels_for(cfg), cfg.cnn_strides) / c["fs"]
        if c["fs"] == 100:
            assert kernels_for(cfg) == beatnet_config().cnn_kernels
    assert field[100] == pytest.approx(0.23) and field[500] == pytest.approx(0.23, abs=0.01)


def test_tuned_presets_take_each_folds_own_config():
    """Issue L: the real_tuned presets apply best.json per test fold; every fold they test was searched."""
    from beat_ray.train.search import apply_hparams
    doc = json.loads((REPO / "results/hparams/real/best.json").read_text())
    for study in ("benchmark", "data_efficiency"):
        grid = load_presets(study)["real_tuned"]
        cells = apply_hparams(grid.cells(), REPO / grid.hparams)
        assert {c["model"] for c in cells} >= {"beatnet", "xresnet1d101"}
        for c in cells:
            params = doc["models"][c["model"]][str(c["test_fold"])]["params"]
            assert c["lr"] == params["lr"] and c["batch_size"] == params["batch_size"], (study, c["model"])
            assert c["hparams"].startswith(str(REPO / grid.hparams) + "#")
    # issue 34: the tuned benchmark tests every fold at three seeds, and BEAT-Net takes no design variant chosen
    # on validation scores of models that had trained on those test folds
    bench = load_presets("benchmark")["real_tuned"].cells()
    assert sorted({(c["test_fold"], c["seed"]) for c in bench}) == [(k, s) for k in range(1, 11) for s in (0, 1, 2)]
    assert all("rf_s" not in c["model_kwargs"] for c in bench if c["model"] == "beatnet")


def test_a_changed_grid_is_named_and_refused_unless_resume_changed(tmp_path, capsys):
    """Tune restores its stored grid, so a resume with other --set values would silently ignore them."""
    from beat_ray.train.runner import GRID_FILE, check_grid, grid_changes, save_grid
    cells = [c for c in load_presets("data_efficiency")["smoke"].cells()]
    exp = str(tmp_path / "storage" / "sweep")
    save_grid(exp, cells)
    assert (tmp_path / "storage" / "sweep" / GRID_FILE).is_file()
    check_grid(exp, cells, resume_changed=False)                          # the same grid resumes
    gpu = [{**c, "use_gpu": True, "gpus_per_trial": 0.5} for c in cells]
    assert grid_changes(cells, gpu) == []                                 # other hardware is not another grid
    longer = [{**c, "epochs": c["epochs"] + 1} for c in cells]
    assert grid_changes(cells, longer) == [f"epochs: {cells[0]['epochs']} -> {cells[0]['epochs'] + 1}"]
    with pytest.raises(SystemExit, match=r"another grid \(epochs: .*new --name.*--resume-changed"):
        check_grid(exp, longer, resume_changed=False)
    check_grid(exp, longer, resume_changed=True)
    assert "continuing the stored grid" in capsys.readouterr().out
    assert grid_changes(cells, cells[:-1]) != []                          # a dropped cell is a change too
    a, b = {"model": "beatnet", "seed": 0}, {"model": "resnet1d_wang", "seed": 1}
    assert grid_changes([a, b], [{**a, "seed": 1}, {**b, "seed": 0}]) == \
        ["the cells (2 stored, 2 now) combine the same values differently"]


def test_models_filter_refuses_a_model_the_preset_lacks():
    run = subprocess.run([sys.executable, "experiments/benchmark.py", "--preset", "smoke", "--models", "beatnet,nope"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "--models ['nope']: not in this preset" in run.stderr


def test_seeds_and_models_filters_pick_whole_cells_and_refuse_unknown_values():
    """A long preset lands one seed per launch: --seeds keeps every model and fold of that seed."""
    from beat_ray.train.study import pick_cells
    cells = load_presets("benchmark")["real500"].cells()
    one = pick_cells(cells, lambda c: c["model"], None, "1")
    assert len(one) == len(cells) // 3 and {c["seed"] for c in one} == {1}
    assert {(c["model"], c["fs"], c["test_fold"]) for c in one} == \
        {(c["model"], c["fs"], c["test_fold"]) for c in cells}
    both = pick_cells(cells, lambda c: c["model"], "beatnet", "1,2")
    assert {(c["model"], c["seed"]) for c in both} == {("beatnet", 1), ("beatnet", 2)} and len(both) == 40
    with pytest.raises(ValueError, match=r"--seeds \['7'\]: not in this preset \(it has \['0', '1', '2'\]\)"):
        pick_cells(cells, lambda c: c["model"], None, "1,7")
    with pytest.raises(ValueError, match="--seeds ','"):
        pick_cells(cells, lambda c: c["model"], None, ",")
    assert pick_cells(cells, lambda c: c["model"], None, None) == cells


def test_models_filter_names_a_variant_in_the_variants_grid():
    """beatnet_variants' cells all run beatnet: --models picks variants by name, and refuses an unknown one."""
    sys.path.insert(0, str(REPO))
    from experiments.beatnet_variants import PRESETS
    grid = PRESETS["real"]
    arms = [grid.arm(c) for c in grid.cells()]
    assert arms.count("bins9_rf0.45s") == 5 and set(arms) == set(grid.variants)
    run = subprocess.run([sys.executable, "experiments/beatnet_variants.py", "--preset", "smoke", "--models", "rf_0.45s"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "--models ['rf_0.45s']: not in this preset (it has ['baseline', 'original'])" in run.stderr


def test_cells_with_a_row_are_not_trained_again_unless_a_resumed_sweep_stored_them(tmp_path):
    """A preset extended from one seed to three trains only the new cells into its results folder;
    a resumed sweep keeps the cells it stored even after they got their rows."""
    from beat_ray.train.config import TrialConfig
    from beat_ray.train.results import append_rows
    from beat_ray.train.runner import cells_to_run, save_grid
    cells = [TrialConfig.from_dict({**c, "study": "s", "preset": "p"}).to_dict()
             for c in load_presets("data_efficiency")["smoke"].cells()][:4]
    out = tmp_path / "results"
    assert cells_to_run(cells, out, None) == [0, 1, 2, 3]               # no rows yet
    row = {"trial_id": "t0", "seed": cells[1]["seed"], "test/macro_auc": 0.5, "config_hash": "stale",
           **TrialConfig.from_dict(cells[1]).flat()}
    append_rows(out, [row], required=())
    assert cells_to_run(cells, out, None) == [0, 2, 3]                  # a new --name skips the done cell
    exp = str(tmp_path / "storage" / "sweep")
    save_grid(exp, cells)
    assert cells_to_run(cells, out, exp) == [0, 1, 2, 3]                # its own stored cell stays
    save_grid(exp, [cells[0], cells[2]])
    assert cells_to_run(cells, out, exp) == [0, 2, 3]
    old = {"trial_id": "t1", "seed": cells[3]["seed"], "test/macro_auc": 0.5,     # written before config_hash
           **{k: v for k, v in TrialConfig.from_dict(cells[3]).flat().items() if k != "config/detector"}}
    append_rows(out, [old], required=())
    assert cells_to_run(cells, out, None) == [0, 2]
