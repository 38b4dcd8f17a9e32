"""The Binance REST client against sim/exchange over real sockets, and against a hostile vendor."""

from __future__ import annotations

import time

import httpx
import pytest

from activities.binance import BanAlert, BinanceRestClient, RequestGate
from activities.exchange_errors import (
    BadExchangeDataError,
    IpBannedError,
    PermanentExchangeError,
    RateLimitedError,
    TemporaryExchangeError,
)
from core.datafiles import load_candles, load_series
from sim.exchange import replay_series, series_checksum

from .conftest import BTCUSDT_FILE, DATA, StartSim, set_faults, sim_state


async def _kline_requests(sim_url: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=sim_url) as client:
        return [r for r in (await client.get("/sim/requests")).json() if r["path"] == "/api/v3/klines"]


async def test_time_sync_exchange_info_and_tickers(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with BinanceRestClient(sim.rest_url) as client:
        offset = await client.sync_time()
        assert abs(offset) < 1000 and client.time_offset_ms == offset  # wall time, not market time
        infos = await client.exchange_info()
        btc = infos["BTCUSDT"]
        assert (btc.base_asset, btc.quote_asset, btc.status) == ("BTC", "USDT", "TRADING")
        assert (btc.tick_size, btc.step_size, btc.min_notional) == (0.1, 0.001, 5.0)
        (ticker,) = await client.ticker_24h("BTCUSDT")
        assert ticker.symbol == "BTCUSDT" and ticker.last_price > 0 and ticker.high_price >= ticker.low_price
        assert [t.symbol for t in await client.ticker_24h()] == ["BTCUSDT"]
        assert client.gate.used_weight > 0


async def test_klines_page_past_1000_and_return_only_closed_candles(start_sim: StartSim) -> None:
    sim = await start_sim(start_offset_candles=1500)
    origin = (await sim_state(sim))["origin_ms"]
    expected = replay_series(load_candles(BTCUSDT_FILE), origin, tiling=False, cap=2000)
    async with BinanceRestClient(sim.rest_url) as client:
        everything = await client.klines("BTCUSDT", "5m", start_ms=expected.first_open_time)
        assert len(everything) == 1500  # candle 1500 is open at the start position: held back
        assert series_checksum(everything) == series_checksum(expected.candles(0, 1500))
        assert len(await _kline_requests(sim.rest_url)) == 2

        newest = await client.klines("BTCUSDT", "5m", limit=1200)
        assert series_checksum(newest) == series_checksum(expected.candles(300, 1500))

        bounded = await client.klines(
            "BTCUSDT", "5m", start_ms=expected.first_open_time, end_ms=expected.candle(1099).open_time
        )
        assert [c.open_time for c in bounded[-2:]] == [expected.candle(1098).open_time, expected.candle(1099).open_time]
        assert len(bounded) == 1100
        hourly = await client.klines("BTCUSDT", "1h", limit=3)
        assert all(c.interval_ms == 3_600_000 and c.open_time % 3_600_000 == 0 for c in hourly)


async def test_vendor_errors_map_to_temporary_and_permanent(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with BinanceRestClient(sim.rest_url) as client:
        await set_faults(sim, http_5xx_remaining=1, http_5xx_status=503)
        with pytest.raises(TemporaryExchangeError) as temporary:
            await client.ping()
        assert (temporary.value.http_status, temporary.value.code) == (503, -1001)
        await client.ping()  # the fault was for one request only

        with pytest.raises(PermanentExchangeError) as permanent:
            await client.klines("NOPEUSDT", "5m")
        assert permanent.value.code == -1121 and "Invalid symbol." in permanent.value.message
        assert not isinstance(permanent.value, TemporaryExchangeError)

    async with BinanceRestClient("http://127.0.0.1:9") as unreachable:
        with pytest.raises(TemporaryExchangeError, match="could not reach"):
            await unreachable.ping()


async def test_nothing_is_sent_inside_a_retry_after_window(start_sim: StartSim) -> None:
    sim = await start_sim()
    await set_faults(sim, http_429_remaining=3, retry_after_s=1)
    rate_limited = 0
    async with BinanceRestClient(sim.rest_url) as client:
        for _ in range(6):
            try:
                await client.klines("BTCUSDT", "5m", limit=10)
            except RateLimitedError as error:
                assert error.retry_after_s == 1 and error.code == -1003
                rate_limited += 1
    assert rate_limited == 3
    log = await _kline_requests(sim.rest_url)
    assert [r["status"] for r in log].count(429) == 3 and 418 not in [r["status"] for r in log]
    for refused in (r for r in log if r["status"] == 429):
        window_end = refused["wall_ms"] + 1000
        inside = [r for r in log if refused["wall_ms"] < r["wall_ms"] < window_end]
        assert inside == [], f"requests sent inside the Retry-After window: {inside}"


async def test_a_418_stops_all_requests_and_raises_the_alert(start_sim: StartSim) -> None:
    sim = await start_sim()
    await set_faults(sim, http_429_remaining=1, retry_after_s=30, ban_s=60)
    alerts: list[BanAlert] = []
    async with (
        BinanceRestClient(sim.rest_url) as polite,
        BinanceRestClient(sim.rest_url, on_ban=alerts.append) as careless,
    ):
        with pytest.raises(RateLimitedError):
            await polite.ping()
        # A second client that does not share the first one's limiter keeps going: banned.
        with pytest.raises(IpBannedError) as banned:
            await careless.ping()
        assert banned.value.http_status == 418 and banned.value.retry_after_s == 60
        assert len(alerts) == 1 and alerts[0].retry_after_s == 60
        assert alerts[0].until_wall_ms > time.time() * 1000 + 50_000
        sent = len(await _requests(sim.rest_url))
        for _ in range(3):
            with pytest.raises(IpBannedError):
                await careless.klines("BTCUSDT", "5m")
        assert len(await _requests(sim.rest_url)) == sent  # stopped: nothing reached the exchange
        assert len(alerts) == 1


async def _requests(sim_url: str) -> list[dict]:
    async with httpx.AsyncClient(base_url=sim_url) as client:
        return (await client.get("/sim/requests")).json()


def _row(open_time: int, o: str, h: str, low: str, c: str, v: str = "1.0") -> list[object]:
    return [open_time, o, h, low, c, v, open_time + 59_999, "0", 0, "0", "0", "0"]


async def test_bad_rows_from_a_hostile_exchange_are_refused_logged_and_counted(caplog) -> None:
    t0 = 1_700_000_000_000 - 1_700_000_000_000 % 60_000
    rows = [
        _row(t0, "10", "11", "9", "10.5"),
        _row(t0 + 60_000, "10", "11", "9", "NaN"),  # NaN
        _row(t0 + 120_000, "0", "11", "9", "10"),  # zero price
        _row(t0 + 180_000, "10", "9", "11", "10"),  # high below low
        _row(t0 + 240_000, "10.5", "12", "10", "11"),
        _row(t0 + 120_000, "10", "11", "9", "10"),  # out of order
        [t0 + 300_000, "1", "2"],  # wrong shape
        _row(t0 + 360_000, "11", "12", "10", "11.5"),
        _row(t0 + 420_000, "11.5", "12", "11", "11.7"),  # newest: possibly open, never returned
    ]

    def vendor(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v3/time":
            return httpx.Response(200, content=b'{"serverTime": 12')  # malformed JSON
        return httpx.Response(200, json=rows)

    http = httpx.AsyncClient(transport=httpx.MockTransport(vendor))
    async with BinanceRestClient("http://vendor.test", http_client=http) as client:
        candles = await client.klines("XRPETH", "1m", start_ms=t0)
        assert [c.open_time for c in candles] == [t0, t0 + 240_000, t0 + 360_000]
        with pytest.raises(BadExchangeDataError):
            await client.server_time()
        assert dict(client.bad_data.by_category) == {
            "bad_value": 3,
            "out_of_order": 1,
            "bad_shape": 1,
            "malformed_json": 1,
        }
    await http.aclose()
    refused = [r.getMessage() for r in caplog.records if "refused bad exchange data" in r.getMessage()]
    assert len(refused) == 6
    assert any("'NaN'" in m for m in refused)
    assert any('{"serverTime": 12' in m for m in refused)  # the raw payload is in the log


async def test_usdm_contracts_funding_history_and_klines(start_sim: StartSim) -> None:
    sim = await start_sim(
        symbols=("BTCUSDT", "XRPUSDT"), start_offset_candles=2000, max_candles_per_series=None, tiling=True
    )
    now = (await sim_state(sim))["virtual_now_ms"]
    async with BinanceRestClient(sim.rest_url) as client:
        contracts = await client.exchange_info(market="usdm")
        assert set(contracts) == {"BTCUSDT", "XRPUSDT"}
        assert contracts["XRPUSDT"].tick_size == 0.0001 and contracts["XRPUSDT"].min_notional == 5.0
        rates = await client.funding_rates("XRPUSDT")
        file_rates = load_series(DATA / "futures" / "XRPUSDT-8h-funding_rate.csv.gz")
        assert rates and all(r.funding_time <= now for r in rates)
        assert [r.rate for r in rates] == [rate for _, rate in file_rates[: len(rates)]]
        assert all(
            abs(b.funding_time - a.funding_time - 28_800_000) < 1000 for a, b in zip(rates, rates[1:], strict=False)
        )
        assert await client.funding_rates("BTCUSDT") == []  # no futures file: no funding history
        hourly = await client.klines("XRPUSDT", "1h", limit=5, market="usdm")
        assert len(hourly) == 5 and hourly[-1].close_time <= now
        with pytest.raises(PermanentExchangeError):
            await client.funding_rates("DOGEUSDT")


async def test_the_gate_waits_for_the_next_minute_when_the_weight_would_pass_the_limit() -> None:
    started = time.monotonic()
    minute_end = 1_800_000_000.0  # a wall-clock minute boundary

    def wall() -> float:  # 0.2 s before the boundary, then running at real speed
        return minute_end - 0.2 + (time.monotonic() - started)

    gate = RequestGate(weight_limit=10, wall_clock=wall)
    gate.record_weight({"x-mbx-used-weight-1m": "9"})
    async with gate.slot(1):
        assert wall() < minute_end  # 9 + 1 fits the limit: no wait
    gate.record_weight({"x-mbx-used-weight-1m": "10"})
    async with gate.slot(2):
        assert wall() >= minute_end  # 10 + 2 would pass it: held until the window resets
