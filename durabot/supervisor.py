"""`durabot up`: start the process table in order, wait for each to be healthy, stop them all.

Children run in their own process group (so Ctrl-C reaches only `up`, which stops them in
reverse order) and carry PR_SET_PDEATHSIG, so the kernel kills them if `up` itself dies, even by
SIGKILL: no orphans, ever.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from rich.console import Console

from durabot.processes import PROCESSES, ProcessSpec
from durabot.settings import Settings

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 15.0


class StartupError(RuntimeError):
    """One line for the operator; `up` prints it and exits non-zero."""


def _die_with_parent(parent_pid: int):
    libc = ctypes.CDLL("libc.so.6", use_errno=True)

    def preexec() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        # The parent may have died between fork and prctl; then nobody would signal us.
        if os.getppid() != parent_pid:
            os._exit(1)

    return preexec


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(specs: list[ProcessSpec], settings: Settings) -> None:
    seen: dict[int, str] = {}
    for spec in specs:
        for port, setting in spec.ports(settings):
            if port in seen:
                raise StartupError(f"port {port} is set twice ({seen[port]} and {setting}); give each its own")
            seen[port] = setting
            if port_in_use(port):
                raise StartupError(f"port {port} is already in use (setting {setting}); free it or choose another")


@dataclass
class Running:
    spec: ProcessSpec
    proc: subprocess.Popen
    log_path: Path
    log_file: IO[bytes] = field(repr=False)


def last_log_line(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return ""
    return lines[-1][:400] if lines else ""


class Supervisor:
    def __init__(self, settings: Settings, console: Console | None = None) -> None:
        self.settings = settings
        self.console = console or Console(stderr=True, soft_wrap=True)
        self.running: list[Running] = []
        self.log_dir = settings.var_dir / "logs"

    def enabled_specs(self) -> list[ProcessSpec]:
        return [spec for spec in PROCESSES if spec.enabled(self.settings)]

    def start_all(self) -> None:
        specs = self.enabled_specs()
        check_ports(specs, self.settings)
        self._check_external()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for spec in specs:
            self._start(spec)

    def _check_external(self) -> None:
        from durabot.processes import mongo_healthy, temporal_healthy

        s = self.settings
        if not s.embedded_temporal and not temporal_healthy(s):
            raise StartupError(f"cannot reach Temporal at {s.temporal_target} (setting DURABOT_TEMPORAL_ADDRESS)")
        if not s.embedded_mongo and not mongo_healthy(s):
            raise StartupError("cannot reach MongoDB at DURABOT_MONGO_URI (setting DURABOT_MONGO_URI)")

    def _start(self, spec: ProcessSpec) -> None:
        log_path = self.log_dir / f"{spec.name}.log"
        log_file = open(log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
        started = time.monotonic()
        proc = subprocess.Popen(
            spec.argv(self.settings),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
            env=self._child_env(),
        )
        self.running.append(Running(spec, proc, log_path, log_file))
        deadline = started + self.settings.startup_timeout_s
        with self.console.status(f"starting [bold]{spec.name}[/] …", spinner="dots"):
            while True:
                if proc.poll() is not None:
                    raise StartupError(
                        f"{spec.name} exited with code {proc.returncode} during start: "
                        f"{last_log_line(log_path) or 'no output'} (log: {log_path})"
                    )
                if spec.healthy(self.settings):
                    break
                if time.monotonic() > deadline:
                    raise StartupError(
                        f"{spec.name} was not healthy after {self.settings.startup_timeout_s:g}s "
                        f"(setting DURABOT_STARTUP_TIMEOUT_S; log: {log_path})"
                    )
                time.sleep(0.2)
        self.console.print(
            f"[green]✓[/] {spec.name:<9} ready in {time.monotonic() - started:4.1f}s  pid {proc.pid}  log {log_path}"
        )

    def _child_env(self) -> dict[str, str]:
        # Children must see exactly the settings `up` resolved, including ones that came from .env.
        env = dict(os.environ)
        for name, value in self.settings.model_dump().items():
            if value is not None:
                env[f"DURABOT_{name.upper()}"] = str(value)
        return env

    def urls(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for item in self.running:
            out += item.spec.urls(self.settings)
        if not self.settings.embedded_temporal and self.settings.temporal_ui_target:
            out.append(("Temporal UI", self.settings.temporal_ui_target))
        return out

    def first_exited(self) -> Running | None:
        return next((r for r in self.running if r.proc.poll() is not None), None)

    def stop_all(self) -> None:
        for item in reversed(self.running):
            if item.proc.poll() is None:
                item.proc.send_signal(signal.SIGTERM)
                try:
                    item.proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    item.proc.kill()
                    item.proc.wait()
                self.console.print(f"[dim]■ {item.spec.name} stopped[/]")
            item.log_file.close()
        self.running.clear()


def run_up(settings: Settings) -> int:
    console = Console(stderr=True, soft_wrap=True)
    sup = Supervisor(settings, console)
    stop_requested: list[int] = []

    def on_signal(signum: int, _frame) -> None:
        stop_requested.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        sup.start_all()
        console.print("\n[bold]Durabot is up.[/]")
        for label, url in sup.urls():
            console.print(f"  {label:<12} {url}")
        console.print("Press Ctrl-C to stop.\n")
        while True:
            crashed = sup.first_exited()
            if crashed:
                console.print(
                    f"[red]error:[/] {crashed.spec.name} exited with code {crashed.proc.returncode}: "
                    f"{last_log_line(crashed.log_path)} (log: {crashed.log_path})"
                )
                return 1
            time.sleep(0.5)
    except StartupError as exc:
        console.print(f"[red]error:[/] {exc}")
        return 1
    except KeyboardInterrupt:
        console.print("stopping …")
        return 0
    finally:
        # Further Ctrl-C while we stop would leave children half-stopped; let stop_all finish.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sup.stop_all()
