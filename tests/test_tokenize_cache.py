"""Tokens of a prepared dataset are cached inside its cache dir, keyed by tokenizer config, and reported."""
from __future__ import annotations

import subprocess
import sys

import numpy as np

from beat_ray.data import load
from beat_ray.tokenize import TokenizerConfig, token_report, tokens_for


def test_tokens_cached_per_dataset_and_config(tmp_path):
    ds = load("synth", n_records=60, cache_dir=tmp_path, progress=False)
    fixed = tokens_for(ds, TokenizerConfig())
    dirs = sorted(p.name for p in ds.path.iterdir() if p.name.startswith("tokens-"))
    assert len(dirs) == 1
    again = tokens_for(ds, TokenizerConfig())
    assert isinstance(again.tokens, np.memmap)                          # served from the cache
    np.testing.assert_array_equal(again.tokens, fixed.tokens)
    patch = tokens_for(ds, TokenizerConfig(mode="patch"))
    assert len([p for p in ds.path.iterdir() if p.name.startswith("tokens-")]) == 2
    rep = token_report(fixed)
    gt = np.diff(ds.extras["r_offsets"])
    assert rep["n_records"] == 60 and rep["n_flagged"] == 0 and rep["n_cropped"] == 0
    assert abs(rep["beats_per_record"]["median"] - np.median(gt)) <= 1
    # ceil(10 s / 0.7 s) = 15 patches, the last one zero-padded
    assert token_report(patch)["beats_per_record"] == {"min": 15, "median": 15.0, "max": 15}


def test_tokenize_cli(tmp_path):
    res = subprocess.run([sys.executable, "-m", "beat_ray.tokenize", "prepare", "--dataset", "synth",
                          "--n-records", "40", "--cache-dir", str(tmp_path), "--jobs", "1"],
                         capture_output=True, text=True, check=True)
    assert '"n_records": 40' in res.stdout and '"window": 70' in res.stdout
    bad = subprocess.run([sys.executable, "-m", "beat_ray.tokenize", "prepare", "--dataset", "nope",
                          "--cache-dir", str(tmp_path)], capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown dataset 'nope'" in bad.stderr


def test_cache_key_follows_the_tokenizer_code(monkeypatch):
    """A detector fix must not be served the old detector's cached tokens (it was: select changed three times
    under one key). The key carries a fingerprint of every module that decides the tokens."""
    import ast
    from pathlib import Path

    from beat_ray.tokenize import corpus
    x = np.zeros((2, 12, 1000), np.float32)
    before = corpus.cache_key(x, 100.0, TokenizerConfig())
    monkeypatch.setattr(corpus, "code_fingerprint", lambda: "edited")
    assert corpus.cache_key(x, 100.0, TokenizerConfig()) != before
    # every tokenize module that detect/corpus import (directly or not) is fingerprinted
    here = Path(corpus.__file__).parent
    seen, todo = set(), ["corpus.py"]
    while todo:
        name = todo.pop()
        seen.add(name)
        for node in ast.walk(ast.parse((here / name).read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("beat_ray.tokenize."):
                dep = node.module.rsplit(".", 1)[1] + ".py"
                if dep not in seen:
                    todo.append(dep)
    assert seen <= set(corpus.TOKEN_CODE), sorted(seen - set(corpus.TOKEN_CODE))
