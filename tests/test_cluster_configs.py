"""Issue F: the cluster configs in cluster/ validate offline and fit the trials the studies really request.

* Launcher YAML (cluster/aws.yaml, cluster/gcp.yaml): Ray's own validator,
  `validate_config(prepare_config(...))`, with the network blocked, plus our own rules (a 0-CPU head,
  GPU worker types scaling from 0 on spot, explicit `resources` everywhere, the project image).
* KubeRay manifests: a jsonschema of the fields we rely on, plus what a schema cannot say
  (minReplicas <= replicas <= maxReplicas, image tag = rayVersion = the installed Ray).
* Cross-check: every cell of every study's presets asks Ray for bundles (the trial itself, from
  `trial_resources`, and for TorchTrainer trials one worker's bundle, captured from `trainable`);
  each must fit at least one worker type of every config, or that trial would sit PENDING forever.
Each check has a negative twin, so a broken config is shown to fail.
"""
from __future__ import annotations

import copy
import math
import re
import socket
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from procs import load_presets

from beat_ray.train.config import TrialConfig
from beat_ray.train.tune_fn import trial_resources

REPO = Path(__file__).resolve().parents[1]
CLUSTER = REPO / "cluster"
STUDIES = ("data_efficiency", "ablations", "noise_robustness", "benchmark")
IMAGE_REPO = "ghcr.io/your-org/beat-ray"


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def launcher_files() -> list[Path]:
    """Every launcher YAML in cluster/: the YAML files with a `provider` (runtime_env.yaml has none)."""
    return sorted(p for p in CLUSTER.glob("*.yaml") if "provider" in (_load(p) or {}))


def test_launcher_files_found():
    assert [p.name for p in launcher_files()] == ["aws.yaml", "gcp.yaml"]


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection (boto3, googleapiclient, ...) fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"network access during offline validation: {args!r}")
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# ------------------------------------------------------------------ launcher configs

def prepared(raw: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config
    cfg = prepare_config(copy.deepcopy(raw))
    validate_config(cfg)
    return cfg


def _spot(node_config: dict, provider: str) -> bool:
    if provider == "aws":
        return node_config.get("InstanceMarketOptions", {}).get("MarketType") == "spot"
    if provider == "gcp":
        sched = node_config.get("scheduling", {})
        return sched.get("provisioningModel") == "SPOT" or sched.get("preemptible") is True
    raise AssertionError(provider)


def launcher_problems(raw: dict) -> list[str]:
    """Our rules for a launcher config, on the YAML as written (before Ray fills defaults)."""
    problems = []
    provider = raw["provider"]["type"]
    types_ = raw["available_node_types"]
    head = raw["head_node_type"]
    if not raw.get("idle_timeout_minutes", 0) > 0:
        problems.append("idle_timeout_minutes must be set (> 0) so idle GPU workers go away")
    image = raw.get("docker", {}).get("image", "")
    if image != f"{IMAGE_REPO}:{ray.__version__}-py311-gpu":
        problems.append(f"docker image {image!r} is not the project image for Ray {ray.__version__}")
    for name, nt in types_.items():
        res = nt.get("resources")
        if not isinstance(res, dict) or "CPU" not in res or "GPU" not in res:
            problems.append(f"{name}: resources must be explicit, with CPU and GPU (else AWS is asked)")
    head_res = types_[head].get("resources") or {}
    if head_res.get("CPU", 1) != 0 or head_res.get("GPU", 0) != 0:
        problems.append(f"head {head}: resources {head_res} would let it run trials (want CPU 0, GPU 0)")
    workers = {n: nt for n, nt in types_.items() if n != head}
    gpu_counts = sorted((nt.get("resources") or {}).get("GPU", 0) for nt in workers.values())
    if 1 not in gpu_counts or 4 not in gpu_counts:
        problems.append(f"want a 1-GPU and a 4-GPU worker type, have GPU counts {gpu_counts}")
    for name, nt in workers.items():
        if nt.get("min_workers") != 0:
            problems.append(f"{name}: min_workers must be 0 (scale from zero)")
        if not isinstance(nt.get("max_workers"), int) or not 0 < nt["max_workers"] <= raw["max_workers"]:
            problems.append(f"{name}: max_workers must be set, in 1..{raw['max_workers']}")
        if (nt.get("resources") or {}).get("GPU", 0) and not _spot(nt["node_config"], provider):
            problems.append(f"{name}: GPU workers should be spot")
    return problems


@pytest.mark.parametrize("path", launcher_files(), ids=lambda p: p.name)
def test_launcher_validates_offline(path, no_network):
    raw = _load(path)
    cfg = prepared(raw)
    assert cfg["provider"]["type"] == path.stem
    assert launcher_problems(raw) == []
    # what Ray will run with: head never gets workers, every type kept its explicit resources
    head = cfg["head_node_type"]
    assert cfg["available_node_types"][head]["max_workers"] == 0
    for name, nt in cfg["available_node_types"].items():
        assert nt["resources"] == raw["available_node_types"][name]["resources"]
    assert all(cmd.startswith("ray stop") or "ray start" in cmd
               for cmd in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])


