"""The Envoy-native per-route setup (envoy/per-route.yaml's shape): two instances of the
filter with different configs, each disabled on the other's routes."""
import tokens
from conftest import request

import envoy_run
import servers

WORKLOADS = "https://spiffe.example.com"
ADMINS = "https://login.example.com/"


def test_two_filter_instances_enabled_per_route(tmp_path):
    workload_key, admin_key = tokens.Key("ES256"), tokens.Key("EdDSA")
    jwks = servers.start_jwks(servers.JwksState(tokens.jwks(workload_key, admin_key)))
    upstream = servers.start_mock_llm()
    remote = {"remote": {"cluster": "jwks", "path": "/.well-known/jwks.json"}}
    inference_cfg = {
        "issuers": [{"name": "workloads", "issuer": WORKLOADS, "audiences": ["llm-api"], "jwks": remote}],
        "authorization": {"routes": [{"match": {"path_prefix": "/"}, "policy": "inference"}],
                          "policies": {"inference": {"rules": [
                              {"name": "chat", "when": {"scopes": ["llm:chat"]}, "models": ["llama-*"]}]}}}}
    admin_cfg = {
        "issuers": [{"name": "admins", "issuer": ADMINS, "audiences": ["llm-admin"], "jwks": remote}],
        "authorization": {"routes": [{"match": {"path_prefix": "/admin/"}, "policy": "admin"}],
                          "policies": {"admin": {"rules": [
                              {"name": "platform-admins", "when": {"scopes": ["llm:admin"]},
                               "actions": ["other"]}]}}}}
    disabled = lambda name: {name: {"@type": "type.googleapis.com/envoy.config.route.v3.FilterConfig",  # noqa: E731
                                    "disabled": True}}
    routes = [
        {"name": "admin", "match": {"prefix": "/admin/"}, "route": {"cluster": "llm_upstream"},
         "typed_per_filter_config": disabled("llm-warden-inference")},
        {"name": "inference", "match": {"prefix": "/"}, "route": {"cluster": "llm_upstream"},
         "typed_per_filter_config": disabled("llm-warden-admin")},
    ]
    filters = [envoy_run.wasm_filter(inference_cfg, name="llm-warden-inference"),
               envoy_run.wasm_filter(admin_cfg, name="llm-warden-admin")]
    port = envoy_run.free_port()
    envoy = envoy_run.Envoy(envoy_run.bootstrap({}, port, envoy_run.free_port(), ("127.0.0.1", upstream.port),
                                                ("127.0.0.1", jwks.port), routes=routes, filters=filters), tmp_path)
    try:
        workload = tokens.mint(workload_key, tokens.claims(WORKLOADS, scope="llm:chat"))
        admin = tokens.mint(admin_key, tokens.claims(ADMINS, aud="llm-admin", scope="llm:admin"))
        chat = {"model": "llama-3", "messages": []}
        assert request(port, workload, body=chat).status == 200
        assert request(port, workload, body={**chat, "model": "gpt-4o"}).status == 403
        assert request(port, admin, body=chat).status == 401  # unknown issuer for the inference instance
        assert request(port, admin, path="/admin/models/reload", body={}).status == 200
        assert request(port, workload, path="/admin/models/reload", body={}).status == 401
        assert request(port, None, path="/admin/models/reload", body={}).status == 401
    finally:
        envoy.stop()
        jwks.stop()
        upstream.stop()
        envoy.assert_no_trap()
