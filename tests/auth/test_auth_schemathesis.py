"""schemathesis over /api/auth and /api/settings: no 5xx, and every status the API answers is declared."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


async def test_auth_and_settings_fuzzing_finds_no_server_error_or_undeclared_status(gateway, sign_up, tmp_path):
    account = await sign_up()
    report = tmp_path / "schemathesis.xml"
    proc = await asyncio.create_subprocess_exec(
        str(BIN / "schemathesis"), "run", f"{gateway.settings.gateway_url}/openapi.json",
        "--include-path-regex", "^/api/(auth|settings)",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance",
        "--max-examples", "20", "--seed", "1", "--no-color", "--suppress-health-check", "all",
        "-H", f"Authorization: Bearer {account.access}",
        "--report", "junit", "--report-junit-path", str(report),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # schemathesis keeps its example database in the working directory
    )
    output, _ = await proc.communicate()
    text = output.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    junit = report.read_text()
    # It really exercised both routers (and more than a handful of operations).
    assert "/api/auth/login" in junit and "/api/settings/api-keys" in junit, junit[:2000]
    assert junit.count("<testcase") >= 10
