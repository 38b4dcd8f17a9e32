"""sim/exchange REST over a real socket: Binance paths, parameters, shapes, weights and errors."""

from __future__ import annotations

import httpx

from core.datafiles import load_candles, load_series
from sim.exchange import SimExchangeServer, replay_series

from .conftest import BTCUSDT_FILE, DATA, StartSim, sim_state


async def _get(sim: SimExchangeServer, path: str, **params: str | int) -> httpx.Response:
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        return await client.get(path, params=params)


async def test_klines_rows_are_binance_shaped_and_only_from_the_virtual_past(start_sim: StartSim) -> None:
    sim = await start_sim()
    state = await sim_state(sim)
    reply = await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m")
    rows = reply.json()
    assert reply.status_code == 200
    assert len(rows) == 500  # Binance's default limit
    for row in rows:
        assert len(row) == 12
        assert isinstance(row[0], int) and isinstance(row[6], int) and isinstance(row[8], int)
        assert all(isinstance(v, str) for v in row[1:6] + [row[7], row[9], row[10], row[11]])
        assert row[6] == row[0] + 300_000 - 1
    now = state["virtual_now_ms"]
    assert rows[-1][0] <= now < rows[-1][6] + 1  # the newest row is the still-open candle
    assert rows[-1][1] == rows[-1][2] == rows[-1][3] == rows[-1][4] and rows[-1][5] == "0.00000000"

    expected = replay_series(load_candles(BTCUSDT_FILE), state["origin_ms"], tiling=False, cap=2000)
    closed = [r for r in rows if r[6] < now]
    assert [float(r[4]) for r in closed] == [c.close for c in expected.candles(1, 500)]
    assert closed[-1][0] == expected.candle(499).open_time
    assert state["series"][0]["closed_candles"] == 500


async def test_start_end_and_limit_select_like_binance(start_sim: StartSim) -> None:
    sim = await start_sim()
    first = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", limit=1000)).json()
    assert len(first) == 501  # 500 closed + the open one: everything visible
    start = first[10][0]
    window = (
        await _get(
            sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", startTime=start - 1, endTime=first[19][0], limit=5
        )
    ).json()
    assert [r[0] for r in window] == [first[i][0] for i in range(10, 15)]
    tail = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", endTime=first[19][0], limit=3)).json()
    assert [r[0] for r in tail] == [first[i][0] for i in (17, 18, 19)]
    future = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", startTime=first[-1][0] + 1)).json()
    assert future == []


async def test_coarser_intervals_aggregate_the_stored_series(start_sim: StartSim) -> None:
    sim = await start_sim()
    fine = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", limit=1000)).json()
    hours = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="1h", limit=1000)).json()
    full_hour = hours[2]
    members = [r for r in fine if full_hour[0] <= r[0] < full_hour[0] + 3_600_000]
    assert full_hour[0] % 3_600_000 == 0 and len(members) == 12
    assert float(full_hour[1]) == float(members[0][1])
    assert float(full_hour[2]) == max(float(r[2]) for r in members)
    assert float(full_hour[3]) == min(float(r[3]) for r in members)
    assert float(full_hour[4]) == float(members[-1][4])
    assert float(full_hour[5]) == round(sum(float(r[5]) for r in members), 8)
    assert full_hour[6] == full_hour[0] + 3_600_000 - 1


