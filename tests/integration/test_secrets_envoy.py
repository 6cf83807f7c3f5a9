"""Issue 15: the client secret must not be readable from Envoy's admin interface or logs.

A secret in the VM's `environment_variables.key_values` is part of the config, so the admin
`/config_dump` prints it (reproduced here: that test asserts the leak). With `host_env_keys`
Envoy reads the variable from its own process environment and the config carries only the
name: the token endpoint still receives the secret, and no admin page shows it.

The log test pins down which log level shows what: at `info` nothing; at `debug` Envoy's HCM
logs the request headers it received (the caller's token) and its router logs the headers it
sends upstream (the attached credential, and the Basic client authentication of the
token-endpoint call); the filter itself logs none of them at any level."""
import base64
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest
from conftest import ISS, request

import envoy_run
import servers
import tokens

CLIENT_ID = "llm-gateway"
ENV_NAME = "WARDEN_CLIENT_SECRET"
ADMIN_PAGES = ["/config_dump?include_eds", "/config_dump", "/config_dump?resource=dynamic_active_clusters",
               "/server_info", "/clusters", "/listeners", "/stats", "/stats/prometheus", "/runtime",
               "/certs", "/init_dump"]


class TokenEndpoint:
    """OAuth2 client credentials: checks the Basic client authentication and records it."""

    def __init__(self, secret: str):
        self.secret = secret
        self.auth_seen = []
        self.issued = []
        state = self

        class Handler(servers._Quiet):
            def do_POST(self):
                form = urllib.parse.parse_qs(self.rfile.read(int(self.headers["content-length"])).decode())
                scheme, _, value = self.headers.get("authorization", "").partition(" ")
                state.auth_seen.append(base64.b64decode(value).decode() if scheme == "Basic" else "")
                if state.auth_seen[-1] != f"{CLIENT_ID}:{state.secret}" or form.get("grant_type") != ["client_credentials"]:
                    return self._send(401, b'{"error":"invalid_client"}')
                tok = "cred-" + uuid.uuid4().hex
                state.issued.append(tok)
                self._send(200, json.dumps({"access_token": tok, "token_type": "Bearer", "expires_in": 300}).encode())

        self.server = servers.Server(Handler)
        self.port = self.server.port

    def stop(self):
        self.server.stop()


def plugin_config(key) -> dict:
    return {"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}],
            "authorization": {
                "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                "policies": {"p": {"rules": [{"name": "all", "models": ["*"]}], "upstream_credentials": {
                    "source": "client_credentials", "client_id": CLIENT_ID, "client_secret_env": ENV_NAME,
                    "scopes": ["llm.invoke"], "token_endpoint": {"cluster": "idp_token", "path": "/oauth2/token"}}}}}}


@pytest.fixture()
def gateway(tmp_path):
    """Starts Envoy with the secret passed one way or the other; stops everything after."""
    running = []

    def start(how: str, **envoy_kw):
        secret = "sekret-" + uuid.uuid4().hex  # unique bytes to search for
        key = tokens.Key("EdDSA")
        te = TokenEndpoint(secret)
        upstream = servers.start_mock_llm()
        cfg = plugin_config(key)
        if how == "host_env_keys":
            filt, process_env = envoy_run.wasm_filter(cfg, host_env_keys=[ENV_NAME]), {ENV_NAME: secret}
        else:
            filt, process_env = envoy_run.wasm_filter(cfg, env={ENV_NAME: secret}), None
        b = envoy_run.bootstrap(cfg, envoy_run.free_port(), envoy_run.free_port(), ("127.0.0.1", upstream.port),
                                None, filters=[filt])
        b["static_resources"]["clusters"].append(envoy_run._cluster("idp_token", "127.0.0.1", te.port))
        d = tmp_path / f"e{len(running)}"
        d.mkdir()
        envoy = envoy_run.Envoy(b, d, env=process_env, **envoy_kw)
        running.append((envoy, te, upstream))
        return {"envoy": envoy, "te": te, "key": key, "secret": secret}

    yield start
    for envoy, te, upstream in running:
        envoy.stop()
        te.stop()
        upstream.stop()
        envoy.assert_no_trap()


