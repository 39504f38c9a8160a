"""Shared fixtures: one synth cache per test session, so Ray tests do not regenerate data or touch ~/.cache."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


@pytest.fixture(scope="session")
def beat_ray_cache(tmp_path_factory):
    """A session-wide $BEAT_RAY_CACHE (datasets and token caches), also for subprocesses and Ray workers."""
    path = tmp_path_factory.mktemp("beat_ray_cache")
    old = os.environ.get("BEAT_RAY_CACHE")
    os.environ["BEAT_RAY_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("BEAT_RAY_CACHE", None)
    else:
        os.environ["BEAT_RAY_CACHE"] = old


def pytest_collection_modifyitems(config, items):
    """Run tests marked `autoscaler` last: they `ray stop --force`, which kills every Ray on the machine,
    so no other test's Ray instance may start after (or run beside) them. Order is otherwise kept."""
    items[:] = ([i for i in items if i.get_closest_marker("autoscaler") is None]
                + [i for i in items if i.get_closest_marker("autoscaler") is not None])