async def test_errors_carry_binance_codes_and_messages(start_sim: StartSim) -> None:
    sim = await start_sim()
    cases = [
        ({"symbol": "NOPEUSDT", "interval": "5m"}, -1121, "Invalid symbol."),
        ({"symbol": "BTCUSDT", "interval": "7m"}, -1120, "Invalid interval."),
        ({"symbol": "BTCUSDT", "interval": "1m"}, -1120, "Invalid interval."),  # finer than the data
        ({"interval": "5m"}, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed."),
        ({"symbol": "BTCUSDT"}, -1102, "Mandatory parameter 'interval' was not sent, was empty/null, or malformed."),
        (
            {"symbol": "BTCUSDT", "interval": "5m", "limit": "ten"},
            -1100,
            "Illegal characters found in parameter 'limit'; legal range is '^[0-9]{1,20}$'.",
        ),
        (
            {"symbol": "BTCUSDT", "interval": "5m", "limit": "1001"},
            -1130,
            "Data sent for parameter 'limit' is not valid.",
        ),
    ]
    for params, code, message in cases:
        reply = await _get(sim, "/api/v3/klines", **params)
        assert reply.status_code == 400, params
        assert reply.json() == {"code": code, "msg": message}, params
    unknown = await _get(sim, "/api/v3/ticker/24hr", symbol="NOPEUSDT")
    assert unknown.status_code == 400 and unknown.json()["code"] == -1121


async def test_used_weight_header_counts_binance_weights(start_sim: StartSim) -> None:
    sim = await start_sim()
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        used = [
            int((await client.get(path, params=params)).headers["X-MBX-USED-WEIGHT-1M"])
            for path, params in [
                ("/api/v3/ping", {}),
                ("/api/v3/klines", {"symbol": "BTCUSDT", "interval": "5m"}),
                ("/api/v3/exchangeInfo", {}),
                ("/api/v3/ticker/24hr", {}),
            ]
        ]
    steps = [b - a for a, b in zip(used, used[1:], strict=False)]
    # A minute boundary may reset the window between two calls; otherwise the steps are the weights.
    assert steps == [2, 20, 80] or any(s < 0 for s in steps)


async def test_weight_limit_answers_429_then_418(start_sim: StartSim) -> None:
    sim = await start_sim(weight_limit_per_minute=5)
    async with httpx.AsyncClient(base_url=sim.rest_url) as client:
        statuses = [(await client.get("/api/v3/ping")).status_code for _ in range(5)]
        limited = await client.get("/api/v3/ping")
        banned = await client.get("/api/v3/ping")
    assert statuses == [200] * 5
    assert limited.status_code == 429 and limited.json()["code"] == -1003
    assert int(limited.headers["Retry-After"]) >= 1
    assert banned.status_code == 418 and "banned" in banned.json()["msg"]
    assert int(banned.headers["Retry-After"]) >= 1


async def test_exchange_info_and_tickers(start_sim: StartSim) -> None:
    sim = await start_sim(symbols=("BTCUSDT", "ETHBTC"))
    info = (await _get(sim, "/api/v3/exchangeInfo")).json()
    assert info["timezone"] == "UTC" and isinstance(info["serverTime"], int)
    assert info["rateLimits"][0] == {
        "rateLimitType": "REQUEST_WEIGHT",
        "interval": "MINUTE",
        "intervalNum": 1,
        "limit": 6000,
    }
    by_symbol = {s["symbol"]: s for s in info["symbols"]}
    assert set(by_symbol) == {"BTCUSDT", "ETHBTC"}
    btc = by_symbol["BTCUSDT"]
    assert (btc["baseAsset"], btc["quoteAsset"], btc["status"]) == ("BTC", "USDT", "TRADING")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.10000000"  # the file's prices have one decimal
    assert filters["LOT_SIZE"]["stepSize"] == "0.00100000"
    assert set(filters) == {"PRICE_FILTER", "LOT_SIZE", "NOTIONAL"}
    one = (await _get(sim, "/api/v3/exchangeInfo", symbol="ETHBTC")).json()
    assert [s["symbol"] for s in one["symbols"]] == ["ETHBTC"]

    ticker = (await _get(sim, "/api/v3/ticker/24hr", symbol="BTCUSDT")).json()
    rows = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", limit=1000)).json()
    assert ticker["lastPrice"] == rows[-1][4]
    assert float(ticker["highPrice"]) == max(float(r[2]) for r in rows if r[0] > rows[-1][0] - 86_400_000)
    assert {"priceChange", "priceChangePercent", "openTime", "closeTime", "volume", "quoteVolume"} <= set(ticker)
    prices = (await _get(sim, "/api/v3/ticker/price")).json()
    assert [p["symbol"] for p in prices] == ["BTCUSDT", "ETHBTC"]
    assert prices[0]["price"] == rows[-1][4]


async def test_futures_endpoints(start_sim: StartSim) -> None:
    sim = await start_sim(
        symbols=("BTCUSDT", "XRPUSDT"), max_candles_per_series=None, tiling=True, start_offset_candles=2000
    )
    now = (await sim_state(sim))["virtual_now_ms"]
    klines = (await _get(sim, "/fapi/v1/klines", symbol="XRPUSDT", interval="1h", limit=5)).json()
    assert len(klines) == 5 and all(r[0] <= now for r in klines)
    marks = (await _get(sim, "/fapi/v1/markPriceKlines", symbol="XRPUSDT", interval="1h", limit=3)).json()
    assert len(marks) == 3 and marks[0][5] == "0"
    premium = (await _get(sim, "/fapi/v1/premiumIndex", symbol="XRPUSDT")).json()
    assert premium["symbol"] == "XRPUSDT" and premium["time"] == now
    assert premium["nextFundingTime"] > now and premium["nextFundingTime"] % (8 * 3_600_000) == 0
    funding = (await _get(sim, "/fapi/v1/fundingRate", symbol="XRPUSDT", limit=1000)).json()
    file_rates = [rate for _, rate in load_series(DATA / "futures" / "XRPUSDT-8h-funding_rate.csv.gz")]
    assert funding and len(funding) <= len(file_rates)
    assert all(row["fundingTime"] <= now for row in funding)
    assert [float(r["fundingRate"]) for r in funding] == file_rates[: len(funding)]
    # A symbol without futures files is served from its spot series, with no funding history.
    spot_based = (await _get(sim, "/fapi/v1/klines", symbol="BTCUSDT", interval="5m", limit=2)).json()
    spot = (await _get(sim, "/api/v3/klines", symbol="BTCUSDT", interval="5m", limit=2)).json()
    assert spot_based == spot
    assert (await _get(sim, "/fapi/v1/fundingRate", symbol="BTCUSDT")).json() == []
    assert (await _get(sim, "/fapi/v1/premiumIndex", symbol="BTCUSDT")).json()["lastFundingRate"] == "0.00000000"
    bad = await _get(sim, "/fapi/v1/klines", symbol="DOGEUSDT", interval="1h")
    assert bad.status_code == 400 and bad.json()["code"] == -1121
