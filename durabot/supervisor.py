"""`durabot up`: start the process table in order, wait for each to be healthy, keep them running, stop
them all.

Children run in their own process group (so Ctrl-C reaches only `up`, which stops them in reverse
order) and carry PR_SET_PDEATHSIG, so the kernel kills them if `up` itself dies, even by SIGKILL: no
orphans, ever.

A bot people leave running must survive a crash: a worker, gateway or sim exchange that dies is
started again after a pause (``DURABOT_UP_FIRST_RESTART_PAUSE_S``, 1 s, doubling with each crash up
to 30 s; back to the first pause once it has run a minute), and `up` says so. Temporal makes a
worker restart safe: its workflows carry on where they were. A child that crash-loops
(``CRASH_LOOP_COUNT`` crashes in a row, each within ``STABLE_AFTER_S`` of its start) stops `up` with
a message naming it; so does the death of Temporal or MongoDB, which nothing can work without. (A
fixed window would never see a loop once the backoff spreads the crashes wider than it.)

``DURABOT_WORKERS`` and ``DURABOT_GATEWAYS`` run several copies of a process (``worker-1``,
``gateway-2``, …, gateways on consecutive ports); each copy is started together with its siblings and
restarted on its own.
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

from pydantic import SecretStr
from rich.console import Console

from core.settings import Settings
from durabot.processes import PROCESSES, Copy, copies_of

PR_SET_PDEATHSIG = 1
STOP_GRACE_S = 15.0
CRASH_LOOP_COUNT = 5
MAX_PAUSE_S = 30.0
# A child that has run this long since its last start counts as recovered: its pause starts over.
STABLE_AFTER_S = 60.0


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


def check_ports(copies: list[Copy]) -> None:
    seen: dict[int, str] = {}
    for copy in copies:
        for port, setting in copy.spec.ports(copy.settings):
            if port in seen:
                raise StartupError(f"port {port} is set twice ({seen[port]} and {setting}); give each its own")
            seen[port] = setting
            if port_in_use(port):
                raise StartupError(f"port {port} is already in use (setting {setting}); free it or choose another")


@dataclass
class Running:
    copy: Copy
    proc: subprocess.Popen
    log_path: Path
    log_file: IO[bytes] = field(repr=False)
    started_at: float = field(default_factory=time.monotonic)
    crashes: int = 0  # crashes in a row, each before the child had run STABLE_AFTER_S
    pause_s: float = 1.0  # the next pause before a restart (set from the settings at start)
    restart_at: float | None = None  # when a crashed child is started again
    recovering: bool = False  # restarted, not yet healthy


class CrashLoop(StartupError):
    """A child keeps dying; `up` gives up on it and stops."""


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

    def enabled_copies(self) -> list[list[Copy]]:
        """The copies of each enabled spec, in start order."""
        return [copies_of(spec, self.settings) for spec in PROCESSES if spec.enabled(self.settings)]

    def start_all(self) -> None:
        groups = self.enabled_copies()
        check_ports([copy for group in groups for copy in group])
        self._check_external()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for group in groups:
            self._start(group)

    def _check_external(self) -> None:
        from durabot.processes import mongo_healthy, temporal_healthy

        s = self.settings
        if not s.embedded_temporal and not temporal_healthy(s):
            raise StartupError(f"cannot reach Temporal at {s.temporal_target} (setting DURABOT_TEMPORAL_ADDRESS)")
        if not s.embedded_mongo and not mongo_healthy(s):
            raise StartupError("cannot reach MongoDB at DURABOT_MONGO_URI (setting DURABOT_MONGO_URI)")

    def _spawn(self, copy: Copy, log_file: IO[bytes]) -> subprocess.Popen:
        return subprocess.Popen(
            copy.spec.argv(copy.settings),
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(os.getpid()),
            env=self._child_env(copy.settings),
        )

    def _start(self, copies: list[Copy]) -> None:
        """Spawn the copies of one spec together (workers import for seconds) and wait for each."""
        started = time.monotonic()
        waiting: list[Running] = []
        for copy in copies:
            log_path = self.log_dir / f"{copy.name}.log"
            log_file = open(log_path, "ab")  # noqa: SIM115 (kept open for the child's lifetime)
            item = Running(copy, self._spawn(copy, log_file), log_path, log_file,
                           pause_s=self.settings.up_first_restart_pause_s)
            self.running.append(item)
            waiting.append(item)
        deadline = started + self.settings.startup_timeout_s
        names = ", ".join(item.copy.name for item in waiting)
        with self.console.status(f"starting [bold]{names}[/] …", spinner="dots"):
            while waiting:
                for item in list(waiting):
                    if item.proc.poll() is not None:
                        raise StartupError(
                            f"{item.copy.name} exited with code {item.proc.returncode} during start: "
                            f"{last_log_line(item.log_path) or 'no output'} (log: {item.log_path})"
                        )
                    if item.copy.ready(item.proc.pid):
                        waiting.remove(item)
                        self.console.print(
                            f"[green]✓[/] {item.copy.name:<9} ready in {time.monotonic() - started:4.1f}s  "
                            f"pid {item.proc.pid}  log {item.log_path}")
                if waiting and time.monotonic() > deadline:
                    raise StartupError(
                        f"{waiting[0].copy.name} was not healthy after {self.settings.startup_timeout_s:g}s "
                        f"(setting DURABOT_STARTUP_TIMEOUT_S; log: {waiting[0].log_path})"
                    )
                if waiting:
                    time.sleep(0.2)

    @staticmethod
    def _child_env(settings: Settings) -> dict[str, str]:
        # Children must see exactly the settings `up` resolved (for their copy: a gateway its own
        # port), including ones that came from .env.
        env = dict(os.environ)
        for name, value in settings.model_dump().items():
            if value is not None:
                # A secret's str() is its mask: the child needs the value itself (never logged here).
                plain = value.get_secret_value() if isinstance(value, SecretStr) else value
                env[f"DURABOT_{name.upper()}"] = str(plain)
        return env

    def urls(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for item in self.running:
            if item.copy.index == 0:  # a spec's URLs name all its copies
                out += item.copy.spec.urls(self.settings)
        if not self.settings.embedded_temporal and self.settings.temporal_ui_target:
            out.append(("Temporal UI", self.settings.temporal_ui_target))
        return out

    def watch(self) -> None:
        """One round of keeping the children running: restart the ones that died and may be, say when
        a restarted one is healthy again; ``StartupError`` when `up` must stop."""
        now = time.monotonic()
        for item in self.running:
            if item.restart_at is not None:
                if now >= item.restart_at:
                    item.restart_at = None
                    item.proc = self._spawn(item.copy, item.log_file)
                    item.started_at, item.recovering = now, True
                continue
            code = item.proc.poll()
            if code is None:
                if item.recovering and item.copy.ready(item.proc.pid):
                    item.recovering = False
                    self.console.print(f"[green]✓[/] {item.copy.name} is back  pid {item.proc.pid}")
                continue
            self._crashed(item, code, now)

    def _crashed(self, item: Running, code: int, now: float) -> None:
        name, last = item.copy.name, last_log_line(item.log_path) or "no output"
        if not item.copy.spec.restart:
            raise StartupError(f"{name} exited with code {code}: {last} (log: {item.log_path})")
        if now - item.started_at >= STABLE_AFTER_S:
            item.pause_s, item.crashes = self.settings.up_first_restart_pause_s, 0
        item.crashes += 1
        if item.crashes >= CRASH_LOOP_COUNT:
            raise CrashLoop(f"{name} crash-loops ({item.crashes} crashes in a row, each within "
                            f"{STABLE_AFTER_S:g} s of its start), giving up; last exit code {code}: {last} "
                            f"(log: {item.log_path})")
        self.console.print(f"[yellow]![/] {name} exited with code {code}: {last}; restarting in "
                           f"{item.pause_s:g} s ({item.crashes} crash(es) in a row)")
        item.restart_at = now + item.pause_s
        item.pause_s = min(item.pause_s * 2, MAX_PAUSE_S)

    def stop_all(self) -> None:
        for item in reversed(self.running):
            if item.proc.poll() is None:
                item.proc.send_signal(signal.SIGTERM)
                try:
                    item.proc.wait(timeout=STOP_GRACE_S)
                except subprocess.TimeoutExpired:
                    item.proc.kill()
                    item.proc.wait()
                self.console.print(f"[dim]■ {item.copy.name} stopped[/]")
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
            sup.watch()
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
