"""The native CLI built from the same config code: check-config on good and broken
configs (expected messages checked), and the checked-in JSON Schema is not stale."""
import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CLI = ROOT / "target" / "debug" / "llm-warden"
GOOD = sorted((ROOT / "examples" / "plugin-configs").glob("*.json"))
BROKEN = sorted((ROOT / "examples" / "broken-configs").glob("*.json"))
SCHEMA = ROOT / "schema" / "plugin-config.schema.json"
VENV_BIN = ROOT / ".venv" / "bin"


def run(*args):
    return subprocess.run([str(CLI), *args], capture_output=True, text=True)


def test_schema_file_is_not_stale():
    out = run("schema")
    assert out.returncode == 0
    assert json.loads(out.stdout) == json.loads(SCHEMA.read_text()), \
        "schema/plugin-config.schema.json is stale: run `make schema`"


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good_configs_pass(path):
    out = run("check-config", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith(": OK")


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.name)
def test_broken_configs_report_every_error_with_its_path(path):
    out = run("check-config", str(path))
    assert out.returncode == 1
    expected = path.with_suffix(".expected").read_text().splitlines()
    lines = [line.split(": ", 1)[1] for line in out.stdout.splitlines() if line.startswith(str(path))]
    assert len(lines) == len(expected), out.stdout
    for want in expected:  # serde reports in its own order, not the file's
        assert any(got.startswith(want) for got in lines), f"missing {want!r} in {lines}"


def test_usage_and_unreadable_file():
    assert run().returncode == 2
    assert run("check-config", "/nonexistent.json").returncode == 2


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_example_configs_match_the_schema(path):
    out = subprocess.run([str(VENV_BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
