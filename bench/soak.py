"""`make soak`: mixed traffic (allowed, denied, limited, streaming, redacted) through Envoy
with 2 workers for a bounded time (SOAK_SECONDS, default 60). Reports Envoy's memory at start
and end, and fails on over-admission by the rate limit, lost or wrong responses, or memory
growth with unique identities beyond SOAK_MAX_GROWTH_MB (default 64)."""
import json
import os
import random
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demo"))
import envoy_run  # noqa: E402
import servers  # noqa: E402
import tokens  # noqa: E402

ISS = "https://soak.local"
SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
MAX_GROWTH_MB = float(os.environ.get("SOAK_MAX_GROWTH_MB", "64"))
LIMIT = 5  # per hot identity per minute
HOT = [f"hot-{i}" for i in range(8)]
SECRET = "mail jane.doe@example.com key AKIAIOSFODNN7EXAMPLE"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main():
    key = tokens.Key("EdDSA")
    upstream = servers.start_mock_llm()
    cfg = {
        "issuers": [{"name": "s", "issuer": ISS, "audiences": ["llm"], "jwks": {"inline": tokens.jwks(key)}}],
        "audit": {"log": False},
        "token_cache": {"max_entries": 2048},
        "authorization": {
            "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
            "policies": {"p": {"rules": [{"name": "all", "models": ["*"],
                                          "limits": [{"name": "rpm", "requests": LIMIT, "per": "minute"}]}],
                               "redaction": {}, "guard": {}}},
            # Default table (16384 slots): ~600 new identities/s x 12 s of live state fit.
            "rate_limiting": {"slots": 16384},
        },
    }
    work = Path(tempfile.mkdtemp())
    envoy = envoy_run.Envoy(envoy_run.bootstrap(cfg, envoy_run.free_port(), envoy_run.free_port(),
                                                ("127.0.0.1", upstream.port), None), work, concurrency=2)
    url = f"http://127.0.0.1:{envoy.port}/v1/chat/completions"
    hot_tokens = {s: tokens.mint(key, tokens.claims(ISS, aud="llm", sub=s, ttl=3000)) for s in HOT}
    stats = {"allowed": 0, "denied": 0, "limited": 0, "streams": 0, "redacted": 0, "lost": 0, "wrong": 0}
    hot_ok = {s: 0 for s in HOT}
    lock = threading.Lock()
    errors: list[str] = []

    def call(token, body, headers=None):
        h = {"content-type": "application/json", **(headers or {})}
        if token:
            h["authorization"] = f"Bearer {token}"
        req = urllib.request.Request(url, data=json.dumps(body).encode(), headers=h)
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def worker(seed):
        rng = random.Random(seed)
        while time.time() < deadline:
            kind = rng.choice(["allowed", "denied", "limited", "stream", "redacted"])
            sub = f"u-{seed}-{rng.getrandbits(48):x}"  # unique identities: memory must stay bounded
            try:
                if kind == "allowed":
                    st, body = call(tokens.mint(key, tokens.claims(ISS, aud="llm", sub=sub)),
                                    {"model": "m", "messages": [{"role": "user", "content": "hi"}]})
                    ok = st == 200 and b"choices" in body
                elif kind == "denied":
                    st, body = call("not-a-token", {"model": "m", "messages": []})
                    ok = st == 401
                elif kind == "limited":
                    s = rng.choice(HOT)
                    st, body = call(hot_tokens[s], {"model": "m", "messages": [{"role": "user", "content": "x"}]})
                    ok = st in (200, 429)
                    if st == 200:
                        with lock:
                            hot_ok[s] += 1
                elif kind == "stream":
                    st, body = call(tokens.mint(key, tokens.claims(ISS, aud="llm", sub=sub)),
                                    {"model": "m", "stream": True, "messages": [{"role": "user", "content": "hi"}]})
                    ok = st == 200 and body.rstrip().endswith(b"data: [DONE]")
                else:
                    st, body = call(tokens.mint(key, tokens.claims(ISS, aud="llm", sub=sub)),
                                    {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
                                    {"x-mock-reply": SECRET})
                    ok = st == 200 and b"jane.doe" not in body and b"AKIAIOSFODNN7EXAMPLE" not in body
                key_name = {"allowed": "allowed", "denied": "denied", "limited": "limited", "stream": "streams",
                            "redacted": "redacted"}[kind]
                with lock:
                    stats[key_name] += 1
                    if not ok:
                        stats["wrong"] += 1
                        errors.append(f"{kind}: {st} {body[:120]!r}")
            except Exception as e:  # noqa: BLE001 - every failure is a lost response
                with lock:
                    stats["lost"] += 1
                    errors.append(f"{kind}: {e!r}")

    try:
        # Warm up, then measure memory.
        for _ in range(50):
            call(tokens.mint(key, tokens.claims(ISS, aud="llm", sub="warm")), {"model": "m", "messages": []})
        time.sleep(0.5)
        start_rss = rss_mb(envoy.proc.pid)
        t0 = time.time()
        deadline = t0 + SECONDS
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.time() - t0
        time.sleep(0.5)
        end_rss = rss_mb(envoy.proc.pid)
        log = envoy.log()
    finally:
        envoy.stop()
        upstream.stop()
    total = sum(v for k, v in stats.items() if k not in ("lost", "wrong"))
    # GCRA: LIMIT at once, then one per 60/LIMIT seconds.
    allowed_max = LIMIT + int(elapsed * LIMIT / 60) + 1
    over = {s: n for s, n in hot_ok.items() if n > allowed_max}
    print(f"soak: {elapsed:.0f} s, {total} calls ({total / elapsed:.0f}/s), 2 workers: {json.dumps(stats)}")
    print(f"envoy RSS: start {start_rss:.1f} MiB, end {end_rss:.1f} MiB, growth {end_rss - start_rss:+.1f} MiB")
    print(f"hot identities: max admitted {max(hot_ok.values())} of allowed {allowed_max} per identity")
    failures = []
    if stats["lost"] or stats["wrong"]:
        failures.append(f"{stats['lost']} lost and {stats['wrong']} wrong responses: {errors[:5]}")
    if over:
        failures.append(f"over-admission: {over} (max {allowed_max})")
    if end_rss - start_rss > MAX_GROWTH_MB:
        failures.append(f"memory grew {end_rss - start_rss:.1f} MiB (> {MAX_GROWTH_MB})")
    if envoy_run.has_trap(log):
        failures.append("Wasm trap in Envoy's log")
    if failures:
        raise SystemExit("soak FAILED: " + "; ".join(failures))
    print("soak OK")


if __name__ == "__main__":
    main()
