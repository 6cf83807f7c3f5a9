"""Faults in the real Envoy: broken dependencies and hostile clients each end with a clear
status, and the filter keeps serving afterwards (every stack's teardown also asserts that
Envoy's log shows no Wasm trap or panic)."""
import json
import socket
import time

import pytest

POLICY = {"authorization": {
    "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
    "policies": {"p": {"rules": [{"name": "all", "models": ["*"], "tools": ["*"],
                                  "limits": [{"name": "tpm", "tokens": 1000000, "per": "minute"}]}],
                       "redaction": {}, "guard": {}}}}}


@pytest.fixture()
def make(stack_factory):
    return stack_factory


def chat(**extra):
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], **extra}


def still_serves(s):
    r = s.call(s.token(), body=chat())
    assert r.status == 200, r.body


def test_jwks_slow_past_timeout_fails_closed_promptly(make):
    s = make(remote_opts={"timeout_ms": 500})
    s.jwks_state.delay = 3
    t0 = time.time()
    r = s.call(s.token(), body=chat())
    assert r.status == 503 and json.loads(r.body)["error"]["code"] == "auth_unavailable"
    assert time.time() - t0 < 2.5
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{s.envoy.admin_port}/stats/prometheus", timeout=5) as m:
        assert "llm_warden_jwks_fetch_failed" in m.read().decode()  # JWKS fetches ok/failed are counted
    s.jwks_state.delay = 0
    time.sleep(5.5)  # past the failure back-off: the next request fetches again
    still_serves(s)


def test_jwks_huge_or_garbage_at_start_is_503_not_a_crash(make):
    s = make(remote_opts={"max_bytes": 4096})
    s.jwks_state.raw = b'{"keys": [' + b'{"kty": "oct"},' * 10000 + b"{}]}"
    assert s.call(s.token(), body=chat()).status == 503
    s.jwks_state.raw = b"\x00\xff garbage"
    time.sleep(5.5)
    assert s.call(s.token(), body=chat()).status == 503
    s.jwks_state.raw = None
    time.sleep(5.5)
    still_serves(s)


def test_upstream_reset_mid_stream(make):
    s = make(plugin_extra=POLICY)
    r = s.call(s.token(), body=chat(stream=True), headers={"x-mock-reset": "1"})
    # Envoy ends the response (or reports the reset); the partial secret never leaks.
    assert b"jane.doe" not in r.body
    still_serves(s)


def test_client_disconnects_mid_stream(make):
    s = make(plugin_extra=POLICY)
    body = json.dumps(chat(stream=True)).encode()
    for _ in range(5):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                  + f"authorization: Bearer {s.token()}\r\nx-mock-slow: 40\r\n".encode()
                  + f"content-length: {len(body)}\r\n\r\n".encode() + body)
        assert c.recv(200).startswith(b"HTTP/1.1 200")
        c.close()  # gone mid-stream
    time.sleep(1)
    still_serves(s)


def test_headers_and_tokens_over_the_limits(make):
    s = make()
    r = s.call("e" * 20_000, body=chat())  # over token.max_bytes (16 KiB)
    assert r.status == 401 and json.loads(r.body)["error"]["code"] == "invalid_token"
    r = s.call(s.token(), body=chat(), headers={"x-big": "h" * 70_000})  # over Envoy's header limit
    assert r.status == 431
    many = {f"x-h{i}": "v" for i in range(60)}
    assert s.call(s.token(), body=chat(), headers=many).status == 200
    still_serves(s)


def test_truncated_and_garbage_requests(make):
    s = make(plugin_extra=POLICY)
    # A body shorter than its content-length, then the client goes away.
    c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
    c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
              + f"authorization: Bearer {s.token()}\r\ncontent-length: 1000\r\n\r\n".encode() + b'{"model": "m", ')
    time.sleep(0.3)
    c.close()
    for body in (b"\xff\xfe\x00", b'{"messages": [' * 2000, b"null", b'{"model": {"$gt": ""}}'):
        c = socket.create_connection(("127.0.0.1", s.port), timeout=5)
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
                  + f"authorization: Bearer {s.token()}\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n".encode()
                  + body)
        status = c.recv(100).split(b" ")[1]
        c.close()
        assert status == b"400", body[:20]
    still_serves(s)
