"""Local rate limits in the real Envoy (2 workers, parallel clients): exact admission, token
limits on JSON and streamed responses, OpenAI headers, fast errors, monitor mode."""
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

import tokens


def limits_config(limits, mode="enforce"):
    return {"authorization": {
        "routes": [{"match": {"path_prefix": "/"}, "policy": "inference"}],
        "policies": {"inference": {"rules": [
            {"name": "users", "models": ["*"], "limits": limits}]}},
        "rate_limiting": {"mode": mode, "slots": 1024},
    }}


@pytest.fixture()
def make(stack_factory):
    return lambda limits, mode="enforce": stack_factory(plugin_extra=limits_config(limits, mode))


def chat(**extra):
    return {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_exactly_the_limit_passes_under_parallel_load(make):
    s = make([{"name": "rpm", "requests": 10, "per": "minute"}])
    token = s.token(sub="alice")
    s.call(s.token(sub="warmup"), body=chat())  # JWKS fetched; warm-up has its own counter
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda _: s.call(token, body=chat()).status, range(40)))
    assert statuses.count(200) == 10, statuses
    assert statuses.count(429) == 30
    # Another caller has a counter of its own.
    assert s.call(s.token(sub="bob"), body=chat()).status == 200


def test_headers_on_allowed_and_limited_calls(make):
    s = make([{"name": "rpm", "requests": 3, "per": "minute"}])
    token = s.token(sub="carol")
    seen = [s.call(token, body=chat()) for _ in range(4)]
    assert [r.status for r in seen] == [200, 200, 200, 429]
    first = seen[0].headers
    assert first["x-ratelimit-limit-requests"] == "3"
    assert first["x-ratelimit-remaining-requests"] == "2"
    assert first["x-ratelimit-reset-requests"] == "20s"
    assert seen[2].headers["x-ratelimit-remaining-requests"] == "0"
    limited = seen[3]
    err = json.loads(limited.body)["error"]
    assert err["code"] == "rate_limit_exceeded" and err["type"] == "requests"
    assert int(limited.headers["retry-after"]) == 20
    assert limited.headers["x-ratelimit-remaining-requests"] == "0"


