"""Write the gateway's OpenAPI schema to webapp/openapi.json (run from the repo's venv); then
`npm run gen:api` turns it into src/api/schema.d.ts. tests/dashboard/test_openapi_sync.py fails when
the checked-in copy drifts from the app."""

from __future__ import annotations

import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from core.settings import Settings  # noqa: E402
from gateway.app import create_app  # noqa: E402

TARGET = REPO / "webapp" / "openapi.json"


def render() -> str:
    return json.dumps(create_app(Settings(_env_file=None)).openapi(), indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    print(f"wrote {TARGET}")
