"""Bad configuration gives one clear line on stderr and a non-zero exit, never a traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from durabot.supervisor import port_in_use

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert done.returncode != 0
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in done.stderr, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_malformed_mongo_uri(tmp_path, run_env):
    env = run_env(DURABOT_MONGO_URI="not-a-uri", DURABOT_VAR_DIR=str(tmp_path))
    for command in ("up", "worker", "gateway"):
        done = run([sys.executable, "-m", "durabot", command], env, tmp_path)
        assert_one_line_error(done, "DURABOT_MONGO_URI", "mongodb://")


def test_unreachable_temporal(tmp_path, run_env, get_free_port, mongo_server):
    closed = f"127.0.0.1:{get_free_port()}"
    env = run_env(DURABOT_TEMPORAL_ADDRESS=closed, DURABOT_MONGO_URI=mongo_server.uri,
                  DURABOT_CONNECT_TIMEOUT_S="1", DURABOT_VAR_DIR=str(tmp_path))
    up = run([sys.executable, "-m", "durabot", "up"], env, tmp_path)
    assert_one_line_error(up, "cannot reach Temporal", closed, "DURABOT_TEMPORAL_ADDRESS")
    worker = run([sys.executable, "-m", "durabot", "worker"], env, tmp_path)
    assert_one_line_error(worker, "cannot reach Temporal", closed, "DURABOT_TEMPORAL_ADDRESS")


def test_unreachable_mongo(tmp_path, run_env, get_free_port, temporal_server):
    env = run_env(DURABOT_TEMPORAL_ADDRESS=temporal_server.address,
                  DURABOT_MONGO_URI=f"mongodb://127.0.0.1:{get_free_port()}/?directConnection=true",
                  DURABOT_CONNECT_TIMEOUT_S="1", DURABOT_VAR_DIR=str(tmp_path))
    assert_one_line_error(run([sys.executable, "-m", "durabot", "worker"], env, tmp_path),
                          "cannot reach MongoDB", "DURABOT_MONGO_URI")


def test_port_in_use_names_port_and_setting(tmp_path, run_env, get_free_port):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = run_env(DURABOT_VAR_DIR=str(tmp_path / "var"), DURABOT_GATEWAY_PORT=str(port),
                      DURABOT_TEMPORAL_PORT=str(get_free_port()), DURABOT_TEMPORAL_UI_PORT=str(get_free_port()),
                      DURABOT_MONGO_PORT=str(get_free_port()))
        done = run([sys.executable, "-m", "durabot", "up"], env, tmp_path)
    assert_one_line_error(done, f"port {port} is already in use", "DURABOT_GATEWAY_PORT")
    # Nothing was started, so nothing was written.
    assert not (tmp_path / "var" / "logs").exists()


def test_invalid_port_setting(tmp_path, run_env):
    done = run([sys.executable, "-m", "durabot", "up"], run_env(DURABOT_GATEWAY_PORT="99999"), tmp_path)
    assert_one_line_error(done, "DURABOT_GATEWAY_PORT")


def test_python_older_than_3_12_is_refused_by_the_bootstrap(tmp_path, run_env):
    fake = tmp_path / "python3.11"
    fake.write_text('#!/bin/sh\ncase "$2" in *version_info*) exit 1;; *) echo 3.11.9;; esac\n')
    fake.chmod(0o755)
    env = run_env(DURABOT_PYTHON=str(fake), DURABOT_VENV=str(tmp_path / "venv"))
    done = run(["bash", str(REPO / "bin" / "durabot"), "up"], env, tmp_path)
    assert_one_line_error(done, "Python >= 3.12", "3.11.9")
    assert not (tmp_path / "venv").exists()


def test_second_gateway_port_in_use_names_both_settings(tmp_path, run_env, get_free_port):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        if port_in_use(port - 1):
            pytest.skip(f"port {port - 1} (the first gateway's) is taken by someone else")
        env = run_env(DURABOT_VAR_DIR=str(tmp_path / "var"), DURABOT_GATEWAY_PORT=str(port - 1),
                      DURABOT_GATEWAYS="2", DURABOT_TEMPORAL_PORT=str(get_free_port()),
                      DURABOT_TEMPORAL_UI_PORT=str(get_free_port()), DURABOT_MONGO_PORT=str(get_free_port()))
        done = run([sys.executable, "-m", "durabot", "up"], env, tmp_path)
    assert_one_line_error(done, f"port {port} is already in use", "DURABOT_GATEWAY_PORT and DURABOT_GATEWAYS")


def test_invalid_process_counts(tmp_path, run_env):
    for env, needles in (({"DURABOT_WORKERS": "0"}, ("DURABOT_WORKERS", "greater than or equal to 1")),
                         ({"DURABOT_GATEWAYS": "x"}, ("DURABOT_GATEWAYS",)),
                         ({"DURABOT_GATEWAY_PORT": "65535", "DURABOT_GATEWAYS": "2"},
                          ("DURABOT_GATEWAYS", "2 gateways on consecutive ports from 65535"))):
        done = run([sys.executable, "-m", "durabot", "up"], run_env(**env), tmp_path)
        assert_one_line_error(done, *needles)
