"""The upstream credential never reaches the client through an echo, in the real Envoy (issue
"upstream credentials, revocation and shipped configs", item 3).

An upstream started here echoes the request's credential back: gzipped although nobody asked
for it, split across SSE events' content deltas (and NDJSON lines), in a JSON string (also
JSON-escaped), in a text/plain body cut into small network chunks, in response headers and in
a response trailer. With a credential attached the filter removes the client's Accept-Encoding
(also for requests waiting on another request's credential fetch), withholds a compressed
answer (502 `uninspectable_response`, audit `withheld: compressed`), scrubs the decoded event
text across events and the raw bytes of every chunk, and drops a response header carrying it.
Each case runs on a route without any redaction policy (the credential scrub alone) and on one
with. The JSON-escaped copy, the trailer, an unknown content type and plain-text SSE events
were found by these tests and fixed after them (they leaked before the fix)."""
import base64
import gzip
import json
import secrets
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ISS, Response, request

import envoy_run
import servers
import tokens

CLIENT_SECRET = "echo-client-secret-4711"
ROUTES = {"scrub_only": "plain.llm.test", "redaction": "red.llm.test"}
COLD_HOST = "cold.llm.test"  # its own credential, fetched once by concurrent requests
MARKER = "[REDACTED"
H1_TRAILERS = {"http_protocol_options": {"enable_trailers": True}}

def opaque_token() -> str:
    # Visible ASCII with `/` and `+` (an opaque base64 token, as some IdPs issue): a JSON
    # serializer may write `/` as `\/`, which hides it from a byte match.
    while True:
        tok = "at+" + base64.b64encode(secrets.token_bytes(30)).decode()
        if "/" in tok:
            return tok


class TokenEndpoint:
    """OAuth2 client credentials: every call issues a fresh opaque token."""

    def __init__(self):
        self.issued = []
        self.delay = 0.0
        state = self

        class Handler(servers._Quiet):
            def do_POST(self):
                self.rfile.read(int(self.headers["content-length"]))
                time.sleep(state.delay)
                auth = base64.b64decode(self.headers["authorization"].split()[1]).decode()
                if urllib.parse.unquote_plus(auth.partition(":")[2]) != CLIENT_SECRET:
                    return self._send(401, b'{"error":"invalid_client"}')
                tok = opaque_token()
                state.issued.append(tok)
                self._send(200, json.dumps({"access_token": tok, "token_type": "Bearer",
                                            "expires_in": 300}).encode())

        self.server = servers.Server(Handler)
        self.port = self.server.port

    def stop(self):
        self.server.stop()


def chunk_event(content: str) -> dict:
    return {"id": "chatcmpl-echo", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": "m", "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}]}


