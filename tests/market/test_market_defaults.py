"""What a fresh `durabot up` replays, and how the dashboard learns the real dates behind the sim's
virtual clock: one consistent market by default (BTCUSDT 5m of 2023), other files opt-in."""

from __future__ import annotations

from core.datafiles import load_candles
from core.settings import Settings
from durabot.processes import sim_exchange_argv

BTC_FILE = "data/candles/BTCUSDT-5m-2023-01.csv.gz"


def test_the_default_offline_set_is_btcusdt_5m_alone(monkeypatch):
    for name in ("DURABOT_SIM_SYMBOLS", "DURABOT_FEED_STREAMS"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings(_env_file=None)
    assert settings.feed_stream_list == (("BTCUSDT", "5m"),)
    assert settings.sim_symbol_list == ("BTCUSDT",)
    argv = sim_exchange_argv(settings)
    assert argv[argv.index("--symbol") + 1] == "BTCUSDT" and argv.count("--symbol") == 1
    # Other files are opt-in, one by one or all of them.
    wider = Settings(_env_file=None, sim_symbols="BTCUSDT, ethbtc")
    assert wider.sim_symbol_list == ("BTCUSDT", "ETHBTC") and sim_exchange_argv(wider).count("--symbol") == 2
    everything = Settings(_env_file=None, sim_symbols="all")
    assert everything.sim_symbol_list is None and "--symbol" not in sim_exchange_argv(everything)


async def test_the_banner_names_the_real_dates_being_replayed(settings, start_sim, run_gateway):
    sim = await start_sim(speed="60")
    data = load_candles(BTC_FILE)
    wired = settings.model_copy(update={"sim_exchange_port": sim.port, "exchange_rest_url": sim.rest_url,
                                        "exchange_futures_url": sim.rest_url, "exchange_ws_url": sim.ws_url})
    async with run_gateway(wired) as gw:
        system = (await gw.http.get("/api/system")).json()
    clock = system["sim"]
    assert clock["reachable"] is True
    [replayed] = [r for r in clock["replaying"] if r["symbol"] == "BTCUSDT"]
    assert (replayed["interval"], replayed["real_from"], replayed["copy"]) == ("5m", data[0].open_time, 0)
    # start_sim caps the file at 2,000 candles and starts 500 candles in.
    assert replayed["real_to"] == data[1999].open_time
    assert replayed["real_now"] == data[499].open_time
    # The virtual clock is shifted onto today: the market time is not the real date.
    assert clock["market_time"] - replayed["real_now"] > 365 * 86_400_000
