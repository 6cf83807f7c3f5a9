"""Just-in-time upstream credentials in the real Envoy: a token endpoint started by the tests
implements OAuth2 client credentials and RFC 8693 token exchange; the upstream sees only the
short-lived credential, never the caller's token; expiry refreshes; the endpoint down is 503;
revoking the caller takes effect at once."""
import base64
import json
import urllib.parse
import uuid

import pytest
from conftest import ISS, request

import envoy_run
import servers
import tokens

SECRET = "gw-secret-value-123"


class TokenEndpoint:
    def __init__(self, expires_in=300):
        self.expires_in = expires_in
        self.down = False
        self.issued = []
        state = self

        class Handler(servers._Quiet):
            def do_POST(self):
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                auth = base64.b64decode(self.headers["authorization"].split()[1]).decode()
                if state.down:
                    return self._send(503, b'{"error":"temporarily_unavailable"}')
                if auth != f"gateway:{SECRET}":
                    return self._send(401, b'{"error":"invalid_client"}')
                grant = form["grant_type"][0]
                if grant == "client_credentials":
                    claims = {"sub": "gateway", "scope": form.get("scope", [""])[0]}
                else:
                    subject = form["subject_token"][0].split(".")[1]
                    caller = json.loads(base64.urlsafe_b64decode(subject + "=="))
                    claims = {"sub": caller["sub"], "act": {"sub": "gateway"}, "aud": form.get("audience", [""])[0]}
                claims["jti"] = uuid.uuid4().hex
                tok = "h." + base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=") + ".s"
                state.issued.append(tok)
                self._send(200, json.dumps({"access_token": tok, "token_type": "Bearer",
                                            "expires_in": state.expires_in}).encode())

        self.server = servers.Server(Handler)
        self.port = self.server.port

    def stop(self):
        self.server.stop()


@pytest.fixture()
def env(tmp_path):
    made = []

    def _make(cred, expires_in=300, revoked=None):
        key = tokens.Key("EdDSA")
        te = TokenEndpoint(expires_in)
        upstream = servers.start_mock_llm()
        issuer = {"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}
        if revoked:
            issuer["revoked"] = revoked
        cfg = {"issuers": [issuer], "authorization": {
            "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
            "policies": {"p": {"rules": [{"name": "all", "models": ["*"]}], "upstream_credentials": cred}}}}
        filt = envoy_run.wasm_filter(cfg, env={"WARDEN_CLIENT_SECRET": SECRET, "WARDEN_STATIC_KEY": "sk-static-abc"})
        port = envoy_run.free_port()
        b = envoy_run.bootstrap(cfg, port, envoy_run.free_port(), ("127.0.0.1", upstream.port), None, filters=[filt])
        b["static_resources"]["clusters"].append(envoy_run._cluster("idp_token", "127.0.0.1", te.port))
        d = tmp_path / f"e{len(made)}"
        d.mkdir()
        e = envoy_run.Envoy(b, d)
        ctx = {"key": key, "te": te, "up": upstream, "envoy": e, "port": port, "cfg": cfg, "filt": filt, "dir": d}
        made.append(ctx)
        return ctx
    yield _make
    for c in made:
        c["envoy"].stop()
        c["te"].stop()
        c["up"].stop()
        c["envoy"].assert_no_trap()
        log = c["envoy"].log()
        assert SECRET not in log and "sk-static-abc" not in log
        for t in c["te"].issued:
            assert t not in log, "credential in Envoy's log"


def cc(**extra):
    return {"source": "client_credentials", "client_id": "gateway", "client_secret_env": "WARDEN_CLIENT_SECRET",
            "scopes": ["llm.invoke"], "token_endpoint": {"cluster": "idp_token", "path": "/oauth2/token"}, **extra}


def chat():
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


def seen(r):
    return r.json()["received_headers"]


def test_client_credentials_replace_the_callers_token_and_are_cached(env):
    c = env(cc())
    caller = tokens.mint(c["key"], tokens.claims(ISS, sub="alice"))
    r = request(c["port"], caller, body=chat())
    assert r.status == 200, r.body
    assert len(c["te"].issued) == 1
    issued = c["te"].issued[0]
    # The upstream got the short-lived credential (the mock echoes it), the client never sees it.
    assert caller not in r.body.decode()
    assert issued not in r.body.decode()
    assert seen(r)["authorization"] == "Bearer [REDACTED:upstream_credential]"
    r2 = request(c["port"], tokens.mint(c["key"], tokens.claims(ISS, sub="bob")), body=chat())
    assert r2.status == 200 and len(c["te"].issued) == 1, "cached in shared data"


def test_token_exchange_on_behalf_of_the_caller(env):
    c = env(cc(source="token_exchange", audience="https://llm.internal"))
    jti = uuid.uuid4().hex
    caller = tokens.mint(c["key"], tokens.claims(ISS, sub="alice", jti=jti))
    r = request(c["port"], caller, body=chat())
    assert r.status == 200, r.body
    exchanged = c["te"].issued[0]
    payload = json.loads(base64.urlsafe_b64decode(exchanged.split(".")[1] + "=="))
    assert payload["sub"] == "alice" and payload["act"] == {"sub": "gateway"}
    assert caller not in r.body.decode() and exchanged not in r.body.decode()
    # Another caller gets a token of their own; the same caller reuses theirs.
    request(c["port"], tokens.mint(c["key"], tokens.claims(ISS, sub="bob")), body=chat())
    request(c["port"], caller, body=chat())
    assert len(c["te"].issued) == 2
    log = c["envoy"].log()
    rec = next(json.loads(line.split("llm-warden-audit ", 1)[1]) for line in log.splitlines()
               if "llm-warden-audit" in line and jti in line)
    assert rec["credential_source"] == "token_exchange" and rec["upstream_sub"] == "alice" and rec["sub"] == "alice"


def test_token_endpoint_down_fails_closed(env):
    c = env(cc())
    c["te"].down = True
    r = request(c["port"], tokens.mint(c["key"], tokens.claims(ISS)), body=chat())
    assert r.status == 503
    assert r.json()["error"]["code"] == "upstream_credential_unavailable"
    c["te"].down = False
    assert request(c["port"], tokens.mint(c["key"], tokens.claims(ISS)), body=chat()).status == 200


def test_revoked_caller_is_refused_even_with_a_cached_exchange(env):
    c = env(cc(source="token_exchange"), revoked={"subjects": ["mallory"]})
    r = request(c["port"], tokens.mint(c["key"], tokens.claims(ISS, sub="mallory")), body=chat())
    assert r.status == 401 and not c["te"].issued


def test_static_key_fallback_is_flagged(env):
    c = env({"source": "static", "static_key_env": "WARDEN_STATIC_KEY", "header": "api-key"})
    r = request(c["port"], tokens.mint(c["key"], tokens.claims(ISS)), body=chat())
    assert r.status == 200
    assert seen(r)["api-key"] == "[REDACTED:upstream_credential]"
    import urllib.request as u
    with u.urlopen(f"http://127.0.0.1:{c['envoy'].admin_port}/stats/prometheus", timeout=5) as m:
        assert "llm_warden_credentials_static_long_lived" in m.read().decode()
    assert "static, long-lived upstream key" in c["envoy"].log()
