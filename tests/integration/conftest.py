"""Fixtures that run the release .wasm inside the real Envoy from the project venv."""
import json
import time
import urllib.error
import urllib.request

import pytest

import envoy_run
import servers
import tokens

ISS = "https://idp.test"
HMAC_ISS = "https://hmac.test"
HMAC_SECRET = b"integration-test-hmac-secret-0123456789"


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body)


def request(port: int, token: str | None = None, headers: dict | None = None, body: dict | None = None,
            path: str = "/v1/chat/completions", timeout: float = 15) -> Response:
    h = {"content-type": "application/json"}
    if token is not None:
        h["authorization"] = f"Bearer {token}"
    h.update(headers or {})
    data = json.dumps(body if body is not None else {"model": "mock-gpt", "messages": [
        {"role": "user", "content": "hi"}]}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=h, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


class Stack:
    """Mock LLM + JWKS server + Envoy running the filter."""

    def __init__(self, tmp_path, keys, remote_opts=None, extra_issuers=(), plugin_extra=None, routes=None,
                 stop_iteration=True):
        self.keys = keys
        self.jwks_state = servers.JwksState(tokens.jwks(*keys))
        self.jwks = servers.start_jwks(self.jwks_state)
        self.upstream = servers.start_mock_llm()
        remote = {"cluster": "jwks", "path": "/.well-known/jwks.json", "refresh_interval_s": 60,
                  "max_stale_s": 3600, "unknown_kid_refetch_interval_s": 30, "timeout_ms": 2000}
        remote.update(remote_opts or {})
        self.plugin_config = {
            "issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"remote": remote}},
                        *extra_issuers],
            **(plugin_extra or {}),
        }
        self.access_log = tmp_path / "access.log"
        self.envoy = envoy_run.Envoy(
            envoy_run.bootstrap(self.plugin_config, envoy_run.free_port(), envoy_run.free_port(),
                                ("127.0.0.1", self.upstream.port), ("127.0.0.1", self.jwks.port),
                                str(self.access_log), routes=routes, stop_iteration=stop_iteration),
            tmp_path)
        self.port = self.envoy.port

    def call(self, token=None, **kw) -> Response:
        return request(self.port, token, **kw)

    def token(self, key=None, **claim_overrides) -> str:
        key = key or self.keys[0]
        return tokens.mint(key, tokens.claims(ISS, **claim_overrides))

    def access_records(self, wait_for: int = 0) -> list[tuple[int, dict]]:
        """(status, audit record) per access-log line, waiting for at least `wait_for` lines."""
        deadline = time.time() + 5
        while True:
            lines = self.access_log.read_text().splitlines() if self.access_log.exists() else []
            if len(lines) >= wait_for or time.time() > deadline:
                break
            time.sleep(0.1)
        out = []
        for line in lines:
            status, _, record = line.partition(" ")
            out.append((int(status), json.loads(record) if record.startswith("{") else None))
        return out

    def record(self, jti: str, timeout: float = 5.0) -> dict:
        """The audit record (from the access log) of the call whose token had this jti."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for _, rec in self.access_records():
                if rec and rec.get("jti") == jti:
                    return rec
            time.sleep(0.1)
        raise AssertionError(f"no audit record for jti {jti}")

    def stop(self):
        self.envoy.stop()
        self.envoy.assert_no_trap()
        self.jwks.stop()
        self.upstream.stop()


@pytest.fixture()
def stack_factory(tmp_path, keys):
    """Makes stacks signed by the ES256 key (Stack keyword arguments pass through) and
    stops them after the test."""
    stacks = []

    def _make(**kw):
        d = tmp_path / f"s{len(stacks)}"
        d.mkdir()
        s = Stack(d, [keys["ES256"]], **kw)
        stacks.append(s)
        return s
    yield _make
    for s in stacks:
        s.stop()


@pytest.fixture(scope="session")
def keys():
    """One key per algorithm family, generated for this run."""
    return {alg: tokens.Key(alg) for alg in ("RS256", "PS256", "ES256", "ES384", "EdDSA")}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, keys):
    import base64
    hmac_issuer = {"name": "hmac", "issuer": HMAC_ISS, "audiences": ["llm-api"],
                   "hmac_secret_base64": base64.b64encode(HMAC_SECRET).decode()}
    s = Stack(tmp_path_factory.mktemp("envoy"), list(keys.values()), extra_issuers=[hmac_issuer])
    yield s
    s.stop()