def _break_resources(raw):
    del raw["available_node_types"][next(n for n in raw["available_node_types"] if n != raw["head_node_type"])][
        "resources"]


def _float_resources(raw):
    raw["available_node_types"][raw["head_node_type"]]["resources"] = {"CPU": 0.5, "GPU": 0}


def _min_workers_over_max(raw):
    for nt in raw["available_node_types"].values():
        nt["min_workers"] = raw["max_workers"]


@pytest.mark.parametrize("breaker", [_break_resources, _float_resources, _min_workers_over_max])
def test_launcher_validator_rejects_broken_config(breaker):
    raw = _load(CLUSTER / "aws.yaml")
    breaker(raw)
    with pytest.raises((jsonschema.ValidationError, ValueError)):
        prepared(raw)


@pytest.mark.parametrize("change, expect", [
    (lambda r: r["available_node_types"]["ray.head.cpu"].update(resources={"CPU": 8, "GPU": 0}), "head"),
    (lambda r: r["available_node_types"]["ray.worker.gpu_4x_a10g"].update(min_workers=1), "min_workers"),
    (lambda r: r["available_node_types"]["ray.worker.gpu_1x_a10g"].pop("max_workers"), "max_workers"),
    (lambda r: r["available_node_types"]["ray.worker.gpu_1x_a10g"]["node_config"].pop("InstanceMarketOptions"),
     "spot"),
    (lambda r: r["available_node_types"]["ray.worker.gpu_1x_a10g"]["resources"].pop("GPU"), "explicit"),
    (lambda r: r["docker"].update(image="rayproject/ray:2.60.0-py311-gpu"), "docker image"),
    (lambda r: r.pop("idle_timeout_minutes"), "idle_timeout"),
], ids=["head-cpus", "min-workers", "max-workers", "on-demand", "no-gpu-key", "image", "idle"])
def test_launcher_rules_catch(change, expect):
    raw = _load(CLUSTER / "aws.yaml")
    change(raw)
    problems = launcher_problems(raw)
    assert any(expect in p for p in problems), problems


# ------------------------------------------------------------------ KubeRay manifests

_GPU_LIMIT = {"properties": {"template": {"properties": {"spec": {"properties": {"containers": {"items": {
    "properties": {"resources": {"properties": {"limits": {
        "required": ["nvidia.com/gpu"],
        "properties": {"nvidia.com/gpu": {"type": "integer", "minimum": 1}}}}}}}}}}}}}}

_CONTAINER = {
    "type": "object", "required": ["name", "image", "resources"],
    "properties": {
        "image": {"type": "string", "pattern": r"^[^\s:@]+(:[^\s:@]+)$"},
        "resources": {"type": "object", "required": ["limits"],
                      "properties": {"limits": {"type": "object", "required": ["cpu", "memory"]}}},
    },
}
_POD = {"type": "object", "required": ["spec"], "properties": {"spec": {
    "type": "object", "required": ["containers"],
    "properties": {"containers": {"type": "array", "minItems": 1, "items": _CONTAINER}}}}}
