"""schemathesis's coverage phase (boundary and invalid values of every field, ``--max-examples 20``)
over /api/paper-trading and /api/backtests against a live session: no 5xx, every status declared."""

from __future__ import annotations

from .conftest import fuzz, live_session


async def test_paper_trading_boundary_values_find_no_server_error_or_undeclared_status(gateway, sign_up,
                                                                                      temporal_client, tmp_path):
    account = await sign_up()
    await live_session(gateway, temporal_client, account)
    junit = await fuzz(gateway, account, tmp_path, "coverage")
    assert "/api/paper-trading/basic-settings" in junit and "/api/backtests" in junit, junit[:2000]
    assert junit.count("<testcase") >= 31, junit[:2000]
