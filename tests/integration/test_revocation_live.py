"""Revocation without code change: an Envoy config update (here file-based LDS, as a control
plane would push) takes effect for the very next request, cached tokens included."""
import time

import envoy_run
import servers
import tokens
from conftest import ISS, request


def wait_for_status(port, token, expected, timeout=15.0):
    deadline = time.time() + timeout
    while True:
        status = request(port, token).status
        if status == expected or time.time() > deadline:
            return status
        time.sleep(0.2)


def test_config_update_revokes_jti_and_subject_without_restart(tmp_path):
    key = tokens.Key("ES256")
    jwks_state = servers.JwksState(tokens.jwks(key))
    jwks = servers.start_jwks(jwks_state)
    upstream = servers.start_mock_llm()
    issuer = {"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}
    port = envoy_run.free_port()
    lds = tmp_path / "lds" / "listeners.json"
    lds.parent.mkdir()
    config = envoy_run.with_file_lds(
        envoy_run.bootstrap({"issuers": [issuer]}, port, envoy_run.free_port(), ("127.0.0.1", upstream.port),
                            ("127.0.0.1", jwks.port)), lds)
    envoy = envoy_run.Envoy(config, tmp_path)
    try:
        leaked = tokens.mint(key, tokens.claims(ISS, sub="alice", jti="leaked-jti"))
        other = tokens.mint(key, tokens.claims(ISS, sub="mallory"))
        innocent = tokens.mint(key, tokens.claims(ISS, sub="bob"))
        for t in (leaked, other, innocent):
            assert request(port, t).status == 200  # now cached as verified
        revoked = {**issuer, "revoked": {"jtis": ["leaked-jti"], "subjects": ["mallory"]}}
        envoy_run.write_lds(lds, envoy_run.listener({"issuers": [revoked]}, port))
        assert wait_for_status(port, leaked, 401) == 401
        r = request(port, other)
        assert r.status == 401 and r.json()["error"]["code"] == "token_revoked"
        assert request(port, innocent).status == 200
        assert envoy.proc.poll() is None  # same Envoy process: no restart
    finally:
        envoy.stop()
        jwks.stop()
        upstream.stop()
        envoy.assert_no_trap()