_START_PARAMS = {"type": "object", "additionalProperties": {"type": "string"}}   # KubeRay: map[string]string
_GROUP = {
    "type": "object",
    "required": ["groupName", "replicas", "minReplicas", "maxReplicas", "rayStartParams", "template"],
    "properties": {
        "groupName": {"type": "string", "minLength": 1},
        "replicas": {"type": "integer", "minimum": 0},
        "minReplicas": {"type": "integer", "minimum": 0},
        "maxReplicas": {"type": "integer", "minimum": 1},
        "rayStartParams": _START_PARAMS,
        "template": _POD,
    },
    # a group named for GPUs must ask Kubernetes for them
    "if": {"properties": {"groupName": {"pattern": "gpu"}}},
    "then": _GPU_LIMIT,
}
RAYCLUSTER_SPEC_SCHEMA = {
    "type": "object",
    "required": ["rayVersion", "enableInTreeAutoscaling", "headGroupSpec", "workerGroupSpecs"],
    "properties": {
        "rayVersion": {"type": "string", "pattern": r"^\d+\.\d+\.\d+$"},
        "enableInTreeAutoscaling": {"const": True},
        "autoscalerOptions": {"type": "object", "properties": {"idleTimeoutSeconds": {"type": "integer",
                                                                                      "minimum": 1}}},
        "headGroupSpec": {"type": "object", "required": ["rayStartParams", "template"], "properties": {
            "rayStartParams": {**_START_PARAMS, "required": ["num-cpus"],
                               "properties": {"num-cpus": {"const": "0"}}},   # the head runs no trials
            "template": _POD}},
        "workerGroupSpecs": {"type": "array", "minItems": 1, "items": _GROUP,
                             "contains": {"properties": {"minReplicas": {"const": 0}}, **_GPU_LIMIT}},
    },
}
RAYCLUSTER_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {"apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayCluster"},
                   "metadata": {"type": "object", "required": ["name"]}, "spec": RAYCLUSTER_SPEC_SCHEMA},
}
RAYJOB_SCHEMA = {
    "type": "object", "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "ray.io/v1"}, "kind": {"const": "RayJob"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {"type": "object",
                 "required": ["entrypoint", "runtimeEnvYAML", "rayClusterSpec", "shutdownAfterJobFinishes"],
                 "properties": {"entrypoint": {"type": "string"}, "runtimeEnvYAML": {"type": "string"},
                                "shutdownAfterJobFinishes": {"const": True},
                                "rayClusterSpec": RAYCLUSTER_SPEC_SCHEMA}},
    },
}


def _containers(group: dict) -> list[dict]:
    return group["template"]["spec"]["containers"]


def _is_gpu_group(group: dict) -> bool:
    return ("gpu" in group["groupName"] or "num-gpus" in group.get("rayStartParams", {})
            or any("nvidia.com/gpu" in (c.get("resources", {}).get("requests") or {}) for c in _containers(group)))


def kuberay_problems(spec: dict) -> list[str]:
    """What the schema cannot say."""
    problems = []
    version = spec["rayVersion"]
    if version != ray.__version__:
        problems.append(f"rayVersion {version} != installed Ray {ray.__version__}")
    groups = [{"groupName": "head", **spec["headGroupSpec"]}] + spec["workerGroupSpecs"]
    for g in groups:
        for c in _containers(g):
            tag = c["image"].rsplit(":", 1)[-1]
            if not (tag == version or tag.startswith(f"{version}-")):
                problems.append(f"{g['groupName']}: image tag {tag!r} does not match rayVersion {version}")
    for g in spec["workerGroupSpecs"]:
        if not g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]:
            problems.append(f"{g['groupName']}: want minReplicas <= replicas <= maxReplicas, have "
                            f"{g['minReplicas']}, {g['replicas']}, {g['maxReplicas']}")
        if _is_gpu_group(g):
            for c in _containers(g):
                lim = (c["resources"].get("limits") or {}).get("nvidia.com/gpu")
                req = (c["resources"].get("requests") or {}).get("nvidia.com/gpu", lim)
                if not lim or req != lim:
                    problems.append(f"{g['groupName']}: nvidia.com/gpu limit {lim!r} (request {req!r})")
    if not any(_is_gpu_group(g) and g["minReplicas"] == 0 for g in spec["workerGroupSpecs"]):
        problems.append("no GPU worker group scales from zero")
    return problems


def raycluster() -> dict:
    return _load(CLUSTER / "kuberay" / "raycluster.yaml")


