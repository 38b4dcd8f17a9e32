"""webapp/openapi.json is what the dashboard's typed client is generated from; it must be the app's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_checked_in_schema_matches_the_app():
    done = subprocess.run([sys.executable, "-c", "import sys; sys.path.insert(0, 'webapp/scripts'); "
                           "import dump_openapi; print(dump_openapi.render(), end='')"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    checked_in = json.loads((REPO / "webapp" / "openapi.json").read_text())
    assert json.loads(done.stdout) == checked_in, (
        "webapp/openapi.json is stale: run `npm run dump:openapi && npm run gen:api` in webapp/")
