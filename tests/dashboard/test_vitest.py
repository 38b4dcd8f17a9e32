"""The webapp's own unit tests (Vitest: reconnect state machine, socket, CSV export, error mapping,
formatting, forms) run as part of the suite, so CI fails when they do."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def test_vitest_suite_passes(webapp_dist: Path) -> None:
    npm = shutil.which("npm")
    assert npm is not None  # webapp_dist skips without npm
    done = subprocess.run([npm, "test", "--silent"], cwd=webapp_dist.parent, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, f"vitest failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}"
    assert " passed" in done.stdout, done.stdout[-2000:]