def rayjob() -> dict:
    return _load(CLUSTER / "kuberay" / "rayjob.yaml")


def test_raycluster_manifest():
    rc = raycluster()
    jsonschema.validate(rc, RAYCLUSTER_SCHEMA)
    assert kuberay_problems(rc["spec"]) == []
    assert {g["groupName"]: _containers(g)[0]["resources"]["limits"]["nvidia.com/gpu"]
            for g in rc["spec"]["workerGroupSpecs"]} == {"gpu-1x": 1, "gpu-4x": 4}


def test_rayjob_manifest():
    job, rc = rayjob(), raycluster()
    jsonschema.validate(job, RAYJOB_SCHEMA)
    assert kuberay_problems(job["spec"]["rayClusterSpec"]) == []
    # one cluster definition: the job's embedded cluster is raycluster.yaml's, field for field
    assert job["spec"]["rayClusterSpec"] == rc["spec"]


def test_rayjob_runs_the_data_efficiency_study():
    spec = rayjob()["spec"]
    argv = spec["entrypoint"].split()
    assert argv[:4] == ["python", "experiments/data_efficiency.py", "--preset", "paper"]
    opts = dict(zip(argv[4::2], argv[5::2]))
    assert set(opts) == {"--data-root", "--storage-path", "--name", "--results-root", "--max-concurrent-trials",
                         "--gpus-per-trial"}
    assert opts["--storage-path"].startswith(("s3://", "gs://"))         # shared by all pods; caches published there
    assert int(opts["--max-concurrent-trials"]) > 1      # KubeRay's autoscaler config is not readable from the head
    assert float(opts["--gpus-per-trial"]) == 0.25       # ... so the GPU decision is explicit
    # the paths it names are mounted on the head, where the driver runs
    head = _containers(spec["rayClusterSpec"]["headGroupSpec"])[0]
    mounts = [m["mountPath"] for m in head["volumeMounts"]]
    for opt in ("--data-root", "--results-root"):
        assert any(opts[opt].startswith(m) for m in mounts), (opt, mounts)
    # data root is mounted on every worker too
    for g in spec["rayClusterSpec"]["workerGroupSpecs"]:
        assert any(opts["--data-root"].startswith(m["mountPath"]) for m in _containers(g)[0]["volumeMounts"])
    # the study script itself accepts these options
    from beat_ray.train import study
    assert "--max-concurrent-trials" in Path(study.__file__).read_text()


def test_rayjob_runtime_env_matches_runtime_env_yaml():
    job_env = yaml.safe_load(rayjob()["spec"]["runtimeEnvYAML"])
    file_env = _load(CLUSTER / "runtime_env.yaml")
    assert set(job_env) == set(file_env) == {"working_dir", "excludes", "env_vars"}
    assert job_env["excludes"] == file_env["excludes"]
    assert job_env["env_vars"] == file_env["env_vars"]
    # the working dir is the checkout baked into the image (the submitter pod runs the head image)
    workdir = re.search(r"^WORKDIR\s+(\S+)", (CLUSTER / "Dockerfile").read_text(), re.MULTILINE).group(1)
    assert job_env["working_dir"] == workdir