def call(g):
    caller = tokens.mint(g["key"], tokens.claims(ISS, sub="alice"))
    r = request(g["envoy"].port, caller, body={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    return caller, r


def secret_forms(g) -> list[str]:
    """The secret as stored, and as it travels (Basic client authentication)."""
    return [g["secret"], base64.b64encode(f"{CLIENT_ID}:{g['secret']}".encode()).decode(),
            urllib.parse.quote(g["secret"])]


def admin_pages(envoy) -> dict[str, str]:
    pages = {}
    for page in ADMIN_PAGES:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin_port}{page}", timeout=10) as r:
                pages[page] = r.read().decode(errors="replace")
        except urllib.error.HTTPError as e:
            pages[page] = e.read().decode(errors="replace")
    return pages


def test_host_env_secret_reaches_the_token_endpoint_and_no_admin_page(gateway):
    g = gateway("host_env_keys")
    _, r = call(g)
    assert r.status == 200, r.body
    assert g["te"].auth_seen == [f"{CLIENT_ID}:{g['secret']}"]  # the endpoint got the secret
    pages = admin_pages(g["envoy"])
    assert ENV_NAME in pages["/config_dump?include_eds"]  # the name is there (host_env_keys) ...
    for page, text in pages.items():
        for form in secret_forms(g):
            assert form not in text, f"secret in {page}"  # ... the value nowhere
    assert not any(form in g["envoy"].log() for form in secret_forms(g))


def test_key_values_secret_is_printed_by_config_dump(gateway):
    """The finding reproduced: what the recipes did before issue 15."""
    g = gateway("key_values")
    _, r = call(g)
    assert r.status == 200, r.body
    dump = admin_pages(g["envoy"])["/config_dump?include_eds"]
    assert g["secret"] in dump
    assert re.search(r'"key_values":\s*\{\s*"' + ENV_NAME + r'":\s*"' + g["secret"], dump)


def _statement_of(lines: list[str], i: int) -> str:
    """The log statement a (possibly continuation) line belongs to."""
    while i > 0 and not lines[i].startswith("["):
        i -= 1
    return lines[i]


def _where(log: str, needle: str) -> set[str]:
    """Which component and message logged `needle`, e.g. "[debug][http] request headers complete"."""
    lines = log.splitlines()
    out = set()
    for i, line in enumerate(lines):
        if needle in line:
            m = re.match(r"\[[^]]*\]\[\d+\]\[(\w+)\]\[(\w+)\] \[[^]]*\] (?:\[Tags: [^]]*\] )?(.*)",
                         _statement_of(lines, i))
            out.add(f"[{m.group(1)}][{m.group(2)}] {m.group(3).split(':')[0]}" if m else "?")
    return out


def test_what_each_log_level_shows(gateway):
    quiet = gateway("host_env_keys")
    caller, r = call(quiet)
    assert r.status == 200
    time.sleep(0.5)  # log flush interval is 200 ms
    log = quiet["envoy"].log()
    for needle in [caller, *quiet["te"].issued, *secret_forms(quiet)]:
        assert needle not in log, "at info, no token, credential or secret is logged"

    # At debug (and the filter at trace), Envoy's own header dumps carry them; the filter never does.
    loud = gateway("host_env_keys", log_level="debug", wasm_log_level="trace")
    caller, r = call(loud)
    assert r.status == 200
    time.sleep(0.5)
    log = loud["envoy"].log()
    basic = secret_forms(loud)[1]
    assert _where(log, caller) == {"[debug][http] request headers complete (end_stream=false)"}
    assert _where(log, loud["te"].issued[0]) == {"[debug][router] router decoding headers"}
    assert _where(log, basic) == {"[debug][router] router decoding headers"}
    assert loud["secret"] not in log  # only inside the Basic value
    assert "][wasm]" in log  # the filter did log at trace, and none of it above matched
