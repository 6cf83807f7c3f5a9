"""Every Envoy YAML in the repository passes `envoy --mode validate` with the built .wasm
(which loads the module and runs on_configure); every example plugin config is accepted by
on_configure in Envoy, and a broken one is refused with its field path."""
import json
import re
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


# Where deployment configs expect the ECDS filter files (envoy/<name> mounted there).
ECDS_DIR = "/etc/envoy/filters"
# Secrets the shipped recipes read from Envoy's environment (vm_config host_env_keys).
RECIPE_ENV = {"WARDEN_CLIENT_SECRET": "validate-only-not-a-secret"}


def _mounted(text: str, tmp_path: Path) -> str:
    """A deployment config with the paths users mount pointed at the build and the repository."""
    text = text.replace("/etc/envoy/llm_warden.wasm", str(envoy_run.WASM))
    if ECDS_DIR in text:
        filters = tmp_path / "filters"
        filters.mkdir(exist_ok=True)
        for f in (ROOT / "envoy").glob("*-filter.yaml"):
            (filters / f.name).write_text(f.read_text().replace("/etc/envoy/llm_warden.wasm", str(envoy_run.WASM)))
        text = text.replace(ECDS_DIR, str(filters))
    return text


@pytest.mark.parametrize("path", YAMLS, ids=lambda p: str(p.relative_to(ROOT)))
def test_envoy_validates_yaml(path, monkeypatch, tmp_path):
    monkeypatch.chdir(ROOT)  # the YAMLs name the .wasm relative to the repository root
    for k, v in RECIPE_ENV.items():
        monkeypatch.setenv(k, v)
    text = path.read_text()
    if "/etc/envoy/" in text:
        # Deployment configs load the module (and ECDS files) from where users mount them.
        path = tmp_path / path.name
        path.write_text(_mounted(text, tmp_path))
    result = envoy_run.validate(path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def _load(path: Path):
    from ruamel.yaml import YAML  # installed with check-jsonschema (requirements-dev.txt)
    return YAML(typ="safe").load(path.read_text())


def _ecds_filters(bootstrap: dict):
    """(http_filters list, index, ECDS file name) for every filter delivered through ECDS."""
    for hcm in _connection_managers(bootstrap):
        for i, f in enumerate(hcm.get("http_filters", [])):
            source = (f.get("config_discovery") or {}).get("config_source", {}).get("path_config_source")
            if source:
                yield hcm["http_filters"], i, Path(source["path"]).name


ECDS_RECIPES = [p for p in YAMLS if any(True for _ in _ecds_filters(_load(p)))]


def _inlined(path: Path, tmp_path: Path) -> Path:
    """The bootstrap with each ECDS filter replaced by the shipped resource, inline: `--mode
    validate` does not read ECDS sources, so this is how on_configure sees the shipped config."""
    config = _load(path)
    for filters, i, name in list(_ecds_filters(config)):
        resource = _load(ROOT / "envoy" / name)["resources"]
        assert len(resource) == 1 and resource[0]["name"] == filters[i]["name"], name
        assert resource[0]["typed_config"]["@type"].rsplit("/", 1)[1] in \
            [u.rsplit("/", 1)[1] for u in filters[i]["config_discovery"]["type_urls"]]
        filters[i] = {"name": filters[i]["name"], "typed_config": resource[0]["typed_config"]}
    out = tmp_path / ("inlined-" + path.name.replace(".yaml", ".json"))
    out.write_text(_mounted(json.dumps(config), tmp_path))
    return out


def test_production_recipe_ships_the_filter_through_ecds():
    """Issue 15: a revocation must reach kept-alive connections, which an LDS update does not
    (tests/integration/test_revocation_ecds.py); envoy/envoy.yaml gets the filter over ECDS,
    with no default_config (never a config other than the one delivered)."""
    assert ROOT / "envoy" / "envoy.yaml" in ECDS_RECIPES
    for path in ECDS_RECIPES:
        for filters, i, name in _ecds_filters(_load(path)):
            entry = filters[i]
            assert "default_config" not in entry["config_discovery"], path
            assert "typed_config" not in entry, path
            source = entry["config_discovery"]["config_source"]["path_config_source"]
            # Envoy reloads on a move into the watched directory (how ConfigMaps update).
            assert source["watched_directory"]["path"] == str(Path(source["path"]).parent)


@pytest.mark.parametrize("path", ECDS_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_ecds_filter_config_accepted_by_on_configure(path, monkeypatch, tmp_path):
    for k, v in RECIPE_ENV.items():
        monkeypatch.setenv(k, v)
    result = envoy_run.validate(_inlined(path, tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.parametrize("path", ECDS_RECIPES, ids=lambda p: str(p.relative_to(ROOT)))
def test_recipe_secret_comes_from_envoys_environment(path, monkeypatch, tmp_path):
    """The client secret is in no config: without the variable in Envoy's environment the
    filter refuses its config (fail closed), and no shipped file carries `key_values`."""
    for k in RECIPE_ENV:
        monkeypatch.delenv(k, raising=False)
    result = envoy_run.validate(_inlined(path, tmp_path))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "environment variable WARDEN_CLIENT_SECRET is not set" in out, out[-3000:]


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


# --- Issue 20: metrics arrive in Prometheus as names with labels ------------------------------
# The filter puts label values in its metric names; the stats_tags block in every bootstrap
# takes them out again. tests/integration/test_metrics_envoy.py checks the block in the real
# Envoy for the metrics a few calls produce; the table below covers every name the code emits
# (grep '"llm_warden\.' src/ and the format! calls in src/pipeline/exchange.rs).
FILTER_BOOTSTRAPS = [p for p in YAMLS if "llm_warden.wasm" in p.read_text()]

EMITTED = {
    "llm_warden.calls.deny.missing_token": ("llm_warden_calls", {"decision": "deny", "reason": "missing_token"}),
    "llm_warden.calls.would_deny.rate_limited": ("llm_warden_calls", {"decision": "would_deny", "reason": "rate_limited"}),
    "llm_warden.calls.abandoned.client_gone": ("llm_warden_calls", {"decision": "abandoned", "reason": "client_gone"}),
    "llm_warden.guard.instruction_override.blocked": ("llm_warden_guard", {"rule": "instruction_override", "outcome": "blocked"}),
    "llm_warden.guard.my.rule.monitored": ("llm_warden_guard", {"rule": "my.rule", "outcome": "monitored"}),
    "llm_warden.ratelimit.would_limit": ("llm_warden_ratelimit", {"outcome": "would_limit"}),
    "llm_warden.jwks.fetch.failed": ("llm_warden_jwks_fetch", {"outcome": "failed"}),
    "llm_warden.jwks.age_seconds.idp.example": ("llm_warden_jwks_age_seconds", {"issuer": "idp.example"}),
    "llm_warden.credentials.cache_hit": ("llm_warden_credentials", {"event": "cache_hit"}),
    "llm_warden.credentials.static_long_lived": ("llm_warden_credentials", {"event": "static_long_lived"}),
    "llm_warden.credentials.token_error.not_json": ("llm_warden_credentials_token_error", {"error": "not_json"}),
    "llm_warden.classifier.error_denied": ("llm_warden_classifier", {"outcome": "error_denied"}),
    "llm_warden.classifier.cache_hit": ("llm_warden_classifier_cache_hit", {}),
    "llm_warden.classifier.error.unreachable": ("llm_warden_classifier_error", {"error": "unreachable"}),
    "llm_warden.redactions.email": ("llm_warden_redactions", {"kind": "email"}),
    "llm_warden.redactions.aws_access_key.monitored": ("llm_warden_redactions_monitored", {"kind": "aws_access_key"}),
    "llm_warden.responses.withheld.compressed": ("llm_warden_responses", {"handling": "withheld", "reason": "compressed"}),
    "llm_warden.responses.as_text.unknown_content_type": ("llm_warden_responses", {"handling": "as_text", "reason": "unknown_content_type"}),
    "llm_warden.tokens_used": ("llm_warden_tokens_used", {}),
    "llm_warden.tokens_reserved": ("llm_warden_tokens_reserved", {}),
}


def _prometheus_name(stat: str, stats_tags: list) -> tuple[str, dict]:
    """Envoy's tag extraction (std::regex search; group 1 is cut from the name, group 2 is the
    value), then /stats/prometheus: the wasmcustom namespace dropped, dots to underscores."""
    name = "wasmcustom." + stat
    tags, cuts = {}, []
    for spec in stats_tags:
        m = re.search(spec["regex"], name)
        if m:
            assert spec["tag_name"] not in tags, (stat, spec)
            tags[spec["tag_name"]] = m.group(2)
            cuts.append(m.span(1))
    kept = "".join(c for i, c in enumerate(name) if not any(a <= i < b for a, b in cuts))
    return kept.removeprefix("wasmcustom.").replace(".", "_"), tags


def test_every_filter_bootstrap_carries_the_same_stats_tags():
    assert len(FILTER_BOOTSTRAPS) >= 5
    reference = _load(ROOT / "envoy" / "envoy.yaml")["stats_config"]
    for path in FILTER_BOOTSTRAPS:
        assert _load(path).get("stats_config") == reference, path


@pytest.mark.parametrize("stat", sorted(EMITTED))
def test_stats_tags_turn_emitted_names_into_labels(stat):
    stats_tags = _load(ROOT / "envoy" / "envoy.yaml")["stats_config"]["stats_tags"]
    assert _prometheus_name(stat, stats_tags) == EMITTED[stat]
