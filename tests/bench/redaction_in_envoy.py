"""Redaction throughput inside Envoy (part of `make bench`): 1 MiB text responses through
Envoy with llm-warden redacting them vs the same Envoy route without the filter. Prints
MB/s seen by the client, MB per second of Envoy CPU (the "per core" figure: the client and
upstream share this machine's cores), and the ratio; asserts nothing, but fails loudly when
a set-up serves nothing."""
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import envoy_run  # noqa: E402
from envoy_bench import cpu_seconds  # noqa: E402
import servers  # noqa: E402
import tokens  # noqa: E402

ISS = "https://bench.local"
SIZE = 1 << 20
ROUNDS = 3
PER_ROUND = 20


def main():
    key = tokens.Key("ES256")
    upstream = servers.start_mock_llm()
    plugin = {
        "issuers": [{"name": "b", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}],
        "authorization": {"routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
                          "policies": {"p": {"rules": [{"name": "all", "models": ["*"], "actions": ["*", "other"]}],
                                                "redaction": {}}}},
    }
    work = Path(tempfile.mkdtemp())
    (work / "with").mkdir()
    (work / "without").mkdir()
    with_filter = envoy_run.Envoy(envoy_run.bootstrap(plugin, envoy_run.free_port(), envoy_run.free_port(),
                                                      ("127.0.0.1", upstream.port), None), work / "with", concurrency=1)
    router_only = envoy_run.bootstrap({}, envoy_run.free_port(), envoy_run.free_port(), ("127.0.0.1", upstream.port),
                                      None, filters=[])
    passthrough = envoy_run.Envoy(router_only, work / "without", concurrency=1)
    token = tokens.mint(key, tokens.claims(ISS, ttl=600))

    def run(envoy, auth: bool) -> tuple[float, float]:
        """Best round: (MB/s at the client, MB per Envoy CPU second)."""
        headers = {"authorization": f"Bearer {token}"} if auth else {}
        best = (0.0, 0.0)
        for _ in range(ROUNDS):
            t0, c0 = time.perf_counter(), cpu_seconds(envoy.proc.pid)
            total = 0
            for _ in range(PER_ROUND):
                req = urllib.request.Request(f"http://127.0.0.1:{envoy.port}/big?size={SIZE}", headers=headers)
                with urllib.request.urlopen(req, timeout=60) as r:
                    body = r.read()
                # Redaction shortens the body a little; a much shorter one was not served.
                if len(body) < SIZE * 9 // 10:
                    raise SystemExit(f"short body ({len(body)} bytes): the set-up does not serve the benchmark")
                total += SIZE
            wall, cpu = time.perf_counter() - t0, cpu_seconds(envoy.proc.pid) - c0
            best = max(best, (total / wall / 1e6, total / max(cpu, 1e-6) / 1e6))
        return best

    try:
        check = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{with_filter.port}/big?size=4096", headers={"authorization": f"Bearer {token}"})).read()
        assert b"[REDACTED:email]" in check and b"jane.doe" not in check, "redaction not active"
        base = run(passthrough, False)
        red = run(with_filter, True)
        print(f"llm-warden redaction inside Envoy 1.40 (1 MiB text responses, 1 worker, {PER_ROUND}x{ROUNDS} requests)")
        print(f"{'set-up':<40} {'client MB/s':>12} {'MB per Envoy CPU s':>19}")
        print(f"{'passthrough (router only)':<40} {base[0]:>12.1f} {base[1]:>19.1f}")
        print(f"{'llm-warden redaction (all detectors)':<40} {red[0]:>12.1f} {red[1]:>19.1f}")
        print(f"{'ratio redaction/passthrough':<40} {red[0] / base[0]:>12.2f} {red[1] / base[1]:>19.2f}")
    finally:
        with_filter.stop()
        passthrough.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