def completion(content: str, **extra) -> dict:
    return {"id": "chatcmpl-echo", "object": "chat.completion", "created": int(time.time()), "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}, **extra}


class EchoLLM:
    """Echoes the credential it received, the way `x-echo` asks; records the request headers."""

    def __init__(self):
        self.seen = []
        state = self

        class Handler(servers._Quiet):
            def write(self, data: bytes, pause: float = 0.05):
                self.wfile.write(data)
                self.wfile.flush()
                time.sleep(pause)  # a separate network chunk at the filter

            def head(self, ctype: str, **extra):
                self.send_response(200)
                self.send_header("content-type", ctype)
                for k, v in extra.items():
                    self.send_header(k.replace("_", "-"), v)
                self.send_header("connection", "close")
                self.end_headers()
                self.close_connection = True

            def do_GET(self):
                self.do_POST()

            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                state.seen.append(headers)
                cred = headers.get("authorization", "").removeprefix("Bearer ")
                half = len(cred) // 2
                mode = headers.get("x-echo", "json")
                if mode.startswith("gzip"):
                    # Compressed whatever the request said: JSON, or an SSE stream.
                    if mode == "gzip-sse":
                        ctype = "text/event-stream"
                        raw = f"data: {json.dumps(chunk_event('key ' + cred))}\n\ndata: [DONE]\n\n".encode()
                    else:
                        ctype = "application/json"
                        raw = json.dumps(completion("key " + cred, received_headers=headers)).encode()
                    data = gzip.compress(raw)
                    self.send_response(200)
                    self.send_header("content-type", ctype)
                    if mode == "gzip-twice":
                        # Two content-encoding fields: the first says identity.
                        self.send_header("content-encoding", "identity")
                    self.send_header("content-encoding", "GZIP" if mode == "gzip-upper" else "gzip")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                elif mode in ("binary", "te-gzip"):
                    # gzip bytes the headers do not call compressed: an unknown content type,
                    # or a gzip transfer coding.
                    data = gzip.compress(json.dumps(completion("key " + cred, received_headers=headers)).encode())
                    if mode == "binary":
                        self.head("application/octet-stream", content_length=str(len(data)))
                        self.write(data, 0)
                    else:
                        self.head("application/json", transfer_encoding="gzip, chunked")
                        self.write(f"{len(data):x}\r\n".encode() + data + b"\r\n0\r\n\r\n", 0)
                elif mode in ("sse", "sse-one-write", "sse-escaped"):
                    first = "data: " + json.dumps(chunk_event("your key is " + cred[:half])) + "\n\n"
                    second = json.dumps(chunk_event(cred[half:] + " ok"))
                    if mode == "sse-escaped":
                        second = second.replace("/", "\\/")
                    second = "data: " + second + "\n\n"
                    end = ("data: " + json.dumps({**chunk_event(""), "choices": [
                        {"index": 0, "delta": {}, "finish_reason": "stop"}]}) + "\n\ndata: [DONE]\n\n")
                    self.head("text/event-stream")
                    if mode == "sse-one-write":
                        self.write((first + second + end).encode())
                    else:
                        for part in (first, second, end):
                            self.write(part.encode())
                elif mode == "sse-text":
                    # Events whose data is plain text (not JSON): the client joins the payloads.
                    self.head("text/event-stream")
                    for part in (f"data: your key is {cred[:half]}\n\n", f"data: {cred[half:]} ok\n\n",
                                 "data: [DONE]\n\n"):
                        self.write(part.encode())
                elif mode == "sse-many":
                    # 3-character deltas, each event cut in two network writes (the credential
                    # spans a dozen events).
                    text = f"your key is {cred} ok"
                    self.head("text/event-stream")
                    for k in range(0, len(text), 3):
                        event = ("data: " + json.dumps(chunk_event(text[k:k + 3])) + "\n\n").encode()
                        cut = len(event) // 2
                        self.write(event[:cut], 0.005)
                        self.write(event[cut:], 0.005)
                    self.write(b"data: [DONE]\n\n", 0)
                elif mode == "ndjson":
                    lines = [{"model": "m", "message": {"role": "assistant", "content": "key " + cred[:half]},
                              "done": False},
                             {"model": "m", "message": {"role": "assistant", "content": cred[half:] + " ok"},
                              "done": False},
                             {"model": "m", "message": {"role": "assistant", "content": ""}, "done": True}]
                    self.head("application/x-ndjson")
                    for line in lines:
                        self.write((json.dumps(line) + "\n").encode())
                elif mode == "text-split":
                    data = f"your key is {cred} and again {cred}.".encode()
                    self.head("text/plain; charset=utf-8", transfer_encoding="chunked")
                    for k in range(0, len(data), 7):
                        part = data[k:k + 7]
                        self.write(f"{len(part):x}\r\n".encode() + part + b"\r\n", 0.01)
                    self.write(b"0\r\n\r\n", 0)
                elif mode == "trailer":
                    # The credential in a response trailer (chunked HTTP/1.1).
                    body = json.dumps(completion("ok")).encode()
                    self.head("application/json", transfer_encoding="chunked", trailer="x-echo-authorization")
                    self.write(f"{len(body):x}\r\n".encode() + body + b"\r\n", 0)
                    self.write(f"0\r\nx-echo-authorization: Bearer {cred}\r\n\r\n".encode(), 0)
                elif mode == "header":
                    body = json.dumps(completion("ok")).encode()
                    self.send_response(200)
                    self.send_header("content-type", "application/json")
                    self.send_header("x-echo-authorization", "Bearer " + cred)
                    self.send_header("set-cookie", f"session={cred}; Path=/")
                    self.send_header("x-harmless", "still here")
                    self.send_header("content-length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:  # json, json-escaped, json-unicode: the credential in a JSON string
                    body = json.dumps(completion("your key is " + cred, received_headers=headers))
                    if mode == "json-escaped":
                        body = body.replace("/", "\\/")  # legal JSON (PHP's json_encode default)
                    elif mode == "json-unicode":
                        # Legal JSON too: the credential's first character as a \u escape.
                        body = body.replace(cred, f"\\u{ord(cred[0]):04x}" + cred[1:])
                    self._send(200, body.encode())

        self.server = servers.Server(Handler)
        self.port = self.server.port

    def stop(self):
        self.server.stop()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    key = tokens.Key("EdDSA")
    te = TokenEndpoint()
    upstream = EchoLLM()
    issuer = {"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}
    cred = {"source": "client_credentials", "client_id": "gateway", "client_secret_env": "WARDEN_CLIENT_SECRET",
            "scopes": ["llm.invoke"], "token_endpoint": {"cluster": "idp_token", "path": "/oauth2/token"}}
    rules = [{"name": "all", "actions": ["*", "other"], "models": ["*"], "tools": ["*"]}]
    cfg = {"issuers": [issuer], "authorization": {
        "routes": [{"match": {"host": ROUTES["scrub_only"]}, "policy": "scrub_only"},
                   {"match": {"host": ROUTES["redaction"]}, "policy": "redaction"},
                   {"match": {"host": COLD_HOST}, "policy": "cold"}],
        "policies": {"scrub_only": {"rules": rules, "upstream_credentials": cred},
                     "cold": {"rules": rules, "upstream_credentials": {**cred, "scopes": ["llm.cold"]}},
                     "redaction": {"rules": rules, "upstream_credentials": cred, "redaction": {}}}}}
    filt = envoy_run.wasm_filter(cfg, host_env_keys=["WARDEN_CLIENT_SECRET"])
    port = envoy_run.free_port()
    # Trailers pass both ways, so an upstream trailer can reach the client.
    b = envoy_run.bootstrap(cfg, port, envoy_run.free_port(), ("127.0.0.1", upstream.port), None, filters=[filt],
                            hcm_options=H1_TRAILERS, upstream_http=H1_TRAILERS)
    b["static_resources"]["clusters"].append(envoy_run._cluster("idp_token", "127.0.0.1", te.port))
    e = envoy_run.Envoy(b, tmp_path_factory.mktemp("echo"), env={"WARDEN_CLIENT_SECRET": CLIENT_SECRET})
    ctx = {"key": key, "te": te, "up": upstream, "envoy": e, "port": port}
    yield ctx
    e.stop()
    te.stop()
    upstream.stop()
    e.assert_no_trap()
    log = e.log()
    assert CLIENT_SECRET not in log
    for t in te.issued:
        assert t not in log, "credential in Envoy's log"


def call(env, route, echo, stream=False, headers=None, get=None, host=None):
    """POST a chat completion (or GET the path `get`) on the route's host."""
    jti = uuid.uuid4().hex
    token = tokens.mint(env["key"], tokens.claims(ISS, jti=jti))
    h = {"host": host or ROUTES[route], "x-echo": echo, **(headers or {})}
    if get:
        req = urllib.request.Request(f"http://127.0.0.1:{env['port']}{get}", method="GET",
                                     headers={"authorization": f"Bearer {token}", **h})
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                return Response(r.status, dict(r.headers), r.read()), jti
        except urllib.error.HTTPError as e:
            return Response(e.code, dict(e.headers), e.read()), jti
    body = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body["stream"] = True
    return request(env["port"], token, headers=h, body=body), jti


def credentials(env):
    assert env["te"].issued, "no credential was issued"
    return env["te"].issued


def assert_no_credential(env, text: str):
    for cred in credentials(env):
        for form in (cred, cred.replace("/", "\\/"), f"\\u{ord(cred[0]):04x}" + cred[1:]):
            assert form not in text, "the upstream credential reached the client"


def audit(env, jti, timeout=5.0) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        for line in env["envoy"].log().splitlines():
            if "llm-warden-audit " in line and jti in line:
                return json.loads(line.split("llm-warden-audit ", 1)[1])
        time.sleep(0.1)
    raise AssertionError(f"no audit record for {jti}")


def sse_text(body: bytes) -> str:
    """The client's reassembly: every event's decoded `choices[0].delta.content`."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("data: ") and line != "data: [DONE]":
            out.append(json.loads(line[6:])["choices"][0]["delta"].get("content") or "")
    return "".join(out)


def readable(body: bytes) -> str:
    """The body as a client that decodes it would see it (gunzipped when it is gzip)."""
    if body[:2] == b"\x1f\x8b":
        body = gzip.decompress(body)
    return body.decode(errors="replace")


def assert_uncompressed_request(seen: dict):
    assert seen["authorization"].startswith("Bearer "), seen
    assert seen.get("accept-encoding", "identity").strip().lower() == "identity", seen


# A chat completion's body is read (its accept-encoding was removed for that before);
# GET /v1/models is decided on headers alone.
READS = {"chat": None, "models": "/v1/models"}


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("read", READS)
def test_accept_encoding_is_removed_when_a_credential_is_attached(env, route, read):
    r, _ = call(env, route, "json", get=READS[read], headers={"accept-encoding": "gzip, deflate, br"})
    assert r.status == 200, r.body
    assert_uncompressed_request(env["up"].seen[-1])


def test_accept_encoding_is_removed_for_requests_waiting_on_one_credential_fetch(env):
    # Concurrent cold requests: one fetches the credential, the others wait for it (the
    # root's tick resumes them): every path that attaches it removes accept-encoding.
    before, fetched = len(env["up"].seen), len(env["te"].issued)
    env["te"].delay = 0.5
    try:
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(lambda _: call(env, None, "json", get="/v1/models", host=COLD_HOST,
                                                   headers={"accept-encoding": "gzip"})[0], range(4)))
    finally:
        env["te"].delay = 0.0
    assert [r.status for r in results] == [200] * 4, [r.body for r in results]
    assert len(env["te"].issued) == fetched + 1, "one fetch, three waiters"
    seen = env["up"].seen[before:]
    assert len(seen) == 4
    for s in seen:
        assert_uncompressed_request(s)


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("echo", ["gzip", "gzip-upper", "gzip-twice", "gzip-sse", "gzip-get"])
def test_a_compressed_echo_is_withheld(env, route, echo):
    get = "/v1/models" if echo == "gzip-get" else None
    r, jti = call(env, route, echo, stream=echo == "gzip-sse", get=get, headers={"accept-encoding": "gzip"})
    assert_no_credential(env, readable(r.body))
    assert r.status == 502, r.body
    assert r.json()["error"]["code"] == "uninspectable_response"
    assert "content-encoding" not in r.headers
    assert audit(env, jti).get("withheld") == "compressed"


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("echo", ["sse", "sse-one-write", "sse-escaped", "sse-many"])
def test_a_credential_split_across_sse_events_is_redacted(env, route, echo):
    r, _ = call(env, route, echo, stream=True)
    assert r.status == 200, r.body
    text = sse_text(r.body)
    assert_no_credential(env, text)
    assert_no_credential(env, r.body.decode())
    assert text.startswith("your key is ") and text.endswith(" ok"), text
    assert MARKER in text, text


@pytest.mark.parametrize("route", ROUTES)
def test_a_credential_split_across_ndjson_lines_is_redacted(env, route):
    r, _ = call(env, route, "ndjson", stream=True)
    assert r.status == 200, r.body
    text = "".join(json.loads(line)["message"]["content"] for line in r.body.decode().splitlines() if line)
    assert_no_credential(env, text)
    assert MARKER in text, text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("echo", ["json", "json-escaped", "json-unicode"])
def test_a_json_echo_is_scrubbed(env, route, echo):
    r, _ = call(env, route, echo)
    assert r.status == 200, r.body
    doc = r.json()
    decoded = json.dumps(doc)  # what the client's JSON parser hands it, \/ undone
    assert_no_credential(env, r.body.decode())
    assert_no_credential(env, doc["choices"][0]["message"]["content"])
    assert_no_credential(env, json.dumps(doc["received_headers"]))
    assert_no_credential(env, decoded)
    assert MARKER in doc["choices"][0]["message"]["content"]


@pytest.mark.parametrize("route", ROUTES)
def test_a_text_echo_split_across_network_chunks_is_scrubbed(env, route):
    r, _ = call(env, route, "text-split")
    assert r.status == 200, r.body
    text = r.body.decode()
    assert_no_credential(env, text)
    assert text.startswith("your key is ") and text.count(MARKER) == 2, text


@pytest.mark.parametrize("route", ROUTES)
def test_a_response_header_echoing_the_credential_is_removed(env, route):
    r, _ = call(env, route, "header")
    assert r.status == 200, r.body
    assert "x-echo-authorization" not in r.headers and "set-cookie" not in r.headers, r.headers
    assert r.headers.get("x-harmless") == "still here"
    assert_no_credential(env, json.dumps(r.headers))


@pytest.mark.parametrize("route", ROUTES)
def test_a_response_trailer_echoing_the_credential_is_removed(env, route):
    from raw_clients import h2_request
    r = h2_request(env["port"], authority=ROUTES[route], headers={
        "authorization": "Bearer " + tokens.mint(env["key"], tokens.claims(ISS)),
        "content-type": "application/json", "x-echo": "trailer"},
        body={"model": "m", "messages": [{"role": "user", "content": "hi"}]})
    assert r.status == 200, r.body
    assert_no_credential(env, json.dumps(r.trailers))
    assert_no_credential(env, r.body.decode())


@pytest.mark.parametrize("route,echo", [("scrub_only", "binary"), ("redaction", "binary"),
                                        ("scrub_only", "te-gzip"), ("redaction", "te-gzip")])
def test_a_body_the_scrub_cannot_read_is_not_passed(env, route, echo):
    # gzip bytes as application/octet-stream, or in a gzip transfer coding (Envoy refuses it).
    r, jti = call(env, route, echo, headers={"accept-encoding": "gzip"})
    assert_no_credential(env, readable(r.body))
    assert r.status == 502, (r.status, r.headers, r.body[:200])


@pytest.mark.parametrize("route", ROUTES)
def test_a_credential_split_across_plain_text_sse_events_is_not_passed(env, route):
    r, _ = call(env, route, "sse-text", stream=True)
    payloads = "".join(line[6:] for line in r.body.decode().splitlines()
                       if line.startswith("data: ") and line != "data: [DONE]")
    assert_no_credential(env, payloads)
