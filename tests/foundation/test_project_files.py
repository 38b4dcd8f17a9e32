"""The production compose file, the README's promises and CI agree with the code."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from core.settings import Settings

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_has_the_production_services(compose):
    services = compose["services"]
    assert {"postgres", "temporal", "temporal-ui", "mongo", "mongo-init", "worker", "gateway", "proxy"} <= set(services)
    # Rate limits and the /ws fan-out live in MongoDB: nothing may depend on a Redis.
    assert "redis" not in services
    for name in ("postgres", "temporal", "mongo", "worker", "gateway", "proxy"):
        assert "healthcheck" in services[name], f"{name} has no health check"
    assert services["temporal"]["environment"]["DB"] == "postgres12"
    assert "--replSet" in services["mongo"]["command"]
    assert "rs.initiate" in " ".join(services["mongo-init"]["command"])
    assert services["temporal-ui"]["ports"] == ["8233:8080"]


def test_compose_gateways_scale_behind_one_port(compose):
    services = compose["services"]
    gateway, proxy = services["gateway"], services["proxy"]
    assert "ports" not in gateway, "gateway replicas publish no port; the proxy does"
    assert gateway["deploy"]["replicas"] >= 2
    assert gateway["environment"]["DURABOT_FORWARDED_ALLOW_IPS"] == "*"
    assert proxy["ports"] == ["8080:8080"]
    assert proxy["depends_on"]["gateway"]["condition"] == "service_healthy"
    mount = next(v for v in proxy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro"))
    caddyfile = (REPO / mount.split(":")[0]).read_text()
    assert re.search(r"dynamic a gateway 8080\b", caddyfile), caddyfile
    assert f":{gateway['environment']['DURABOT_GATEWAY_PORT']} {{" in caddyfile


def test_compose_runs_the_same_commands_as_local(compose):
    services = compose["services"]
    assert services["worker"]["command"] == ["worker"]
    assert services["gateway"]["command"] == ["gateway"]
    assert "ENTRYPOINT [\"durabot\"]" in (REPO / "Dockerfile").read_text()
    assert services["worker"]["deploy"]["replicas"] >= 2, "workers are the scalable tier"


def test_compose_dependencies_and_environment_point_at_real_settings(compose):
    services = compose["services"]
    known = {f"DURABOT_{name.upper()}" for name in Settings.model_fields}
    for name in ("worker", "gateway"):
        svc = services[name]
        assert svc["depends_on"]["temporal"]["condition"] == "service_healthy"
        assert svc["depends_on"]["mongo-init"]["condition"] == "service_completed_successfully"
        env = svc["environment"]
        assert set(env) <= known, set(env) - known
        assert env["DURABOT_TEMPORAL_ADDRESS"] == "temporal:7233"
        assert env["DURABOT_MONGO_URI"].startswith("mongodb://mongo:27017/")
        Settings(_env_file=None, **{k.removeprefix("DURABOT_").lower(): v for k, v in env.items()})
    for svc in services.values():
        for dep in svc.get("depends_on", {}):
            assert dep in services, f"depends on unknown service {dep}"


@pytest.mark.skipif(
    shutil.which("docker") is None
    or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode != 0,
    reason="docker compose CLI not installed; the structural checks above stand in for it",
)
def test_docker_compose_config_parses():
    subprocess.run(["docker", "compose", "config", "--quiet"], cwd=REPO, check=True)


def _quick_start_commands() -> list[str]:
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Quick start\n(.*?)(?=^## )", readme, re.S | re.M)
    assert section, "README has no '## Quick start' section"
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", section.group(1), re.S)
    return [ln.split("#")[0].strip() for b in blocks for ln in b.splitlines() if ln.split("#")[0].strip()]


def test_readme_quick_start_has_exactly_two_commands():
    commands = _quick_start_commands()
    assert commands == ["bin/durabot up", "bin/durabot test"], commands


def test_ci_runs_the_readme_test_command():
    ci = (REPO / ".ci" / "run").read_text()
    test_command = _quick_start_commands()[1]
    assert re.search(rf"^\s*(exec\s+)?{re.escape(test_command)}\b", ci, re.M), ci


def test_every_setting_is_documented_in_the_readme():
    readme = (REPO / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`DURABOT_{name.upper()}`" in readme, f"DURABOT_{name.upper()} missing from the README table"


def test_nothing_in_the_product_reads_shared():
    offenders = []
    for package in ("trading", "workflows", "activities", "worker", "gateway", "sim", "durabot", "bin"):
        for path in (REPO / package).rglob("*"):
            if path.is_file() and path.suffix in (".py", "") and "../shared" in path.read_text(errors="ignore"):
                offenders.append(str(path))
    assert not offenders


def test_the_image_holds_every_package():
    pyproject = (REPO / "pyproject.toml").read_text()
    packages = re.search(r"^include = \[(.*?)\]", pyproject, re.M)
    assert packages, "pyproject has no [tool.setuptools.packages.find] include"
    dockerfile = (REPO / "Dockerfile").read_text()
    for package in re.findall(r'"(\w+)\*"', packages.group(1)):
        assert re.search(rf"^COPY {package} {package}$", dockerfile, re.M), f"the image lacks {package}/"
