"""`make run`'s demo script starts, shows 401/200/401, and honours UPSTREAM=host:port."""
import os
import subprocess
import sys
import time
from pathlib import Path

import envoy_run
import servers

ROOT = Path(__file__).resolve().parents[2]


def run_demo(env_extra: dict) -> str:
    env = {**os.environ, **env_extra}
    proc = subprocess.Popen([sys.executable, "demo/run.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 60
    try:
        for line in proc.stdout:
            lines.append(line)
            if "Audit records" in line or time.time() > deadline:
                break
    finally:
        proc.terminate()
        proc.wait(15)
    assert not envoy_run.has_trap((ROOT / "run" / "envoy.log").read_text(errors="replace"))
    return "".join(lines)


def test_demo_shows_401_200_401():
    out = run_demo({})
    assert "no token -> 401" in out, out
    assert "valid token -> 200" in out, out
    assert "expired token -> 401" in out, out
    assert "export TOKEN=$(cat run/token)" in out


def test_demo_against_another_upstream():
    other = servers.start_mock_llm()
    try:
        out = run_demo({"UPSTREAM": f"127.0.0.1:{other.port}"})
        assert f"your model server at 127.0.0.1:{other.port}" in out, out
        assert "valid token -> 200" in out, out
    finally:
        other.stop()
