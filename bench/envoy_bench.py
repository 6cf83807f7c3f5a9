"""`make bench`: llm-warden side by side with Envoy's native filters, in one go on loopback.

Set-ups (same upstream, same requests, same keys/tokens; several rounds, interleaved):
  1. passthrough: router only
  2. native: envoy.filters.http.jwt_authn (local JWKS) + local_ratelimit
  3. llm-warden: auth + model scope + request limit
  4. llm-warden: + streaming redaction (chat stream; and 1 MiB text bodies)
Prints requests/s, p50/p99 latency and Envoy CPU per request for each, the ratios 3/2, 3/1,
4/1, and p99 added at half load (oha at a constant rate). Fails loudly when a set-up does
not serve 200s.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demo"))
import envoy_run  # noqa: E402
import tokens  # noqa: E402

ISS = "https://bench.local"
DURATION = int(os.environ.get("BENCH_SECONDS", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
CONNECTIONS = 16
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def wrk(url: str, token: str | None, body: bytes, extra: dict | None = None, conns: int = CONNECTIONS,
        token_file: Path | None = None, seconds: int = DURATION) -> dict:
    script = Path(tempfile.mkdtemp()) / "req.lua"
    headers = {"content-type": "application/json", **(extra or {})}
    if token:
        headers["authorization"] = f"Bearer {token}"
    lua = ['wrk.method = "POST"', f"wrk.body = {json.dumps(body.decode())}"]
    lua += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    if token_file:
        # Cycle through distinct tokens: each thread starts at a different offset.
        lua += ["local toks = {}", f'for line in io.lines("{token_file}") do toks[#toks + 1] = line end',
                "local i = math.random(#toks)",
                "request = function()",
                "  i = i % #toks + 1",
                '  wrk.headers["authorization"] = "Bearer " .. toks[i]',
                "  return wrk.format()",
                "end"]
    lua += ["done = function(summary, latency, requests)",
            '  io.write(string.format("JSON{\\"p50\\":%d,\\"p99\\":%d,\\"requests\\":%d,\\"non2xx\\":%d,\\"errors\\":%d}\\n",',
            "    latency:percentile(50), latency:percentile(99), summary.requests, summary.errors.status,",
            "    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))",
            "end"]
    script.write_text("\n".join(lua))
    threads = min(2, conns)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{seconds}s", "--latency", "-s", str(script), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60).stdout
    m = re.search(r"JSON(\{.*\})", out)
    if not m:
        raise SystemExit(f"wrk produced no result for {url}:\n{out}")
    r = json.loads(m.group(1))
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    r["rps"] = float(rps.group(1)) if rps else 0.0
    return r


CHAT_JSON = json.dumps({"id": "chatcmpl-b", "object": "chat.completion", "created": 0, "model": "mock-gpt",
                        "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": "Hello from the benchmark upstream. " * 8},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 64, "total_tokens": 73}})
SSE_BODY = "".join(
    "data: " + json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "mock-gpt",
                           "choices": [{"index": 0, "delta": {"content": w + " "}, "finish_reason": None}]}) + "\n\n"
    for w in ("Hello from the benchmark upstream, mail ops@example.com for help " * 4).split()) + "data: [DONE]\n\n"


HALF_LOAD_SECONDS = int(os.environ.get("BENCH_HALF_LOAD_SECONDS", "5"))
HALF_LOAD_ROUNDS = int(os.environ.get("BENCH_HALF_LOAD_ROUNDS", "3"))
PAIRS = int(os.environ.get("BENCH_PAIRS", "10"))
PAIR_SECONDS = 2
OHA = ROOT / ".tools" / "bin" / "oha"


def oha(url: str, token: str, body: bytes, rate: int) -> dict:
    """Constant-rate load (open loop, latency corrected for coordinated omission)."""
    if not OHA.exists():
        raise SystemExit(f"{OHA} is missing: run `make bench-deps`")
    out = subprocess.run(
        [str(OHA), "-z", f"{HALF_LOAD_SECONDS}s", "-q", str(rate), "--latency-correction", "--no-tui",
         "--output-format", "json", "-c", str(CONNECTIONS), "-m", "POST", "-H", "content-type: application/json",
         "-H", f"authorization: Bearer {token}", "-d", body.decode(), url],
        capture_output=True, text=True, check=True).stdout
    d = json.loads(out)
    codes = d.get("statusCodeDistribution") or {}
    served = codes.get("200", 0)
    # Requests cut off by the deadline are expected; anything else is a failure.
    errors = {k: v for k, v in (d.get("errorDistribution") or {}).items() if "deadline" not in k}
    if served < rate * HALF_LOAD_SECONDS * 0.9 or set(codes) - {"200"} or errors:
        raise SystemExit(f"constant-rate load on {url} failed: {codes} {errors}")
    return {"p99_ms": d["latencyPercentiles"]["p99"] * 1000, "p50_ms": d["latencyPercentiles"]["p50"] * 1000}


def _tool_call_response(tool: str) -> str:
    return json.dumps({"id": "chatcmpl-t", "object": "chat.completion", "created": 0, "model": "mock-gpt",
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": None, "tool_calls": [
                           {"id": "call_1", "type": "function",
                            "function": {"name": tool, "arguments": json.dumps({"city": "Paris"})}}]},
                                    "finish_reason": "tool_calls"}],
                       "usage": {"prompt_tokens": 40, "completion_tokens": 12, "total_tokens": 52}})


# Answered when the request carries `x-tools: allowed` / `x-tools: forbidden` (bench/instructions.py):
# a call of the tool the request declared, or of one it did not (which llm-warden must block).
TOOL_CALL_JSON = _tool_call_response("get_weather")
FORBIDDEN_TOOL_CALL_JSON = _tool_call_response("delete_everything")


def _json_route(header: tuple[str, str] | None, body: str, extra_headers: dict | None = None) -> dict:
    match = {"prefix": "/"}
    if header:
        match["headers"] = [{"name": header[0], "string_match": {"exact": header[1]}}]
    headers = {"content-type": "application/json", **(extra_headers or {})}
    return {"match": match, "direct_response": {"status": 200, "body": {"inline_string": body}},
            "response_headers_to_add": [{"header": {"key": k, "value": v}} for k, v in headers.items()]}


def fast_upstream(work: Path):
    """An Envoy answering with direct_response: the upstream is never the bottleneck. The
    routes other than the default answer only requests carrying a bench-specific header."""
    d = work / "upstream"
    d.mkdir()
    port = envoy_run.free_port()
    # `x-echo: 1` (a check, never a measured call): the request headers a filter set or removed,
    # echoed back as response headers.
    echo = _json_route(("x-echo", "1"), CHAT_JSON, {
        "x-seen-subject": "%REQ(x-auth-subject)%", "x-seen-authorization": "%REQ(authorization)%",
        "x-seen-calls": "%REQ(x-auth-calls)%"})
    cfg = {"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": envoy_run.free_port()}}},
           "static_resources": {"listeners": [{"name": "up", "address": {"socket_address": {
               "address": "127.0.0.1", "port_value": port}}, "filter_chains": [{"filters": [{
                   "name": "envoy.filters.network.http_connection_manager", "typed_config": {
                       "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                       "stat_prefix": "up", "route_config": {"max_direct_response_body_size_bytes": 1048576, "virtual_hosts": [{"name": "up", "domains": ["*"], "routes": [
                           {"match": {"prefix": "/", "headers": [{"name": "x-stream", "present_match": True}]},
                            "direct_response": {"status": 200, "body": {"inline_string": SSE_BODY}},
                            "response_headers_to_add": [{"header": {"key": "content-type", "value": "text/event-stream"}}]},
                           _json_route(("x-tools", "allowed"), TOOL_CALL_JSON),
                           _json_route(("x-tools", "forbidden"), FORBIDDEN_TOOL_CALL_JSON),
                           echo,
                           {"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": CHAT_JSON}},
                            "response_headers_to_add": [{"header": {"key": "content-type", "value": "application/json"}}]}]}]},
                       "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                           "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}]}}
    e = envoy_run.Envoy(cfg, d, concurrency=1)
    e.port = port
    return e


def native_filters(jwks_doc: dict, jwt_cache: bool = False) -> list:
    """Set-up 2: Envoy's jwt_authn (local JWKS) + local_ratelimit. `jwt_cache` turns on
    jwt_authn's verified-token cache (off by default), the native equivalent of ours."""
    provider = {"issuer": ISS, "audiences": ["llm-api"], "local_jwks": {"inline_string": json.dumps(jwks_doc)},
                "forward": False}
    if jwt_cache:
        provider["jwt_cache_config"] = {"jwt_cache_size": 1000}
    return [
        {"name": "envoy.filters.http.jwt_authn", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": {"bench": provider},
            "rules": [{"match": {"prefix": "/"}, "requires": {"provider_name": "bench"}}]}},
        {"name": "envoy.filters.http.local_ratelimit", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
            "stat_prefix": "bench",
            "token_bucket": {"max_tokens": 1000000000, "tokens_per_fill": 1000000000, "fill_interval": "1s"},
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}}}},
    ]


