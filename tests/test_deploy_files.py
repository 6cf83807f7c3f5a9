"""Files for users that cannot run here are checked by schema: the compose file against the
compose spec, the Istio WasmPlugin against our schema of the CRD (its pluginConfig against
the plugin-config schema), and a broken WasmPlugin is refused."""
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECK = ROOT / ".venv" / "bin" / "check-jsonschema"


def check(*args):
    return subprocess.run([str(CHECK), *args], capture_output=True, text=True)


def test_compose_file_matches_the_compose_spec():
    out = check("--builtin-schema", "vendor.compose-spec", str(ROOT / "envoy" / "docker-compose.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_compose_pins_envoy_1_40():
    assert "image: envoyproxy/envoy:v1.40-latest" in (ROOT / "envoy" / "docker-compose.yaml").read_text()


def test_istio_wasmplugin_matches_the_crd_schema():
    out = check("--schemafile", str(ROOT / "schema" / "istio-wasmplugin.schema.json"),
                str(ROOT / "istio" / "wasmplugin.yaml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_broken_wasmplugin_is_refused(tmp_path):
    good = (ROOT / "istio" / "wasmplugin.yaml").read_text()
    for bad in (good.replace("FAIL_CLOSE", "FAIL_CLOSED"),          # Envoy's spelling, not Istio's
                good.replace("audiences: [llm-api]", "audiences: [llm-api]\n      audience: typo"),
                good.replace("  url: oci://", "  uri: oci://")):
        f = tmp_path / "bad.yaml"
        f.write_text(bad)
        out = check("--schemafile", str(ROOT / "schema" / "istio-wasmplugin.schema.json"), str(f))
        assert out.returncode != 0, bad


# --- Issue 15: every TLS origination we ship verifies the server's name ----------------------
# A trusted CA alone accepts any certificate it issued, for any host: with one for another
# name, an attacker served a JWKS of their keys and a forged workload token got 200. Every
# TLS cluster (Envoy) and TLS origination (Istio DestinationRule) must check the CA, send SNI
# and match the certificate's name; tests/integration/test_tls_idp_names.py shows the attack
# and the fix in the real Envoy.
import json  # noqa: E402

import pytest  # noqa: E402

SHIPPED_YAML = sorted(p for d in ("envoy", "examples", "istio") for p in (ROOT / d).rglob("*.y*ml"))
TLS_CONTEXT = "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"


def _docs(path):
    from ruamel.yaml import YAML  # installed with check-jsonschema (requirements-dev.txt)
    return [d for d in YAML(typ="safe").load_all(path.read_text()) if d is not None]


def _walk(node, trail=""):
    """(dict, trail) for every mapping in a document."""
    if isinstance(node, dict):
        yield node, trail
        for k, v in node.items():
            yield from _walk(v, f"{trail}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, f"{trail}[{i}]")


def _envoy_tls_problems(ctx: dict) -> list[str]:
    problems = []
    sni = ctx.get("sni")
    if not sni:
        problems.append("no sni")
    common = ctx.get("common_tls_context") or {}
    validation = common.get("validation_context")
    if validation is None:
        validation = (common.get("combined_validation_context") or {}).get("default_validation_context")
    if validation is None:
        # An SDS-delivered validation context cannot be checked here: ship it inline.
        return problems + ["no inline validation_context"]
    ca = validation.get("trusted_ca") or {}
    if not any(ca.get(k) for k in ("filename", "inline_string", "inline_bytes", "environment_variable")):
        problems.append("no trusted_ca")
    if validation.get("trust_chain_verification", "VERIFY_TRUST_CHAIN") != "VERIFY_TRUST_CHAIN":
        problems.append("trust chain not verified")
    sans = validation.get("match_typed_subject_alt_names") or []
    exact = [m.get("matcher", {}).get("exact") for m in sans]
    if not sans:
        problems.append("no match_typed_subject_alt_names (any certificate from the CA is accepted)")
    elif not all(exact):
        problems.append("SAN matchers must be `exact` names")
    elif sni and sni not in exact:
        problems.append(f"sni {sni} is not among the names matched {exact}")
    return problems


def _istio_tls_problems(tls: dict) -> list[str]:
    if tls.get("mode") not in ("SIMPLE", "MUTUAL"):
        return []  # DISABLE, or ISTIO_MUTUAL (Istio checks the peer's SPIFFE identity)
    problems = []
    if not tls.get("sni"):
        problems.append("no sni")
    if not tls.get("subjectAltNames"):
        problems.append("no subjectAltNames (any certificate from the CA is accepted)")
    elif tls.get("sni") and tls["sni"] not in tls["subjectAltNames"]:
        problems.append(f"sni {tls['sni']} is not among subjectAltNames")
    if not (tls.get("caCertificates") or tls.get("credentialName")):
        problems.append("no caCertificates or credentialName")
    if tls.get("insecureSkipVerify"):
        problems.append("insecureSkipVerify")
    return problems


def _cluster_ports(cluster: dict) -> list[int]:
    return [m["port_value"] for m, _ in _walk(cluster.get("load_assignment", {})) if "port_value" in m]


def tls_name_findings(docs: list) -> list[str]:
    """Every TLS origination in these documents that lacks CA, SNI or name verification."""
    findings = []
    for doc in docs:
        for node, trail in _walk(doc):
            if str(node.get("@type", "")).endswith(TLS_CONTEXT):
                findings += [f"{trail}: {p}" for p in _envoy_tls_problems(node)]
            # An Envoy cluster: TLS towards 443 is the point (plain HTTP there means no TLS at all).
            if "load_assignment" in node and "name" in node and 443 in _cluster_ports(node):
                sockets = [node.get("transport_socket")] + [m.get("transport_socket") for m in
                                                            node.get("transport_socket_matches", [])]
                if not any(str((s or {}).get("typed_config", {}).get("@type", "")).endswith(TLS_CONTEXT)
                           for s in sockets):
                    findings.append(f"{trail} ({node['name']}): port 443 without TLS")
        if doc.get("kind") == "DestinationRule":
            for node, trail in _walk(doc.get("spec", {})):
                if isinstance(node.get("tls"), dict):
                    findings += [f"{doc['metadata']['name']}{trail}.tls: {p}"
                                 for p in _istio_tls_problems(node["tls"])]
    return findings


def _istio_origination(docs: list, host: str, port: int) -> dict | None:
    """The TLS settings the DestinationRules give to host:port, if any."""
    for doc in docs:
        if doc.get("kind") != "DestinationRule" or doc["spec"]["host"] != host:
            continue
        policy = doc["spec"].get("trafficPolicy", {})
        for level in policy.get("portLevelSettings", []):
            if level["port"]["number"] == port and "tls" in level:
                return level["tls"]
        if "tls" in policy:
            return policy["tls"]
    return None


def istio_callout_findings(docs: list) -> list[str]:
    """Every cluster the WasmPlugin's config calls (JWKS, token endpoint) is a ServiceEntry
    host and port with a DestinationRule originating TLS there."""
    findings = []
    entries = {(h, p["number"]) for d in docs if d.get("kind") == "ServiceEntry"
               for h in d["spec"]["hosts"] for p in d["spec"].get("ports", [])}
    for doc in docs:
        if doc.get("kind") != "WasmPlugin":
            continue
        for node, trail in _walk(doc["spec"].get("pluginConfig", {})):
            cluster = node.get("cluster")
            if not isinstance(cluster, str):
                continue
            parts = cluster.split("|")
            if len(parts) != 4 or parts[0] != "outbound":
                findings.append(f"{trail}: {cluster} is not an Istio outbound cluster")
                continue
            host, port = parts[3], int(parts[1])
            if (host, port) not in entries:
                findings.append(f"{trail}: no ServiceEntry for {host}:{port}")
            tls = _istio_origination(docs, host, port)
            if tls is None or tls.get("mode") not in ("SIMPLE", "MUTUAL"):
                findings.append(f"{trail}: no TLS origination to {host}:{port}")
    return findings


def _all_istio_docs():
    return [d for p in sorted((ROOT / "istio").glob("*.yaml")) for d in _docs(p)]


def test_there_are_tls_originations_to_check():
    envoy_tls = [n for p in SHIPPED_YAML for d in _docs(p) for n, _ in _walk(d)
                 if str(n.get("@type", "")).endswith(TLS_CONTEXT)]
    istio_tls = [d for d in _all_istio_docs() if d.get("kind") == "DestinationRule"]
    assert len(envoy_tls) >= 4 and len(istio_tls) >= 2


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_tls_origination_verifies_the_servers_name(path):
    assert tls_name_findings(_docs(path)) == []


def test_istio_plugin_callouts_go_through_verified_tls():
    assert istio_callout_findings(_all_istio_docs()) == []


def test_the_name_check_catches_a_missing_san_matcher():
    """The check fails on the shipped envoy.yaml as it was before issue 15 (spire_jwks with a
    CA but no SAN matcher), on a missing SNI, and on Istio rules without subjectAltNames."""
    def cluster(docs, name):
        return next(c for c in docs[0]["static_resources"]["clusters"] if c["name"] == name)

    docs = _docs(ROOT / "envoy" / "envoy.yaml")
    validation = cluster(docs, "spire_jwks")["transport_socket"]["typed_config"]["common_tls_context"][
        "validation_context"]
    del validation["match_typed_subject_alt_names"]
    assert [f for f in tls_name_findings(docs) if "no match_typed_subject_alt_names" in f], tls_name_findings(docs)
    docs = _docs(ROOT / "envoy" / "envoy.yaml")
    del cluster(docs, "idp_token")["transport_socket"]["typed_config"]["sni"]
    assert any("no sni" in f for f in tls_name_findings(docs))
    docs = _docs(ROOT / "envoy" / "envoy.yaml")
    del cluster(docs, "llm_upstream")["transport_socket"]
    assert any("(llm_upstream): port 443 without TLS" in f for f in tls_name_findings(docs))

    istio = _all_istio_docs()
    dr = next(d for d in istio if d.get("kind") == "DestinationRule")
    del dr["spec"]["trafficPolicy"]["portLevelSettings"][0]["tls"]["subjectAltNames"]
    assert any("no subjectAltNames" in f for f in tls_name_findings(istio))
    istio = [d for d in _all_istio_docs() if d.get("kind") != "DestinationRule"]
    assert any("no TLS origination" in f for f in istio_callout_findings(istio))


@pytest.mark.parametrize("kind", ["ServiceEntry", "DestinationRule"])
def test_istio_networking_files_match_their_schema(kind):
    schema = ROOT / "schema" / f"istio-{kind.lower()}.schema.json"
    files = [p for p in sorted((ROOT / "istio").glob("*.yaml")) if f"kind: {kind}" in p.read_text()]
    assert files
    for f in files:
        out = check("--schemafile", str(schema), str(f))
        assert out.returncode == 0, out.stdout + out.stderr


def test_destinationrule_schema_refuses_origination_without_name_check(tmp_path):
    good = (ROOT / "istio" / "destinationrule-spiffe-jwks.yaml").read_text()
    for bad in (good.replace("        subjectAltNames: [spiffe.example.com]\n", ""),
                good.replace("        sni: spiffe.example.com\n", ""),
                good.replace("        caCertificates: /etc/ssl/certs/ca-certificates.crt\n", ""),
                good.replace("        mode: SIMPLE\n", "        mode: SIMPLE\n        insecureSkipVerify: true\n")):
        assert bad != good
        f = tmp_path / "bad.yaml"
        f.write_text(bad)
        out = check("--schemafile", str(ROOT / "schema" / "istio-destinationrule.schema.json"), str(f))
        assert out.returncode != 0, bad


# --- Issue 15: secrets never in a config ---------------------------------------------------
def test_istio_env_comes_from_the_host_never_inline():
    """`value:` (INLINE) lands in Envoy's key_values, which /config_dump prints."""
    envs = [e for d in _all_istio_docs() if d.get("kind") == "WasmPlugin"
            for e in d["spec"].get("vmConfig", {}).get("env", [])]
    assert envs, "the WasmPlugin shows where the client secret comes from"
    for e in envs:
        assert e.get("valueFrom") == "HOST" and "value" not in e, e


@pytest.mark.parametrize("path", SHIPPED_YAML, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_shipped_envoy_config_puts_environment_values_in_the_config(path):
    for doc in _docs(path):
        for node, trail in _walk(doc):
            env = node.get("environment_variables")
            if isinstance(env, dict):
                assert not env.get("key_values"), f"{trail}: key_values end up in /config_dump"
                assert env.get("host_env_keys"), trail


def test_compose_passes_the_secret_from_the_environment_only():
    compose = _docs(ROOT / "envoy" / "docker-compose.yaml")[0]
    env = compose["services"]["envoy"].get("environment", [])
    assert "WARDEN_CLIENT_SECRET" in env, "passed through from the host (or an env_file), not written"
    assert json.dumps(compose).count("WARDEN_CLIENT_SECRET=") == 0


# --- Issue 20: the Grafana dashboard uses only metrics the filter really emits --------------
# deploy/grafana/metrics.json lists the Prometheus names and labels that a real Envoy with the
# shipped stats_tags exports (tests/integration/test_metrics_envoy.py asserts the scrape is
# exactly that list); the dashboard's PromQL may name only those metrics and their labels.
import re  # noqa: E402

DASHBOARD = ROOT / "deploy" / "grafana" / "llm-warden.json"
EMITTED = json.loads((ROOT / "deploy" / "grafana" / "metrics.json").read_text())["metrics"]
PROMQL_METRIC = re.compile(r"\bllm_warden_[a-z0-9_]+\b")
# Labels Prometheus adds to every scraped series.
SCRAPE_LABELS = {"job", "instance"}


def _dashboard_exprs():
    return [(p["title"], t["expr"]) for p in json.loads(DASHBOARD.read_text())["panels"]
            for t in p.get("targets", [])]


def _labels_in(expr: str) -> set[str]:
    """Label names in selectors ({a="x", b=~"y"}) and in by/without clauses."""
    names = set()
    for selector in re.findall(r"\{([^}]*)\}", expr):
        names |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", selector))
    for clause in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
        names |= {n.strip() for n in clause.split(",") if n.strip()}
    return names


def test_dashboard_is_an_importable_grafana_dashboard():
    d = json.loads(DASHBOARD.read_text())
    assert d["uid"] and d["title"] and isinstance(d["schemaVersion"], int)
    assert any(v["type"] == "datasource" and v["query"] == "prometheus" and v["name"] == "datasource"
               for v in d["templating"]["list"])
    ids = [p["id"] for p in d["panels"]]
    assert len(ids) == len(set(ids))
    for p in d["panels"]:
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, p["title"]
        assert {"h", "w", "x", "y"} <= set(p["gridPos"]) and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"], p["title"]
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"])


def test_dashboard_uses_only_emitted_metrics_and_their_labels():
    exprs = _dashboard_exprs()
    assert exprs
    used = set()
    for title, expr in exprs:
        metrics = set(PROMQL_METRIC.findall(expr))
        assert metrics, (title, expr)
        assert metrics <= set(EMITTED), (title, metrics - set(EMITTED))
        used |= metrics
        allowed = SCRAPE_LABELS.union(*(EMITTED[m]["labels"] for m in metrics))
        assert _labels_in(expr) <= allowed, (title, _labels_in(expr) - allowed)
        for m in metrics:  # rate/increase only on counters
            if EMITTED[m]["type"] == "gauge":
                assert not re.search(rf"\b(?:rate|increase)\(\s*{m}\b", expr), (title, m)
    # The panels issue 20 asks for.
    assert {"llm_warden_calls", "llm_warden_ratelimit", "llm_warden_guard", "llm_warden_jwks_fetch",
            "llm_warden_jwks_age_seconds"} <= used


def test_dashboard_check_catches_a_drifted_name():
    assert not set(PROMQL_METRIC.findall("sum(rate(llm_warden_calls_deny_missing_token[5m]))")) <= set(EMITTED)
    assert _labels_in('sum by (decision, rule) (rate(llm_warden_calls{reason="ok"}[5m]))') == \
        {"decision", "rule", "reason"}
