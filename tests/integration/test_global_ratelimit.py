"""Global mode: two Envoy processes share one limit through Envoy's own ratelimit filter, a
rate limit service speaking the real gRPC protocol and a real Redis. llm-warden supplies the
verified subject/model headers and the token usage (filter state) the limits are keyed on."""
import json
import time
import uuid

import pytest
import tokens
from conftest import ISS, request

import envoy_run
import servers

mini_rls = pytest.importorskip("mini_rls")

# The descriptors of the shipped recipe (envoy/global-ratelimit.yaml; checked below): headers
# the filter sets on every call, "-" for an unknown fact, so no call goes uncounted.
ISSUER = {"request_headers": {"header_name": "x-warden-rl-issuer", "descriptor_key": "issuer"}}
SUBJECT = {"request_headers": {"header_name": "x-warden-rl-subject", "descriptor_key": "subject"}}
MODEL = {"request_headers": {"header_name": "x-warden-rl-model", "descriptor_key": "model"}}
ROUTE_LIMITS = [
    {"actions": [{"generic_key": {"descriptor_value": "llm_requests"}}, ISSUER, SUBJECT, MODEL]},
    {"actions": [{"generic_key": {"descriptor_value": "llm_tokens"}}, ISSUER, SUBJECT],
     "hits_addend": {"number": 0}},
    {"actions": [{"generic_key": {"descriptor_value": "llm_tokens"}}, ISSUER, SUBJECT],
     "apply_on_stream_done": True,
     "hits_addend": {"format": "%FILTER_STATE(wasm.llm_warden.tokens:PLAIN)%"}},
]


def global_envoy(tmp_path, key, upstream_port, jwks_port, rls_port):
    plugin = {
        "issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm-api"],
                     "jwks": {"remote": {"cluster": "jwks", "path": "/jwks"}}}],
        "authorization": {"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                          "policies": {"p": {"rules": [{"name": "all", "models": ["*"]}]}},
                          "rate_limiting": {"force_stream_usage": True}},
    }
    ratelimit_filter = {
        "name": "envoy.filters.http.ratelimit",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit",
            # 5 s: the rate limit service here is Python gRPC; on a loaded 2-core CI machine a
            # 1 s timeout (with failure_mode_deny) once turned a slow answer into a 429.
            "domain": "llm-warden", "timeout": "5s", "failure_mode_deny": True,
            # Filter-level limits (Envoy >= 1.35): these honour hits_addend per descriptor.
            "rate_limits": ROUTE_LIMITS,
            "rate_limit_service": {"transport_api_version": "V3",
                                   "grpc_service": {"envoy_grpc": {"cluster_name": "ratelimit"}}}}}
    routes = [{"name": "inference", "match": {"prefix": "/"},
               "route": {"cluster": "llm_upstream", "timeout": "30s"}}]
    port = envoy_run.free_port()
    cfg = envoy_run.bootstrap(plugin, port, envoy_run.free_port(), ("127.0.0.1", upstream_port),
                              ("127.0.0.1", jwks_port), routes=routes,
                              filters=[envoy_run.wasm_filter(plugin), ratelimit_filter])
    rls_cluster = envoy_run._cluster("ratelimit", "127.0.0.1", rls_port)
    rls_cluster["typed_extension_protocol_options"] = {
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}}}
    cfg["static_resources"]["clusters"].append(rls_cluster)
    tmp_path.mkdir(exist_ok=True)
    return envoy_run.Envoy(cfg, tmp_path)


@pytest.fixture()
def two_envoys(tmp_path):
    key = tokens.Key("ES256")
    redis_server = mini_rls.RedisServer(envoy_run.free_port(), tmp_path)
    limits = {"llm_requests": {"limit": 5, "unit": "DAY"}, "llm_tokens": {"limit": 40, "unit": "DAY"}}
    # Two rate limit service instances, one per Envoy: the shared state is Redis.
    rls = [mini_rls.MiniRls(redis_server.port, limits) for _ in range(2)]
    jwks = servers.start_jwks(servers.JwksState(tokens.jwks(key)))
    upstream = servers.start_mock_llm()
    envoys = [global_envoy(tmp_path / f"envoy{i}", key, upstream.port, jwks.port, rls[i].port) for i in range(2)]
    yield key, envoys, rls
    for e in envoys:
        e.stop()
        e.assert_no_trap()
    for r in rls:
        r.stop()
    jwks.stop()
    upstream.stop()
    redis_server.stop()


def chat(model="llama-3", **extra):
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def test_descriptors_carry_the_verified_identity(two_envoys):
    key, envoys, rls = two_envoys
    token = tokens.mint(key, tokens.claims(ISS, sub="verified-sub"))
    r = request(envoys[0].port, token, body=chat(model="llama-3"),
                headers={"x-warden-subject": "spoofed", "x-warden-model": "spoofed",
                         "x-warden-rl-subject": "spoofed", "X-Warden-Rl-Model": "spoofed",
                         "x_warden_rl_issuer": "spoofed"})
    assert r.status == 200
    entries = [dict(d["entries"]) for r in rls for req in r.requests for d in req["descriptors"]]
    # (The issuer entry is new: subjects are names within their issuer.)
    expected = {"generic_key": "llm_requests", "subject": "verified-sub", "model": "llama-3"}
    assert any(expected.items() <= e.items() for e in entries), entries
    assert {**expected, "issuer": ISS} in entries
    assert not any("spoofed" in e.values() for e in entries)


