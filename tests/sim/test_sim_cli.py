"""``durabot sim exchange`` as registered on a Typer group."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from sim.exchange.cli import register


def _sim_group() -> typer.Typer:
    group = typer.Typer()
    register(group)

    @group.command("other")
    def other() -> None:  # a second command keeps Typer from collapsing the group
        """Another sim."""

    return group


def test_exchange_command_offers_every_setting() -> None:
    result = CliRunner().invoke(_sim_group(), ["exchange", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--host",
        "--port",
        "--data-dir",
        "--state-dir",
        "--speed",
        "--start-offset-candles",
        "--symbol",
        "--tiling",
        "--max-candles-per-series",
        "--ws-max-lifetime-s",
        "--ws-ping-interval-s",
        "--weight-limit-per-minute",
        "--spot-fee-rate",
        "--lockstep",
        "--lockstep-timeout-s",
    ):
        assert option in result.output


def test_bad_settings_are_refused_with_a_clear_message() -> None:
    result = CliRunner().invoke(_sim_group(), ["exchange", "--speed", "fast"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "speed must be 'max' or a positive number" in result.output
