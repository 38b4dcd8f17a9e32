"""The `durabot` command."""

from __future__ import annotations

import asyncio
import os
import sys

import typer
from pydantic import ValidationError

from core.settings import Settings

app = typer.Typer(
    help="Durabot: crypto trading on durable Temporal workflows.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


sim_app = typer.Typer(help="Protocol-true stand-ins for services this machine cannot reach.", no_args_is_help=True)
app.add_typer(sim_app, name="sim")


user_app = typer.Typer(help="Manage accounts (admins are created here, never through the API).",
                       no_args_is_help=True)
app.add_typer(user_app, name="user")


def fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        raise fail(f"setting DURABOT_{field.upper()}: {first['msg'].removeprefix('Value error, ')}") from None


@app.command()
def up() -> None:
    """Start the whole embedded stack: Temporal, SecantusDB, DURABOT_WORKERS workers and DURABOT_GATEWAYS
    gateways (on consecutive ports)."""
    from durabot.supervisor import run_up

    raise typer.Exit(run_up(load_settings()))


@app.command()
def worker() -> None:
    """Run a worker for the trading, market, ai and real task queues."""
    from core.connect import DependencyError
    from core.logs import configure_logging
    from worker.main import run_worker

    settings = load_settings()
    configure_logging("worker", settings.log_level)
    try:
        asyncio.run(run_worker(settings))
    except DependencyError as exc:
        raise fail(str(exc)) from None


@app.command()
def gateway() -> None:
    """Run the REST/WebSocket gateway."""
    import uvicorn

    from core.connect import DependencyError
    from core.logs import configure_logging
    from gateway.app import create_app

    settings = load_settings()
    configure_logging("gateway", settings.log_level)
    config = uvicorn.Config(create_app(settings), host=settings.gateway_host, port=settings.gateway_port,
                            log_config=None, lifespan="on", ws="websockets-sansio",
                            # Behind a proxy, rate limits must count the client's IP, not the proxy's.
                            proxy_headers=True, forwarded_allow_ips=settings.forwarded_allow_ips)
    server = uvicorn.Server(config)
    try:
        server.run()
    except DependencyError as exc:
        raise fail(str(exc)) from None
    if not server.started:
        # uvicorn logs the lifespan failure and returns; make the exit code say so too.
        raise typer.Exit(1)


@app.command()
def telegram() -> None:
    """Run the Telegram bot (long polling) until Ctrl-C: the set token, or offline the local sim/telegram's."""
    from core.connect import DependencyError
    from core.logs import configure_logging
    from gateway.telegram.runner import run_until_interrupted
    from services.telegram_links import bot_token

    settings = load_settings()
    token = bot_token(settings)
    if token is None:
        raise fail("no bot token: set DURABOT_TELEGRAM_BOT_TOKEN (from @BotFather)")
    configure_logging("telegram", settings.log_level)
    try:
        run_until_interrupted(settings, token)
    except DependencyError as exc:
        raise fail(str(exc)) from None


@app.command()
def health(component: str = typer.Argument(..., help="temporal, mongo, worker or gateway")) -> None:
    """Exit 0 when a component answers as healthy (for container health checks and scripts)."""
    from durabot.processes import PROCESSES

    specs = {spec.name: spec for spec in PROCESSES}
    if component not in specs:
        raise fail(f"unknown component {component!r}; one of: {', '.join(specs)}", code=2)
    settings = load_settings()
    if not specs[component].healthy(settings):
        raise fail(f"{component} is not healthy")
    typer.echo(f"{component} ok")


@app.command()
def temporal() -> None:
    """Run the embedded Temporal dev server in the foreground."""
    from durabot.processes import temporal_argv

    argv = temporal_argv(load_settings())
    os.execv(argv[0], argv)


@app.command()
def mongo() -> None:
    """Run the embedded SecantusDB (MongoDB wire protocol) in the foreground."""
    from durabot.processes import mongo_argv

    argv = mongo_argv(load_settings())
    os.execv(argv[0], argv)


@user_app.command("create")
def user_create(
    email: str = typer.Argument(..., help="The new user's email (their login)."),
    admin: bool = typer.Option(False, "--admin", help="Give the user the admin role."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a user (with --admin, an admin) in the configured MongoDB."""
    from core.connect import DependencyError
    from services.auth.provisioning import create_user_command

    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        user_id = asyncio.run(create_user_command(load_settings(), email, password, admin=admin))
    except (ValueError, DependencyError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"created {'admin' if admin else 'user'} {user_id} ({email.strip().lower()})")


@user_app.command("reset-2fa")
def user_reset_two_factor(email: str = typer.Argument(..., help="The user's email.")) -> None:
    """Turn two-factor authentication off for a user who lost their app and recovery codes; every login
    session of theirs ends. Only for an operator who has verified the person."""
    from core.connect import DependencyError
    from services.auth.provisioning import reset_two_factor_command

    try:
        user_id = asyncio.run(reset_two_factor_command(load_settings(), email))
    except (ValueError, DependencyError) as exc:
        raise fail(str(exc)) from None
    typer.echo(f"two-factor authentication is off for {user_id} ({email.strip().lower()}); their sessions ended")


def _register_commands() -> None:
    from durabot.backtest_cmd import register as register_backtest
    from sim.exchange.cli import register as register_sim_exchange
    from sim.telegram.cli import register as register_sim_telegram
    from sim.xai.cli import register as register_sim_xai

    register_backtest(app)
    register_sim_exchange(sim_app)
    register_sim_xai(sim_app)
    register_sim_telegram(sim_app)


_register_commands()


def main() -> None:
    if sys.version_info < (3, 12):  # noqa: UP036 (an older interpreter can still reach this file)
        sys.exit(f"error: Durabot needs Python >= 3.12; this is {sys.version.split()[0]} ({sys.executable})")
    app()