def test_requests_limited_globally(two_envoys):
    key, envoys, rls = two_envoys
    # 5 requests per subject x model; each call also spends 18 of the 40-token budget, so
    # give every call a fresh subject-independent budget by failing upstream (no usage).
    sub = f"r-{uuid.uuid4().hex[:8]}"
    token = tokens.mint(key, tokens.claims(ISS, sub=sub))
    statuses = [request(envoys[i % 2].port, token, body=chat(), headers={"x-mock-status": "202"}).status
                for i in range(9)]
    assert statuses.count(202) == 5, statuses
    assert statuses[5:] == [429] * 4


def test_token_usage_charged_globally_at_stream_end(two_envoys):
    key, envoys, rls = two_envoys
    sub = f"t-{uuid.uuid4().hex[:8]}"
    token = tokens.mint(key, tokens.claims(ISS, sub=sub))
    # 18 tokens per call against 40 per subject: calls 1-3 pass (the 3rd goes over), then
    # the budget check refuses, whichever Envoy is asked.

    def charged():
        return [d["hits_addend"] for r in rls for req in r.requests for d in req["descriptors"]
                if dict(d["entries"]).get("generic_key") == "llm_tokens" and d["hits_addend"]]

    statuses = []
    for i in range(5):
        model = f"model-{i}"  # a fresh request counter each time: only tokens can refuse
        before = len(charged())
        statuses.append(request(envoys[i % 2].port, token, body=chat(model=model, stream=i % 2 == 1)).status)
        # Envoy sends the charge when the stream is done (apply_on_stream_done), which can
        # be after the client has its response: wait for it before the next call.
        deadline = time.time() + 5
        while statuses[-1] == 200 and len(charged()) == before and time.time() < deadline:
            time.sleep(0.02)
    assert statuses == [200, 200, 200, 429, 429], statuses
    assert charged().count(18) == 3, charged()


def get(port: int, token: str, path: str = "/v1/models"):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_recipe_uses_the_descriptor_headers_under_test():
    from pathlib import Path
    recipe = (Path(__file__).resolve().parents[2] / "envoy" / "global-ratelimit.yaml").read_text()
    used = {line.split("header_name:")[1].split(",")[0].strip() for line in recipe.splitlines()
            if "header_name:" in line}
    assert used == {"x-warden-rl-issuer", "x-warden-rl-subject", "x-warden-rl-model"}, used
    issuer_lines = [line for line in recipe.splitlines() if "header_name: x-warden-rl-issuer" in line]
    assert len(issuer_lines) == 3  # every limit is per issuer


def test_model_listing_is_counted(two_envoys):
    # GET /v1/models has no model and no body: its descriptor still exists (model "-"), so it
    # is counted like any call (5 requests per subject x model).
    key, envoys, rls = two_envoys
    sub = f"m-{uuid.uuid4().hex[:8]}"
    token = tokens.mint(key, tokens.claims(ISS, sub=sub))
    statuses = [get(envoys[i % 2].port, token) for i in range(7)]
    assert statuses == [200] * 5 + [429] * 2, statuses
    entries = [dict(d["entries"]) for r in rls for req in r.requests for d in req["descriptors"]]
    assert {"generic_key": "llm_requests", "issuer": ISS, "subject": sub, "model": "-"} in entries


def test_token_without_subject_is_counted(two_envoys):
    key, envoys, rls = two_envoys
    token = tokens.mint(key, tokens.claims(ISS, sub=None, azp=f"svc-{uuid.uuid4().hex[:8]}"))
    statuses = [request(envoys[i % 2].port, token, body=chat(model=f"nosub-{uuid.uuid4().hex[:6]}"),
                        headers={"x-mock-status": "202"}).status for i in range(2)]
    assert statuses == [202, 202], statuses
    entries = [dict(d["entries"]) for r in rls for req in r.requests for d in req["descriptors"]]
    assert any(e.get("generic_key") == "llm_requests" and e.get("subject") == "-" and e.get("issuer") == ISS
               for e in entries), entries


def test_stream_cut_before_usage_is_charged_globally(two_envoys):
    # The upstream resets the stream after one event: no usage ever arrives. The filter
    # exports its estimate (prompt + what passed, never less than the prompt) and Envoy's
    # ratelimit filter sends it as hits_addend when the stream is done.
    import http.client
    key, envoys, rls = two_envoys
    sub = f"c-{uuid.uuid4().hex[:8]}"
    token = tokens.mint(key, tokens.claims(ISS, sub=sub))
    body = chat(model="cut-model", stream=True, max_tokens=500)
    try:
        request(envoys[0].port, token, body=body, headers={"x-mock-reset": "1"})
    except (http.client.HTTPException, OSError):
        pass
    prompt = -(-len(json.dumps(body).encode()) // 4)  # ASCII body: bytes / 4, rounded up

    def charged():
        return [d["hits_addend"] for r in rls for req in r.requests for d in req["descriptors"]
                if dict(d["entries"]).get("subject") == sub and d["hits_addend"]]
    deadline = time.time() + 5
    while not charged() and time.time() < deadline:
        time.sleep(0.05)
    assert charged() and prompt <= charged()[0] < prompt + 50, (charged(), prompt)
