"""The Dockerfile and the Spaces card: every path the image copies exists and is not docker-ignored,
the health check polls a route the app serves, and the Python version agrees everywhere.

No image is built here: this machine has the docker CLI but no daemon (and builds pull a base
image and wheels). Set ROUTER_DOCKER_BUILD=1 where a daemon runs to build it for real.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess

import pytest
import yaml

from .conftest import ROOT


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out, buf = [], ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        buf += line
        word, _, rest = buf.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def ignored(path: str, patterns: list[str]) -> bool:
    parts = path.strip("/").split("/")
    return any(fnmatch.fnmatch(path.strip("/"), p) or fnmatch.fnmatch(parts[0], p) for p in patterns)


@pytest.fixture(scope="module")
def dockerfile():
    return instructions((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def test_every_copied_path_exists_and_is_not_ignored(dockerfile):
    patterns = [p.strip() for p in (ROOT / ".dockerignore").read_text().splitlines()
                if p.strip() and not p.startswith("#")]
    copies = [args.split() for ins, args in dockerfile if ins in ("COPY", "ADD")]
    assert copies
    for args in copies:
        srcs = [a for a in args[:-1] if not a.startswith("--")]
        for src in srcs:
            assert (ROOT / src).exists(), f"Dockerfile copies {src}, which is not in the repository"
            assert not ignored(src, patterns), f"Dockerfile copies {src}, but .dockerignore excludes it"
    copied = {s.rstrip("/") for args in copies for s in args[:-1]}
    assert {"app.py", "router", "configs", "assets"} <= copied  # what `python app.py` reads at start
    for ins, args in dockerfile:
        if ins == "RUN":
            for req in re.findall(r"-r\s+(\S+)", args):
                assert req in copied, f"RUN installs {req} before it is copied"


def test_health_check_polls_readiness_and_the_app_serves_it(dockerfile):
    from router.serving.app import create_api

    hc = next(args for ins, args in dockerfile if ins == "HEALTHCHECK")
    assert "/health/ready" in hc
    cmd = next(args for ins, args in dockerfile if ins == "CMD")
    assert "app.py" in cmd
    import inspect

    assert '"/health/ready"' in inspect.getsource(create_api)
    env = " ".join(args for ins, args in dockerfile if ins == "ENV")
    assert "HF_HUB_OFFLINE=1" in env and "ROUTER_CACHE=" in env
    # Built as root, run as another user: the converted and exported encoder must live at a named path
    # that the run-time user owns, not in the build's ~/.cache.
    model_cache = re.search(r"ROUTER_MODEL_CACHE=(\S+)", env)
    assert model_cache, "ROUTER_MODEL_CACHE is not set: the run-time user would convert the encoder again"
    chown = next(args for ins, args in dockerfile if ins == "RUN" and "python -m router route" in args)
    owned = re.search(r"chown -R \S+ (\S+)", chown).group(1)
    assert model_cache.group(1).startswith(owned)
    # The encoder is converted at build time, before the offline switch.
    runs = [args for ins, args in dockerfile if ins in ("RUN", "ENV")]
    warm = next(i for i, a in enumerate(runs) if "python -m router route" in a)
    offline = next(i for i, a in enumerate(runs) if "HF_HUB_OFFLINE=1" in a)
    assert warm < offline
    # Each warmed config exists (a typo would fail the build only on a machine with docker) and the fast
    # path's graph is among them: choosing its pool line must not build at run time, offline.
    warmed = re.findall(r"python -m router route .*? --config (\S+)", chown)
    assert "configs/default.yaml" in warmed and "configs/options/routerbench-11-fast.yaml" in warmed
    for cfg in warmed:
        assert (ROOT / cfg).is_file(), f"Dockerfile warms {cfg}, which is not in the repository"


def test_python_version_agrees_between_dockerfile_and_spaces_card(dockerfile):
    arg = next(args for ins, args in dockerfile if ins == "ARG" and args.startswith("PYTHON_VERSION="))
    version = arg.split("=", 1)[1]
    front = (ROOT / "README.md").read_text(encoding="utf-8").split("---")[1]
    card = yaml.safe_load(front)
    assert str(card["python_version"]) == version == "3.11"
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py"
    assert len(card["short_description"]) <= 60  # the Hub rejects longer ones
    reqs = (ROOT / "requirements.txt").read_text()
    assert f"gradio=={card['sdk_version']}" in reqs


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("ROUTER_DOCKER_BUILD") != "1" or shutil.which("docker") is None,
                    reason="set ROUTER_DOCKER_BUILD=1 on a machine with a docker daemon to build the image")
def test_the_image_builds():
    subprocess.run(["docker", "build", "-t", "prefill-router:test", str(ROOT)], check=True, timeout=3600)


def test_grafana_dashboard_reads_only_metrics_the_router_exports():
    import json

    from router.serving.metrics import Metrics

    dash = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    m = Metrics()
    m.sensitivity_hit("p", "r", "a")
    m.budget_state("p", "s", "ok")
    exported = {s.name for fam in m.registry.collect() for s in fam.samples} | {
        f"{fam.name}{suffix}" for fam in m.registry.collect() for suffix in ("_bucket", "_sum", "_count", "_total")}
    used = set(re.findall(r"\b(router_[a-z_]+)", " ".join(exprs)))
    assert used and used <= exported, used - exported
    for name in ("router_requests_total", "router_routing_seconds_bucket", "router_upstream_latency_seconds_bucket",
                 "router_encoder_batch_size_sum", "router_failovers_total", "router_spend_usd_total",
                 "router_baseline_spend_usd_total"):
        assert name in used
