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


def test_every_example_config_has_a_policy_test_file():
    missing = [p.name for p in GOOD if not p.with_suffix(".test.yaml").exists()]
    assert not missing, f"no policy test file beside {missing}"


def test_policy_tests_report_a_failing_case_and_exit_1(tmp_path):
    cases = (ROOT / "examples" / "plugin-configs" / "minimal.test.yaml").read_text()
    broken = cases.replace("config: minimal.json", f"config: {ROOT / 'examples/plugin-configs/minimal.json'}")
    broken = broken.replace("expect: {status: 401, forwarded: false, client_headers", "expect: {status: 200, forwarded: false, client_headers", 1)
    f = tmp_path / "broken.test.yaml"
    f.write_text(broken)
    out = run("test", str(f))
    assert out.returncode == 1, out.stdout
    assert "FAIL " in out.stdout and "status: expected 200, got 401" in out.stdout, out.stdout
    assert out.stdout.strip().endswith("4 passed, 1 failed"), out.stdout


def test_policy_test_file_errors_are_reported(tmp_path):
    f = tmp_path / "x.test.yaml"
    f.write_text("config: {}\ncases: []\nunknown: 1\n")
    out = run("test", str(f))
    assert out.returncode == 1 and "unknown" in out.stdout, out.stdout


def test_explain_names_the_first_unmet_condition_of_each_rule(tmp_path):
    req = tmp_path / "req.yaml"
    req.write_text("path: /v1/chat/completions\nheaders: {host: llm.internal.example.com}\nissuer: humans\n"
                   "claims: {sub: alice, scope: 'llm:chat', department: sales}\n"
                   "body: {model: gpt-4o-mini, messages: [{role: user, content: hi}]}\n")
    out = run("explain", str(ROOT / "examples/plugin-configs/authorization.json"), str(req), "--now", "1800003600")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("status 403 (not forwarded), decision deny, reason insufficient_scope, policy inference")
    assert '  rule "analysts": does not apply: when.claims.department: the claim does not match' in lines
    assert '  rule "rag-indexer": does not apply: when.issuers: the token\'s issuer is not listed' in lines


def test_version_and_help():
    out = run("--version")
    assert out.returncode == 0 and out.stdout.startswith("llm-warden "), out.stdout
    cargo = (ROOT / "Cargo.toml").read_text()
    version = next(line.split('"')[1] for line in cargo.splitlines() if line.startswith("version = "))
    assert out.stdout.strip() == f"llm-warden {version}"
    out = run("--help")
    assert out.returncode == 0 and "check-config FILE" in out.stdout and "explain CONFIG REQUEST" in out.stdout


def test_check_config_reads_yaml_from_stdin_and_refuses_duplicate_members(tmp_path):
    yaml_config = "issuers:\n  - name: a\n    issuer: https://x\n    audiences: [x]\n    jwks: {remote: {cluster: c, path: /k}}\n"
    out = subprocess.run([str(CLI), "check-config", "-"], input=yaml_config, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "-: OK", out.stdout + out.stderr
    dup = tmp_path / "dup.json"
    dup.write_text('{"issuers": [{"name": "a", "issuer": "https://x", "audiences": ["x"], "audiences": ["y"],'
                   ' "jwks": {"remote": {"cluster": "c", "path": "/k"}}}]}')
    out = run("check-config", str(dup))
    assert out.returncode == 1
    assert f"{dup}: issuers[0].audiences: duplicate member" in out.stdout, out.stdout
    out = subprocess.run([str(CLI), "check-config", "-"], input="issuers:\n  - name: a\n    name: b\n",
                         capture_output=True, text=True)
    assert out.returncode == 1 and "duplicate member" in out.stdout, out.stdout
