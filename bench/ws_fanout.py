"""Events per gateway (issue 18): how many account events a `/ws` gateway hands to its sockets per
second, and what that costs it in CPU, with two gateways following the same ``events`` stream.

The real `durabot up` (``DURABOT_GATEWAYS=2``, ``DURABOT_WORKERS=1``) in a temp dir on free ports.
``--users`` users sign up; each has ``--sockets`` authenticated connections on every gateway,
subscribed to ``TradeExecuted`` only. ``--events`` events per user are published with
``activities.events.publish`` (the workers' own path) in batches of ``--batch``, as fast as MongoDB
takes them; the run ends when every socket holds every event of its user. Figures per gateway:
frames sent per second over the run, and its CPU seconds (from /proc) per 1,000 frames.

    PYTHONPATH=. .venv/bin/python bench/ws_fanout.py [--users 10] [--sockets 2] [--events 300] [--batch 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import websockets
from pymongo import AsyncMongoClient

from activities.events import TRADE_EXECUTED, event_doc, publish

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def gateway_pids(up_pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if ppid == up_pid and argv[-3:-1] == [b"durabot", b"gateway"]:
                found.append(int(entry.name))
    return sorted(found)


async def counting_socket(url: str, token: str, want: int, subscribed: asyncio.Event) -> None:
    async with websockets.connect(f"{url}?token={token}", max_queue=None) as sock:
        await sock.send(json.dumps({"type": "Unsubscribe", "channels": ["MarketData", "ChartUpdate"]}))
        await sock.send(json.dumps({"type": "Subscribe", "channels": [TRADE_EXECUTED]}))
        seen: set[str] = set()
        async for raw in sock:
            frame = json.loads(raw)
            if frame["type"] == "Subscribed":
                subscribed.set()
            elif frame["type"] == TRADE_EXECUTED:
                seen.add(frame["event_key"])
                if len(seen) == want:
                    return


async def run(args: argparse.Namespace, root: Path) -> None:
    ports = {k: free_port() for k in ("TEMPORAL_PORT", "TEMPORAL_UI_PORT", "MONGO_PORT", "SIM_EXCHANGE_PORT",
                                      "SIM_XAI_PORT")}
    first = free_port()
    sim = f"127.0.0.1:{ports['SIM_EXCHANGE_PORT']}"
    env = {**os.environ, **{f"DURABOT_{k}": str(v) for k, v in ports.items()}, "DURABOT_GATEWAY_PORT": str(first),
           "DURABOT_VAR_DIR": str(root / "var"), "DURABOT_GATEWAYS": "2", "DURABOT_WORKERS": "1",
           "DURABOT_EXCHANGE_REST_URL": f"http://{sim}", "DURABOT_EXCHANGE_FUTURES_URL": f"http://{sim}",
           "DURABOT_EXCHANGE_WS_URL": f"ws://{sim}", "DURABOT_LOG_LEVEL": "WARNING",
           "DURABOT_LOGIN_ATTEMPTS_PER_IP": "100000",
           "DURABOT_XAI_BASE_URL": f"http://127.0.0.1:{ports['SIM_XAI_PORT']}/v1"}
    out = (root / "up.out").open("ab")
    up = subprocess.Popen([sys.executable, "-m", "durabot", "up"], env=env, cwd=root, stdout=out,  # noqa: ASYNC220
                          stderr=subprocess.STDOUT)
    mongo: AsyncMongoClient = AsyncMongoClient(f"mongodb://127.0.0.1:{ports['MONGO_PORT']}/?directConnection=true"
                                               "&retryWrites=false")
    try:
        while b"Durabot is up" not in (root / "up.out").read_bytes():
            assert up.poll() is None, (root / "up.out").read_text()[-2000:]
            await asyncio.sleep(0.5)
        gateways = [f"http://127.0.0.1:{first + i}" for i in range(2)]
        tokens: list[tuple[str, str]] = []
        async with httpx.AsyncClient(timeout=60) as http:
            for i in range(args.users):
                email, password = f"fan-{uuid.uuid4().hex[:8]}@example.com", "a long bench passphrase"
                base = gateways[i % 2]
                user = (await http.post(f"{base}/api/auth/register", json={"email": email, "password": password}))
                login = await http.post(f"{base}/api/auth/login", json={"email": email, "password": password})
                tokens.append((user.json()["user_id"], login.json()["access_token"]))
        subscribed = []
        sockets = []
        for _, token in tokens:
            for base in gateways:
                for _ in range(args.sockets):
                    ready = asyncio.Event()
                    subscribed.append(ready)
                    sockets.append(asyncio.create_task(counting_socket(
                        base.replace("http", "ws") + "/ws", token, args.events, ready)))
        await asyncio.gather(*(e.wait() for e in subscribed))
        pids = gateway_pids(up.pid)
        cpu_before = [cpu_s(pid) for pid in pids]
        began = time.perf_counter()
        db = mongo.durabot
        docs = [event_doc(TRADE_EXECUTED, f"bench:{user_id}:{n}", {"action": "bench", "n": n}, user_id=user_id)
                for n in range(args.events) for user_id, _ in tokens]
        for start in range(0, len(docs), args.batch):
            await publish(db, docs[start:start + args.batch])
        published_s = time.perf_counter() - began
        await asyncio.wait_for(asyncio.gather(*sockets), timeout=600)
        wall = time.perf_counter() - began
        cpu = [cpu_s(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
        frames_each = args.users * args.sockets * args.events  # per gateway
        print(f"\nws fan-out bench: 2 gateways, {args.users} users x {args.sockets} sockets per gateway, "
              f"{args.events} TradeExecuted per user ({len(docs)} events) in batches of {args.batch}")
        print(f"machine: {os.cpu_count()} cores (shared; load {os.getloadavg()[0]:.2f})")
        print(f"published in {published_s:.2f} s ({len(docs) / published_s:.0f} events/s inserted); every socket "
              f"complete after {wall:.2f} s")
        for i, used in enumerate(cpu):
            print(f"  gateway {i + 1}: {frames_each} frames, {frames_each / wall:.0f} frames/s over the run, "
                  f"{len(docs) / wall:.0f} events/s followed, CPU {used:.2f} s = {1000 * used / frames_each:.2f} "
                  f"CPU s per 1,000 frames")
    finally:
        await mongo.close()
        up.send_signal(signal.SIGINT)
        up.wait(timeout=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--sockets", type=int, default=2, help="sockets per user on each gateway")
    parser.add_argument("--events", type=int, default=300, help="events per user")
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="durabot-bench-ws-") as root:
        asyncio.run(run(args, Path(root)))


if __name__ == "__main__":
    main()
