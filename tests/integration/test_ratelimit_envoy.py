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
    # The client did not ask for usage; the filter did, so the stream is charged.
    assert '"usage"' in r.body.decode() and r.body.decode().rstrip().endswith("data: [DONE]")
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
