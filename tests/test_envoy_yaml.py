"""Every Envoy YAML in the repository passes `envoy --mode validate` with the built .wasm
(which loads the module and runs on_configure); every example plugin config is accepted by
on_configure in Envoy, and a broken one is refused with its field path."""
import json
from pathlib import Path

import pytest

import envoy_run

ROOT = Path(__file__).resolve().parent.parent
# Envoy bootstraps are recognised by content; other YAML (compose files, rate limit service
# configs, Istio resources) is checked by its own schema tests.
YAMLS = sorted(p for d in ("envoy", "examples") for p in (ROOT / d).rglob("*.yaml")
               if "static_resources:" in p.read_text())
PLUGIN_CONFIGS = sorted((ROOT / "examples" / "plugin-configs").glob("*.json"))


def test_there_is_something_to_validate():
    assert YAMLS and PLUGIN_CONFIGS


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_envoy_validates_yaml(path, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # the YAMLs name the .wasm relative to the repository root
    text = path.read_text()
    if "/etc/envoy/llm_warden.wasm" in text:
        # Deployment configs load the module from where users mount it: point at the build.
        path = tmp_path / path.name
        path.write_text(text.replace("/etc/envoy/llm_warden.wasm", str(envoy_run.WASM)))
    result = envoy_run.validate(path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _connection_managers(node):
    """Every HttpConnectionManager typed_config in a parsed YAML document."""
    if isinstance(node, dict):
        if str(node.get("@type", "")).endswith("HttpConnectionManager"):
            yield node
        for v in node.values():
            yield from _connection_managers(v)
    elif isinstance(node, list):
        for v in node:
            yield from _connection_managers(v)


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_shipped_yaml_normalises_paths_and_refuses_underscore_headers(path):
    """Issue 13: the path the filter decides on must be the path the upstream serves, and an
    identity header must not be smuggled as `x_warden_...`; every shipped bootstrap makes Envoy
    normalise and refuse first (the filter stays safe without these; see test_bypass_request)."""
    from ruamel.yaml import YAML  # installed with check-jsonschema (requirements-dev.txt)
    managers = list(_connection_managers(YAML(typ="safe").load(path.read_text())))
    assert managers, "no HttpConnectionManager found"
    for hcm in managers:
        for field, value in envoy_run.HARDENED_HCM.items():
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    assert (hcm.get(field) or {}).get(sub) == subvalue, f"{hcm.get('stat_prefix')}: {field}.{sub}"
            else:
                assert hcm.get(field) == value, f"{hcm.get('stat_prefix')}: {field}"


def _bootstrap_with(plugin_config: dict) -> dict:
    clusters = [("idp_jwks", 1), ("spire_jwks", 2), ("jwks", 3)]
    b = envoy_run.bootstrap(plugin_config, 10000, 9901, ("127.0.0.1", 18080), None)
    b["static_resources"]["clusters"] += [envoy_run._cluster(name, "127.0.0.1", 18080 + i)
                                          for name, i in clusters]
    return b


@pytest.mark.parametrize("path", PLUGIN_CONFIGS, ids=lambda p: p.name)
def test_example_plugin_config_accepted_by_on_configure(path, tmp_path):
    cfg = tmp_path / "envoy.json"
    cfg.write_text(json.dumps(_bootstrap_with(json.loads(path.read_text()))))
    result = envoy_run.validate(cfg)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_broken_config_fails_on_configure_naming_the_field(tmp_path):
    broken = json.loads((ROOT / "examples/plugin-configs/minimal.json").read_text())
    broken["issuers"][0]["jwks"]["remote"]["refresh_interval"] = 60  # typo'd field
    cfg = tmp_path / "envoy.json"
    cfg.write_text(json.dumps(_bootstrap_with(broken)))
    result = envoy_run.validate(cfg)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "issuers[0].jwks.remote.refresh_interval: unknown field `refresh_interval`" in out, out[-3000:]
