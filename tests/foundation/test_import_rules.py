"""The import rules (pyproject ``[tool.importlinter]``): one direction of dependencies, adapters that
reach only the application layer, a domain without I/O, no import loops. A test on a copy of the tree
with a forbidden import added proves the rules bite."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PACKAGES = ("trading", "core", "activities", "workflows", "services", "gateway", "worker", "sim", "durabot")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=root, capture_output=True, text=True,
                          env={"PYTHONPATH": str(root), "PATH": str(BIN)})


def test_the_import_rules_hold():
    done = lint_imports(REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


def test_a_router_that_reaches_mongodb_or_a_loop_breaks_the_rules(tmp_path):
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with (tmp_path / "gateway" / "routers" / "market.py").open("a") as router:
        router.write("\nfrom pymongo import ASCENDING  # noqa: E402,F401\n")
    with (tmp_path / "sim" / "exchange" / "control.py").open("a") as control:
        control.write("\nfrom sim.exchange import app  # noqa: E402,F401\n")
    with (tmp_path / "core" / "settings.py").open("a") as settings:
        settings.write("\nimport services.paper  # noqa: E402,F401\n")
    done = lint_imports(tmp_path)
    assert done.returncode != 0
    assert "4 kept" not in done.stdout
    assert "gateway.routers.market -> pymongo" in done.stdout, done.stdout
    assert ".control -> .app" in done.stdout, done.stdout
    assert "core.settings -> services.paper" in done.stdout, done.stdout
