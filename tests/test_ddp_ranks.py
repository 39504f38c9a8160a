"""DDP ranks, without Ray (issue 36): 2 gloo processes run `fit` as TorchTrainer workers do.

The CNNs must train on their 2.5-s crops under the DDP wrapper too (the wrapper hides the model's
`crop_s`, so the ranks trained on whole 10-s records and were scored on 2.5-s windows), only rank 0
evaluates (the ranks hold the same weights), and the row says what a step saw (world size, batch per
rank, global batch). Uses only what HEAD had, so it runs, and fails, against HEAD too.
"""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from beat_ray.train import loop
from beat_ray.train.config import TrialConfig
from beat_ray.train.inputs import load_dataset

SMALL = dict(dataset="synth", task="all", n_records=60, epochs=1, batch_size=8, threads=1)


def _ddp_rank(rank: int, world: int, init: str, cell: dict, out: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=world)
    shapes: list[list[int]] = []

    def wrap(model: nn.Module) -> nn.Module:          # what ray.train.torch.prepare_model does on CPU
        model.register_forward_pre_hook(lambda m, args: shapes.append(list(args[0]["signal"].shape))
                                        if m.training else None)
        return DistributedDataParallel(model)

    try:
        m = loop.fit(TrialConfig(**cell), rank=rank, world_size=world, wrap_model=wrap)
    finally:
        dist.destroy_process_group()
    public = {k: v for k, v in m.items() if not k.startswith("_")}
    with open(os.path.join(out, f"{rank}.json"), "w") as f:
        json.dump({"train_shapes": shapes, "metrics": public}, f)


@pytest.fixture(scope="module")
def ddp_run(beat_ray_cache, tmp_path_factory):
    """One 2-rank gloo fit of resnet1d_wang at 100 Hz (10-s records); each rank's training batches and metrics."""
    cell = {**SMALL, "model": "resnet1d_wang", "model_kwargs": {"width": 8}, "workers": 2}
    load_dataset(TrialConfig(**cell))                 # prepared once here, not by both ranks at once
    tmp = tmp_path_factory.mktemp("ddp")
    mp.spawn(_ddp_rank, args=(2, str(tmp / "store"), cell, str(tmp)), nprocs=2, join=True)
    return [json.loads((tmp / f"{r}.json").read_text()) for r in range(2)]


def test_ddp_ranks_train_the_cnns_on_their_crops(ddp_run):
    for rank in ddp_run:
        shapes = {tuple(s) for s in rank["train_shapes"]}
        assert rank["train_shapes"] and shapes == {(8, 12, 250)}, shapes   # 2.5 s at 100 Hz, not the 10-s record


def test_ddp_only_rank_0_evaluates_and_the_row_names_the_batch(ddp_run):
    lead, other = (r["metrics"] for r in ddp_run)
    assert 0.0 <= lead["val_macro_auc"] <= 1.0 and "test/macro_auc" in lead
    assert np.isnan(other["val_macro_auc"]) and not any(k.startswith("test/") for k in other)
    for m in (lead, other):
        assert (m["world_size"], m["batch_per_rank"], m["global_batch"]) == (2, 8, 16)
    assert lead["train_loss"] != other["train_loss"]                   # each rank its own shard
