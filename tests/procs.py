"""Process helpers shared by the tests that start real Ray processes (jobs, resume, faults)."""
from __future__ import annotations

import importlib.util
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_presets(study: str) -> dict:
    spec = importlib.util.spec_from_file_location(f"_exp_{study}", REPO / "experiments" / f"{study}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod            # dataclasses look their module up while building
    spec.loader.exec_module(mod)
    return mod.PRESETS


def private_ray(tag: str, cache: Path) -> tuple[Path, str, dict[str, str]]:
    """A Ray temp root of its own (so `ray.init()` joins no other instance), the marker every process
    of that Ray carries in its environment (for `marked_pids`), and the subprocess environment."""
    import tempfile
    ray_tmp = Path(tempfile.mkdtemp(prefix=f"ray{tag[:1].lower()}_", dir="/tmp"))
    var = f"BEAT_RAY_TEST_{tag.upper()}"
    env = {**os.environ, "RAY_TMPDIR": str(ray_tmp), var: str(ray_tmp), "RAY_USAGE_STATS_ENABLED": "0",
           "BEAT_RAY_CACHE": str(cache)}
    env.pop("RAY_ADDRESS", None)
    return ray_tmp, f"{var}={ray_tmp}", env


def live_pids() -> list[int]:
    """Pids of live processes (zombies excluded: they are dead, only not reaped yet)."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                    pids.append(int(p.name))
            except (OSError, IndexError):
                pass
    return pids


def marked_pids(marker: str) -> list[int]:
    """Live processes whose environment holds `marker`: everything a head or driver we started spawned."""
    pids = []
    for pid in live_pids():
        if pid != os.getpid():
            try:
                if marker.encode() in Path(f"/proc/{pid}/environ").read_bytes():
                    pids.append(pid)
            except OSError:
                pass
    return pids


def cmdline(pid: int) -> str:
    """A process's command line; Ray workers show their task, e.g. 'ray::ImplicitFunc.train'."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def titled_pids(marker: str, prefix: str) -> list[int]:
    """Marked processes whose command line starts with `prefix` (a Ray actor class, say)."""
    return [p for p in marked_pids(marker) if cmdline(p).startswith(prefix)]


def kill_pids(pids: list[int]) -> None:
    """SIGKILL each pid; one that exited meanwhile is fine."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def wait_gone(marker: str, timeout: float) -> list[int]:
    """Wait up to `timeout` s for every marked process to exit; returns the ones still alive."""
    deadline = time.monotonic() + timeout
    while (left := marked_pids(marker)) and time.monotonic() < deadline:
        time.sleep(0.25)
    return left