def set_ups(jwks_doc: dict) -> dict:
    """name -> (llm-warden plugin config, HTTP filters); filters None means llm-warden."""
    big_limit = {"name": "rpm", "requests": 10**9, "per": "second"}
    warden_cfg = {
        "issuers": [{"name": "b", "issuer": ISS, "audiences": ["llm-api"], "max_lifetime_s": 3600,
                     "jwks": {"inline": jwks_doc}}],
        "audit": {"log": False},
        "authorization": {"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                          "policies": {"p": {"rules": [{"name": "chat", "when": {"scopes": ["llm:chat"]},
                                                        "models": ["mock-gpt"], "limits": [big_limit]}]}}},
    }
    redact_cfg = json.loads(json.dumps(warden_cfg))
    redact_cfg["authorization"]["policies"]["p"]["redaction"] = {}
    return {
        "1 passthrough": ({}, []),
        "2 native jwt_authn+local_ratelimit": ({}, native_filters(jwks_doc)),
        "3 llm-warden auth+scope+limit": (warden_cfg, None),
        "4 llm-warden +stream redaction": (redact_cfg, None),
    }


def main():
    work = Path(tempfile.mkdtemp())
    key = tokens.Key("ES256")
    jwks_doc = tokens.jwks(key)
    token = tokens.mint(key, tokens.claims(ISS, ttl=3000, sub="bench", scope="llm:chat"))
    upstream = fast_upstream(work)
    up = ("127.0.0.1", upstream.port)
    setups = set_ups(jwks_doc)
    envoys = {}
    for i, (name, (cfg, filters)) in enumerate(setups.items()):
        d = work / f"e{i}"
        d.mkdir()
        b = envoy_run.bootstrap(cfg, envoy_run.free_port(), envoy_run.free_port(), up, None, filters=filters)
        envoys[name] = envoy_run.Envoy(b, d, concurrency=1)
    chat = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()
    stream = json.dumps({"model": "mock-gpt", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
    bodies = {"1 passthrough": chat, "2 native jwt_authn+local_ratelimit": chat,
              "3 llm-warden auth+scope+limit": chat, "4 llm-warden +stream redaction": stream}
    try:
        # Every set-up must serve 200s before anything is measured.
        for name, e in envoys.items():
            hdrs = {"content-type": "application/json", "authorization": f"Bearer {token}"}
            if name.startswith("4"):
                hdrs["x-stream"] = "1"
            req = urllib.request.Request(f"http://127.0.0.1:{e.port}/v1/chat/completions", data=bodies[name],
                                         headers=hdrs)
            with urllib.request.urlopen(req, timeout=10) as r:
                text = r.read()
                if r.status != 200:
                    raise SystemExit(f"set-up {name!r} answered {r.status}")
            if name.startswith("4") and b"[REDACTED:email]" not in text:
                raise SystemExit("set-up 4 does not redact: the comparison would be meaningless")

        def measure(name: str, seconds: int) -> dict:
            """One wrk run against a set-up, with the Envoy's CPU per request; fails loudly."""
            e = envoys[name]
            c0 = cpu_seconds(e.proc.pid)
            extra = {"x-stream": "1"} if name.startswith("4") else None
            r = wrk(f"http://127.0.0.1:{e.port}/v1/chat/completions", token, bodies[name], extra, seconds=seconds)
            if r["non2xx"] or r["errors"] or r["requests"] == 0:
                raise SystemExit(f"set-up {name!r} failed under load: {r}")
            r["cpu_us_per_req"] = (cpu_seconds(e.proc.pid) - c0) / r["requests"] * 1e6
            return r

        results = {n: [] for n in envoys}
        names = list(envoys)
        for round_no in range(ROUNDS):
            # Each round starts with a different set-up: no set-up always runs first or last
            # (on a shared 2-core VM, position in the round biased the figures).
            for name in names[round_no % len(names):] + names[:round_no % len(names)]:
                results[name].append(measure(name, DURATION))
        med = {}
        print(f"\nEnvoy 1.40, 1 worker each, wrk -t2 -c{CONNECTIONS}, {ROUNDS} rounds x {DURATION}s, median of rounds")
        print(f"{'set-up':<38} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'CPU us/req':>11} {'CPU range':>12}")
        for name, rs in results.items():
            pick = sorted(rs, key=lambda x: x["rps"])[len(rs) // 2]
            med[name] = pick
            cpus = [x["cpu_us_per_req"] for x in rs]
            print(f"{name:<38} {pick['rps']:>9.0f} {pick['p50'] / 1000:>8.2f} {pick['p99'] / 1000:>8.2f} "
                  f"{pick['cpu_us_per_req']:>11.1f} {min(cpus):>5.0f}-{max(cpus):<6.0f}")
        n = list(med)
        print(f"ratio 3/2 req/s {med[n[2]]['rps'] / med[n[1]]['rps']:.2f}   "
              f"CPU {med[n[2]]['cpu_us_per_req'] / med[n[1]]['cpu_us_per_req']:.2f}")
        print(f"ratio 3/1 req/s {med[n[2]]['rps'] / med[n[0]]['rps']:.2f}   ratio 4/1 req/s "
              f"{med[n[3]]['rps'] / med[n[0]]['rps']:.2f}")
        # The machine's speed drifts by tens of percent over minutes (a shared VM), more than
        # the difference being measured. So 3 vs 2 is also measured in back-to-back pairs,
        # alternating which goes first, and the median of the per-pair ratios is reported.
        pair_ratios = []
        for k in range(PAIRS):
            pair = {}
            for name in (n[1], n[2]) if k % 2 == 0 else (n[2], n[1]):
                r = measure(name, PAIR_SECONDS)
                pair[name] = (r["rps"], r["cpu_us_per_req"])
            pair_ratios.append((pair[n[2]][0] / pair[n[1]][0], pair[n[2]][1] / pair[n[1]][1]))
        rps_r = sorted(x[0] for x in pair_ratios)
        cpu_r = sorted(x[1] for x in pair_ratios)
        print(f"paired 3/2 ({PAIRS} back-to-back pairs x {PAIR_SECONDS}s): req/s median {rps_r[len(rps_r) // 2]:.2f} "
              f"(range {rps_r[0]:.2f}-{rps_r[-1]:.2f}), CPU per call median {cpu_r[len(cpu_r) // 2]:.2f} "
              f"(range {cpu_r[0]:.2f}-{cpu_r[-1]:.2f})")
        # Added p99 at half load: a constant-rate client (oha, correcting for coordinated
        # omission) sends half of llm-warden's saturated req/s to set-ups 1-3 alike, in
        # rounds of alternating order; the median per set-up is reported.
        rate = max(int(med[n[2]]["rps"] / 2), 1)
        half = {name: [] for name in n[:3]}
        for k in range(HALF_LOAD_ROUNDS):
            for name in n[:3] if k % 2 == 0 else n[2::-1]:
                e = envoys[name]
                half[name].append(oha(f"http://127.0.0.1:{e.port}/v1/chat/completions", token, bodies[name],
                                      rate)["p99_ms"])
        p99 = {name: sorted(v)[len(v) // 2] for name, v in half.items()}
        base_p99 = p99[n[0]]
        print(f"p99 at half load ({rate} req/s, constant rate, {HALF_LOAD_ROUNDS} rounds x {HALF_LOAD_SECONDS}s, "
              f"{CONNECTIONS} connections, median): passthrough {base_p99:.3f} ms, native {p99[n[1]]:.3f} ms "
              f"({p99[n[1]] - base_p99:+.3f}), llm-warden {p99[n[2]]:.3f} ms ({p99[n[2]] - base_p99:+.3f})")
    finally:
        for e in envoys.values():
            e.stop()
    try:
        first_seen(work, up)
        start_and_configure(work, up, setups["3 llm-warden auth+scope+limit"][0])
    finally:
        upstream.stop()


def first_seen(work: Path, up):
    """Cost of a first-seen token per algorithm inside Envoy: token cache off, every request
    carries a token the filter has not verified before (within the run)."""
    print("\nfirst-seen tokens in Envoy (token cache off, thousands of distinct tokens, 1 worker)")
    print(f"{'algorithm':<10} {'req/s':>9} {'CPU us/req':>11} {'vs cache hit':>13}")
    rows = {}
    for alg in ("cache-hit", "RS256", "ES256", "EdDSA"):
        key = tokens.Key("ES256" if alg == "cache-hit" else alg)
        cfg = {"issuers": [{"name": "b", "issuer": ISS, "audiences": ["llm-api"], "max_lifetime_s": 3600,
                            "jwks": {"inline": tokens.jwks(key)}}],
               "audit": {"log": False},
               "token_cache": {"max_entries": 4096 if alg == "cache-hit" else 0}}
        d = work / f"alg-{alg}"
        d.mkdir()
        e = envoy_run.Envoy(envoy_run.bootstrap(cfg, envoy_run.free_port(), envoy_run.free_port(), up, None), d,
                            concurrency=1)
        try:
            n = 1 if alg == "cache-hit" else 3000
            toks = [tokens.mint(key, tokens.claims(ISS, ttl=3000, sub=f"u{i}")) for i in range(n)]
            tok_file = d / "tokens.txt"
            tok_file.write_text("\n".join(toks) + "\n")
            c0 = cpu_seconds(e.proc.pid)
            r = wrk(f"http://127.0.0.1:{e.port}/v1/chat/completions", None, b"{}", token_file=tok_file)
            cpu = (cpu_seconds(e.proc.pid) - c0) / max(r["requests"], 1) * 1e6
            if r["non2xx"] or r["requests"] == 0:
                raise SystemExit(f"first-seen {alg}: failed under load: {r}")
            rows[alg] = (r["rps"], cpu)
        finally:
            e.stop()
    hit = rows["cache-hit"][1]
    for alg, (rps, cpu) in rows.items():
        print(f"{alg:<10} {rps:>9.0f} {cpu:>11.1f} {'' if alg == 'cache-hit' else f'+{cpu - hit:.0f} us':>13}")


def start_and_configure(work: Path, up, cfg):
    """Plugin start + configure: `envoy --mode validate` (loads the module, runs on_configure)
    with the filter, minus the same without it; median of 5."""
    times = {}
    for label, c, filters in (("with", cfg, None), ("without", {}, [])):
        path = work / f"validate-{label}.json"
        path.write_text(json.dumps(envoy_run.bootstrap(c, envoy_run.free_port(), envoy_run.free_port(), up, None,
                                                       filters=filters)))
        runs = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = envoy_run.validate(path)
            runs.append(time.perf_counter() - t0)
            if r.returncode != 0:
                raise SystemExit(f"validate {label} failed: {r.stdout[-500:]}")
        times[label] = sorted(runs)[2]
    print(f"\nplugin start + configure (validate mode, median of 5): {(times['with'] - times['without']) * 1000:.0f} ms "
          f"(Envoy alone {times['without'] * 1000:.0f} ms); on_configure alone is logged by the filter as "
          f"'llm-warden VERSION: configured in N us'")


if __name__ == "__main__":
    main()