@pytest.mark.parametrize("change, schema_fails, expect", [
    (lambda s: s.update(enableInTreeAutoscaling=False), True, None),
    (lambda s: _containers(s["workerGroupSpecs"][0])[0]["resources"]["limits"].pop("nvidia.com/gpu"), True,
     "nvidia.com/gpu"),
    (lambda s: s["workerGroupSpecs"][1].update(replicas=5), False, "minReplicas <= replicas"),
    (lambda s: s["workerGroupSpecs"][0].update(minReplicas=2), False, "minReplicas <= replicas"),
    (lambda s: _containers(s["workerGroupSpecs"][1])[0].update(image=f"{IMAGE_REPO}:2.59.0-py311-gpu"), False,
     "image tag"),
    (lambda s: s.update(rayVersion="2.59.0"), False, "rayVersion"),
    (lambda s: s["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}), True, None),
    (lambda s: s["headGroupSpec"]["rayStartParams"].update({"num-cpus": "4"}), True, None),
], ids=["no-autoscaling", "no-gpu-limit", "replicas-over-max", "min-over-replicas", "image-tag", "ray-version",
        "int-start-param", "head-runs-trials"])
def test_kuberay_checks_catch(change, schema_fails, expect):
    rc = raycluster()
    change(rc["spec"])
    if schema_fails:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(rc, RAYCLUSTER_SCHEMA)
    else:
        jsonschema.validate(rc, RAYCLUSTER_SCHEMA)
    if expect:
        assert any(expect in p for p in kuberay_problems(rc["spec"])), kuberay_problems(rc["spec"])


def test_wrong_api_version_fails_schema():
    rc = raycluster()
    rc["apiVersion"] = "ray.io/v1alpha1"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(rc, RAYCLUSTER_SCHEMA)


# ------------------------------------------------------------------ one image everywhere

def test_dockerfile_and_images_agree():
    text = (CLUSTER / "Dockerfile").read_text()
    base = re.search(r"^FROM\s+(\S+)", text, re.MULTILINE).group(1)
    assert base == f"rayproject/ray:{ray.__version__}-py311-gpu"
    # torch pinned, first, and the same pin as pyproject; the project after it
    pyproject = (REPO / "pyproject.toml").read_text()
    torch_pin = re.search(r'"(torch==[^"]+)"', pyproject).group(1)
    runs = re.findall(r"^RUN\s+(.+)$", text, re.MULTILINE)
    assert f'pip install "{torch_pin}"' in runs[0]
    assert any(r.startswith("pip install .") for r in runs[1:])
    assert f'"ray[default,tune,train]=={ray.__version__}"' in text
    assert f'"ray[default,tune,train]=={ray.__version__}"' in pyproject
    images = {_load(p)["docker"]["image"] for p in launcher_files()}
    for manifest in (raycluster()["spec"], rayjob()["spec"]["rayClusterSpec"]):
        for g in [manifest["headGroupSpec"], *manifest["workerGroupSpecs"]]:
            images |= {c["image"] for c in _containers(g)}
    assert images == {f"{IMAGE_REPO}:{ray.__version__}-py311-gpu"}
    ignore = (CLUSTER / "Dockerfile.dockerignore").read_text().split()
    assert {".git", ".venv", "results"} <= set(ignore)


# ------------------------------------------------------------------ cross-check: trials fit worker types

def _worker_bundle(cell: dict) -> dict:
    """The per-worker bundle of the ScalingConfig that `trainable` gives its TorchTrainer for this cell."""
    from beat_ray.train.tune_fn import scaling_config

    sc = scaling_config(TrialConfig.from_dict(cell))
    assert sc.num_workers == TrialConfig.from_dict(cell).workers
    return dict(sc._resources_per_worker_not_none)


def trial_bundles(cell: dict) -> list[dict]:
    """Every resource bundle one trial of this cell asks Ray for, each of which must fit on one node."""
    cfg = TrialConfig.from_dict(cell)
    bundles = [trial_resources(cfg)]
    if cfg.distributed:
        bundles.append(_worker_bundle(cell))
    return bundles


def _quantity(q) -> float:
    """Kubernetes CPU quantity: 4, "4", "500m"."""
    q = str(q)
    return float(q[:-1]) / 1000 if q.endswith("m") else float(q)


def kuberay_group_resources(group: dict) -> dict:
    """What a KubeRay pod advertises to Ray: rayStartParams win, else the container limits."""
    params = group.get("rayStartParams", {})
    limits = _containers(group)[0]["resources"].get("limits", {})
    assert "resources" not in params, "custom resources: teach this helper KubeRay's quoting first"
    return {"CPU": float(params["num-cpus"]) if "num-cpus" in params else math.floor(_quantity(limits["cpu"])),
            "GPU": float(params.get("num-gpus", limits.get("nvidia.com/gpu", 0)))}


def worker_types(config: str) -> tuple[dict, dict]:
    """(head resources, {worker type: resources}) as Ray sees them, for aws / gcp / kuberay."""
    if config == "kuberay":
        spec = raycluster()["spec"]
        head = kuberay_group_resources(spec["headGroupSpec"] | {"groupName": "head"})
        return head, {g["groupName"]: kuberay_group_resources(g) for g in spec["workerGroupSpecs"]}
    cfg = prepared(_load(CLUSTER / f"{config}.yaml"))
    nts = cfg["available_node_types"]
    head = cfg["head_node_type"]
    return nts[head]["resources"], {n: nt["resources"] for n, nt in nts.items() if n != head}


def fits(request: dict, node: dict) -> bool:
    return all(node.get(k, 0) >= v - 1e-9 for k, v in request.items() if v > 0)


def unfit(requests: list[dict], nodes: dict[str, dict]) -> list[dict]:
    """The requests that no worker type can ever hold (those trials would stay PENDING)."""
    return [r for r in requests if not any(fits(r, n) for n in nodes.values())]


CONFIGS = ("aws", "gcp", "kuberay")


@pytest.mark.parametrize("config", CONFIGS)
@pytest.mark.parametrize("study", STUDIES)
def test_every_trial_fits_a_worker_type(study, config, monkeypatch):
    head, nodes = worker_types(config)
    presets = load_presets(study)
    assert {"paper", "cpu"} <= set(presets)
    seen = set()
    for preset in ("paper", "cpu", "smoke"):
        for cell in presets[preset].cells():
            for bundle in trial_bundles(cell):
                key = tuple(sorted(bundle.items()))
                if key in seen:
                    continue
                seen.add(key)
                assert unfit([bundle], nodes) == [], f"{study}/{preset}: {bundle} fits no worker in {nodes}"
                assert not fits(bundle, head), f"{study}/{preset}: {bundle} would run on the head {head}"
    # the paper presets really ask for GPUs: quarter GPUs for a 4-thread function trial (no TorchTrainer driver)
    assert (("CPU", 4), ("GPU", 0.25)) in seen, seen
    assert (("CPU", 1.0),) in seen and (("CPU", 0.01),) not in seen, seen


def test_a_trial_that_fits_nowhere_is_detected(monkeypatch):
    """An 8-GPU trial, through the same real request path: no worker type holds it, in any config."""
    cell = TrialConfig(dataset="ptbxl", task="superdiagnostic", threads=4, use_gpu=True,
                       gpus_per_trial=8.0).to_dict()
    bundles = trial_bundles(cell)
    assert bundles == [{"CPU": 4, "GPU": 8.0}]
    for config in CONFIGS:
        _, nodes = worker_types(config)
        assert unfit(bundles, nodes) == [{"CPU": 4, "GPU": 8.0}], config
    # and one that asks for more CPUs than any machine has
    assert unfit([{"CPU": 64}], worker_types("aws")[1]) == [{"CPU": 64}]


def trials_per_node(node: dict, bundles: list[dict]) -> int:
    """How many whole trials (driver + its worker bundles) one node holds."""
    need = {}
    for b in bundles:
        for k, v in b.items():
            need[k] = need.get(k, 0) + v
    return min(math.floor(node.get(k, 0) / v + 1e-9) for k, v in need.items() if v > 0)


def test_paper_trials_per_node_match_readme(monkeypatch):
    """The packing arithmetic in cluster/README.md, from the real paper request."""
    cell = load_presets("data_efficiency")["paper"].cells()[0]
    bundles = trial_bundles(cell)
    assert bundles == [{"CPU": 4, "GPU": 0.25}]                 # one function trial, no TorchTrainer driver
    got = {(c, n): trials_per_node(res, bundles) for c in CONFIGS for n, res in worker_types(c)[1].items()}
    assert got == {
        ("aws", "ray.worker.gpu_1x_a10g"): 1,      # 4 vCPU
        ("aws", "ray.worker.gpu_4x_a10g"): 12,     # 48 CPUs / 4; GPUs alone would allow 16
        ("gcp", "ray_worker_gpu_1x_l4"): 2,
        ("gcp", "ray_worker_gpu_4x_l4"): 12,
        ("kuberay", "gpu-1x"): 3,
        ("kuberay", "gpu-4x"): 11,
    }
    # GPU alone: 4 trials share one GPU
    assert trials_per_node({"CPU": 1e9, "GPU": 1}, bundles) == 4
    readme = (CLUSTER / "README.md").read_text()
    for phrase in ("4 trials share one GPU", "**12 trials**", "g5.12xlarge", "--max-concurrent-trials"):
        assert phrase in readme, phrase


@pytest.mark.parametrize("path", launcher_files(), ids=lambda p: p.name)
def test_autoscaler_would_launch_gpu_workers_for_a_paper_queue(path, monkeypatch):
    """Ray's own bin-packing (the v1 autoscaler's resource_demand_scheduler), offline: a queue of 48
    paper trials gets GPU workers, the 4-GPU type first, within max_workers, and nothing is left over."""
    import functools

    from ray.autoscaler._private import resource_demand_scheduler as rds
    from ray.autoscaler._private.node_provider_availability_tracker import (
        NodeAvailabilitySummary,
    )

    cfg = prepared(_load(path))
    cell = load_presets("data_efficiency")["paper"].cells()[0]
    demand = trial_bundles(cell) * 48
    scorer = functools.partial(rds._default_utilization_scorer,
                               node_availability_summary=NodeAvailabilitySummary(node_availabilities={}))
    to_add, left = rds.get_nodes_for(cfg["available_node_types"], {}, cfg["head_node_type"],
                                     cfg["max_workers"], demand, scorer)
    four_gpu = next(n for n, nt in cfg["available_node_types"].items() if nt["resources"].get("GPU") == 4)
    assert to_add[four_gpu] == cfg["available_node_types"][four_gpu]["max_workers"], dict(to_add)
    assert cfg["head_node_type"] not in to_add
    assert sum(to_add.values()) <= cfg["max_workers"]
    assert left == [], left[:3]


@pytest.mark.parametrize("config", ["aws", "gcp"])
def test_launcher_mounts_every_dataset_and_sets_a_node_cache(config):
    """Issue K: the benchmark's paper preset reads PTB-XL, CPSC2018 and Chapman; every node starts Ray with a
    node-local BEAT_RAY_CACHE, where published caches are copied once (beat_ray/data/cachesync.py)."""
    cfg = yaml.safe_load((REPO / "cluster" / f"{config}.yaml").read_text())
    assert set(cfg["file_mounts"]) == {"/data/ptb-xl/1.0.3", "/data/cpsc2018", "/data/chapman"}
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("export BEAT_RAY_CACHE=/data/beat_ray_cache;" in c for c in cfg[key]), key


def test_kuberay_pods_mount_every_dataset_and_a_node_cache():
    for spec in (raycluster()["spec"], rayjob()["spec"]["rayClusterSpec"]):
        groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
        for g in groups:
            (c,) = _containers(g)
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert {"/data/ptb-xl", "/data/cpsc2018", "/data/chapman", "/cache"} <= mounts, mounts
            assert {"name": "BEAT_RAY_CACHE", "value": "/cache"} in c["env"]


@pytest.mark.parametrize("path", launcher_files(), ids=lambda p: p.name)
def test_launcher_turns_token_auth_on_everywhere(path):
    """Issue 37: the Jobs API runs what it is sent, so every Ray process and `ray` command of a launched cluster
    runs with RAY_AUTH_MODE=token, the head makes the token before `ray start`, the workers get its copy, and the
    dashboard binds wider than localhost only beside that reason (a comment naming the State API)."""
    raw, text = _load(path), path.read_text()
    assert "-e RAY_AUTH_MODE=token" in raw["docker"]["run_options"]
    head = " ".join(raw["head_start_ray_commands"])
    assert head.index("ray get-auth-token --generate > /dev/null") < head.index("ray start --head")
    assert "/home/ray/.ray" in raw["cluster_synced_files"]
    assert "RAY_AUTH_MODE=disabled" not in text
    if "--dashboard-host=0.0.0.0" in head:
        assert re.search(r"# (--dashboard-host=)?0\.0\.0\.0(:| because) .*State API", text, re.S)


@pytest.mark.parametrize("manifest", (raycluster, lambda: rayjob()["spec"]["rayClusterSpec"]), ids=("raycluster",
                                                                                                    "rayjob"))
def test_kuberay_turns_token_auth_on(manifest):
    spec = manifest()
    spec = spec.get("spec", spec)
    assert spec["authOptions"] == {"mode": "token"}
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        for c in _containers(group):
            assert {"name": "RAY_AUTH_MODE", "value": "disabled"} not in c.get("env", [])
