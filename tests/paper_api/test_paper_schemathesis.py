"""schemathesis (examples, fuzzing, stateful; ``--max-examples 20``) over /api/paper-trading and
/api/backtests against a live session: no 5xx, and every status the API answers is declared. The
coverage phase (boundary values) runs in test_paper_schemathesis_coverage.py, so each file stays
near a minute."""

from __future__ import annotations

from .conftest import fuzz, live_session


async def test_paper_trading_fuzzing_finds_no_server_error_or_undeclared_status(gateway, sign_up, temporal_client,
                                                                                tmp_path):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    junit = await fuzz(gateway, account, tmp_path, "examples,fuzzing,stateful")
    assert "/api/paper-trading/orders" in junit and "/api/backtests" in junit, junit[:2000]
    assert junit.count("<testcase") >= 31, junit[:2000]