def test_token_limit_json_responses(make):
    # The mock charges 18 tokens per call: 40 tokens/minute admit 3 calls (the third goes
    # into debt), then the balance is gone.
    s = make([{"name": "tpm", "tokens": 40, "per": "minute"}])
    token = s.token(sub="dave")
    statuses = [s.call(token, body=chat()).status for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    r = s.call(token, body=chat())
    err = json.loads(r.body)["error"]
    assert err["type"] == "tokens" and r.headers["x-ratelimit-remaining-tokens"] == "0"


def test_token_limit_streaming_forces_usage(make):
    s = make([{"name": "tpm", "tokens": 40, "per": "minute"}])
    token = s.token(sub="erin")
    r = s.call(token, body=chat(stream=True))
    assert r.status == 200
    # The client did not ask for usage; the filter did, so the stream is charged, and the
    # usage-only chunk it asked for is removed from what the client sees (issue #11).
    assert '"usage"' not in r.body.decode() and r.body.decode().rstrip().endswith("data: [DONE]")
    statuses = [s.call(token, body=chat(stream=True)).status for _ in range(4)]
    assert statuses == [200, 200, 429, 429]


def test_upstream_error_without_usage_passes_promptly(make):
    s = make([{"name": "tpm", "tokens": 1000, "per": "minute"}, {"name": "rpm", "requests": 100, "per": "minute"}])
    token = s.token(sub="frank")
    t0 = time.time()
    r = s.call(token, body=chat(), headers={"x-mock-status": "500"})
    assert r.status == 500 and time.time() - t0 < 2
    assert json.loads(r.body)["error"]["message"] == "upstream failure"
    assert r.headers["x-ratelimit-remaining-tokens"] == "1000"


def test_monitor_mode_counts_but_never_blocks(make):
    s = make([{"name": "rpm", "requests": 1, "per": "minute"}], mode="monitor")
    jti = uuid.uuid4().hex
    token = s.token(sub="gina")
    assert s.call(token, body=chat()).status == 200
    token2 = tokens.mint(s.keys[0], tokens.claims("https://idp.test", sub="gina", jti=jti))
    r = s.call(token2, body=chat())
    assert r.status == 200
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    rec = s.record(jti)
    assert rec["decision"] == "would_deny" and rec["reason"] == "rate_limited" and rec["limit"] == "rpm"


def prometheus(stack) -> dict:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{stack.envoy.admin_port}/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        # Envoy 1.40 exports wasm custom metrics under their own names (no envoy_ prefix).
        if line.startswith("llm_warden_"):
            name, _, value = line.rpartition(" ")
            out[name.split("{")[0]] = float(value)
    return out


def test_metrics_count_limit_decisions_and_tokens(make):
    # Usage is metered when a token limit (or global-mode export) needs it.
    s = make([{"name": "rpm", "requests": 2, "per": "minute"}, {"name": "tpm", "tokens": 100000, "per": "minute"}])
    token = s.token(sub="henry")
    assert [s.call(token, body=chat()).status for _ in range(3)] == [200, 200, 429]
    assert s.call(None, body=chat()).status == 401
    assert s.call("not.a.jwt", body=chat()).status == 401
    time.sleep(0.3)
    m = prometheus(s)
    assert m.get("llm_warden_calls_deny_missing_token") == 1, m  # auth failures by reason
    assert m.get("llm_warden_calls_deny_malformed_token") == 1, m
    assert m.get("llm_warden_ratelimit_allowed") == 2, m
    assert m.get("llm_warden_ratelimit_limited") == 1, m  # one decision per call, all limits together
    assert m.get("llm_warden_tokens_used") == 36, m
    assert m.get("llm_warden_calls_allow_ok") == 2, m
    assert m.get("llm_warden_calls_deny_rate_limited") == 1, m
    assert m.get("llm_warden_jwks_fetch_ok", 0) >= 1, m
    time.sleep(1.2)  # one tick: the key set age gauge is recorded
    assert 0 <= prometheus(s).get("llm_warden_jwks_age_seconds_idp", -1) < 60


# ---------- token reservations (issue #11: every token a caller consumes is charged) ----------
#
# A token limit reserves, before the call, the prompt estimate + max_tokens (default cap when
# absent) x max(n, best_of), capped at the limit; the call is admitted while budget is left,
# so calls in flight see each other's reservations. The estimate of the prompt is the body's
# ASCII bytes / 4 (rounded up) + one per non-ASCII character (src/usage.rs text_tokens).

DEFAULT_CAP = 4096  # rate_limiting.default_max_tokens


def text_tokens(data: bytes) -> int:
    ascii_bytes = sum(1 for b in data if b < 0x80)
    wide = sum(1 for b in data if b >= 0xC0)
    return -(-ascii_bytes // 4) + wide


def prompt_estimate(body: dict) -> int:
    return text_tokens(json.dumps(body).encode())  # the bytes conftest.request sends


def reservation(body: dict, limit: int) -> int:
    cap = body.get("max_tokens", DEFAULT_CAP)
    n = max(body.get("n", 1), body.get("best_of", 1))
    return min(prompt_estimate(body) + cap * n, limit)


def parallel_slow_calls(s, token, body, count):
    """`count` calls at once, each a 1 s stream (the mock's x-mock-slow: 20 events, no usage),
    so every admission happens while the others are in flight."""
    def one(_):
        return s.call(token, body=body, headers={"x-mock-slow": "20"}, timeout=30).status
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.parametrize("extra", [
    {"max_tokens": 300},            # 300 + prompt per call
    {},                             # no max_tokens: the default cap, capped at the limit
    {"max_tokens": 100, "n": 4},    # n multiplies the cap
    {"max_tokens": 50, "best_of": 6, "n": 2},  # the larger of n and best_of
], ids=["max_tokens", "default_cap", "n", "best_of"])
def test_parallel_token_calls_exceed_the_limit_by_at_most_one_reservation(make, extra):
    # Envoy runs 2 workers (envoy_run's --concurrency 2); the clients' connections spread
    # over both. The bound: what is reserved exceeds the limit by at most one reservation
    # (the issue allows one per worker; the shared-data CAS makes it one per counter).
    limit = 1000
    # Per hour: the bucket refills a token every 3.6 s, nothing during the burst.
    s = make([{"name": "tph", "tokens": limit, "per": "hour"}])
    s.call(s.token(sub="warmup"), body=chat())  # JWKS fetched; warm-up has its own counter
    body = chat(stream=True, **extra)
    r = reservation(body, limit)
    statuses = parallel_slow_calls(s, s.token(sub=f"par-{uuid.uuid4().hex[:8]}"), body, 10)
    admitted = statuses.count(200)
    assert statuses.count(429) == 10 - admitted, statuses
    assert admitted * r <= limit + r, (statuses, r)
    assert admitted * r <= limit + 2 * r  # the bound for 2 workers
    # Admitted while budget is left: exactly ceil(limit / reservation) calls.
    assert admitted == -(-limit // r), (statuses, r)


def test_parallel_calls_with_reserve_true_fit_the_limit(make):
    limit = 1000
    s = make([{"name": "tph", "tokens": limit, "per": "hour", "reserve": True}])
    s.call(s.token(sub="warmup"), body=chat())
    body = chat(stream=True, max_tokens=300)
    r = reservation(body, limit)
    statuses = parallel_slow_calls(s, s.token(sub=f"fit-{uuid.uuid4().hex[:8]}"), body, 10)
    assert statuses.count(200) == limit // r, (statuses, r)


def call_cut_by_upstream(s, token, body):
    """The mock sends one event, then resets the connection: no usage ever arrives."""
    import http.client
    try:
        return s.call(token, body=body, headers={"x-mock-reset": "1"}).status
    except (http.client.HTTPException, OSError):
        return None


def test_stream_cut_before_usage_is_charged_from_what_passed(make):
    limit = 5000
    s = make([{"name": "tpm", "tokens": limit, "per": "day"}])  # replenishes ~0.06 tokens/s
    token = s.token(sub=f"cut-{uuid.uuid4().hex[:8]}")
    body = chat(stream=True, max_tokens=2000)
    call_cut_by_upstream(s, token, body)
    time.sleep(0.5)  # the cut call is settled when Envoy logs it
    # The next call reports the budget before its own reservation: limit - the cut call's charge.
    r = s.call(token, body=chat())
    assert r.status == 200
    charged = limit - int(r.headers["x-ratelimit-remaining-tokens"])
    prompt = prompt_estimate(body)
    # Never less than the prompt estimate; not the whole reservation either: the prompt plus
    # an estimate of the one short event that passed.
    assert prompt <= charged < prompt + 50, (charged, prompt)


def test_client_gone_mid_stream_is_charged(make):
    limit = 5000
    s = make([{"name": "tpm", "tokens": limit, "per": "day"}])  # replenishes ~0.06 tokens/s
    token = s.token(sub=f"gone-{uuid.uuid4().hex[:8]}")
    body = chat(stream=True, max_tokens=2000)
    import socket
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", s.port), timeout=10) as c:
        c.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  + f"authorization: Bearer {token}\r\nx-mock-slow: 40\r\ncontent-length: {len(data)}\r\n\r\n".encode()
                  + data)
        first = c.recv(4096)
        assert first.startswith(b"HTTP/1.1 200"), first
        time.sleep(0.3)  # a few events pass, then the client leaves
    time.sleep(1.0)
    r = s.call(token, body=chat())
    charged = limit - int(r.headers["x-ratelimit-remaining-tokens"])
    prompt = prompt_estimate(body)
    assert prompt <= charged < prompt + 200, (charged, prompt)


def test_audit_record_has_reserved_and_charged_tokens(make):
    limit = 5000
    s = make([{"name": "tpm", "tokens": limit, "per": "minute"}])
    jti = uuid.uuid4().hex
    token = tokens.mint(s.keys[0], tokens.claims("https://idp.test", sub="ivy", jti=jti))
    body = chat(max_tokens=700)
    assert s.call(token, body=body).status == 200
    rec = s.record(jti)
    assert rec["tokens_reserved"] == reservation(body, limit), rec
    assert rec["tokens_charged"] == 18, rec  # the mock's reported usage
    # The same figures as counters, for dashboards (reserved vs charged).
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{s.envoy.admin_port}/stats/prometheus", timeout=5) as r:
        text = r.read().decode()
    metrics = {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("llm_warden_")}
    assert metrics.get("llm_warden_tokens_reserved") == rec["tokens_reserved"], metrics
    assert metrics.get("llm_warden_tokens_charged") == 18, metrics


def test_error_reply_without_usage_is_refunded(make):
    limit = 1000
    s = make([{"name": "tpm", "tokens": limit, "per": "minute"}])
    token = s.token(sub=f"err-{uuid.uuid4().hex[:8]}")
    for _ in range(3):
        assert s.call(token, body=chat(max_tokens=900), headers={"x-mock-status": "500"}).status == 500
    # Nothing was charged: the whole budget is there.
    assert s.call(token, body=chat()).headers["x-ratelimit-remaining-tokens"] == str(limit)


def test_same_subject_of_another_issuer_has_its_own_counter(stack_factory, keys):
    # "alice" of one issuer exhausting her limit leaves "alice" of another untouched.
    import base64
    secret = b"second-issuer-hmac-secret-0123456789abcdef"
    other = {"name": "other", "issuer": "https://other.test", "audiences": ["llm-api"],
             "hmac_secret_base64": base64.b64encode(secret).decode()}
    s = stack_factory(plugin_extra=limits_config([{"name": "rpm", "requests": 2, "per": "minute"}]),
                      extra_issuers=[other])
    alice_a = s.token(sub="alice")
    alice_b = tokens.mint_hmac(secret, tokens.claims("https://other.test", sub="alice"))
    assert [s.call(alice_a, body=chat()).status for _ in range(3)] == [200, 200, 429]
    assert s.call(alice_b, body=chat()).status == 200
