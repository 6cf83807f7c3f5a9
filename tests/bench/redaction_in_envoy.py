"""Redaction throughput inside Envoy (part of `make bench`): 1 MiB text responses through
Envoy with llm-warden redacting them vs the same Envoy route without the filter. Prints
MB/s and the ratio; asserts nothing."""
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))
import envoy_run  # noqa: E402
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
                          "policies": {"p": {"rules": [{"name": "all", "models": ["*"]}], "redaction": {}}}},
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

    def run(envoy, auth: bool) -> float:
        headers = {"authorization": f"Bearer {token}"} if auth else {}
        best = 0.0
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            total = 0
            for _ in range(PER_ROUND):
                req = urllib.request.Request(f"http://127.0.0.1:{envoy.port}/big?size={SIZE}", headers=headers)
                with urllib.request.urlopen(req, timeout=60) as r:
                    body = r.read()
                total += len(body)
            best = max(best, total / (time.perf_counter() - t0) / 1e6)
        return best

    try:
        check = urllib.request.urlopen(urllib.request.Request(
            f"http://127.0.0.1:{with_filter.port}/big?size=4096", headers={"authorization": f"Bearer {token}"})).read()
        assert b"[REDACTED:email]" in check and b"jane.doe" not in check, "redaction not active"
        base = run(passthrough, False)
        red = run(with_filter, True)
        print(f"llm-warden redaction inside Envoy 1.40 (1 MiB text responses, 1 worker, {PER_ROUND}x{ROUNDS} requests)")
        print(f"{'passthrough (router only)':<40} {base:>8.1f} MB/s")
        print(f"{'llm-warden redaction (all detectors)':<40} {red:>8.1f} MB/s")
        print(f"{'ratio redaction/passthrough':<40} {red / base:>8.2f}")
    finally:
        with_filter.stop()
        passthrough.stop()
        upstream.stop()


if __name__ == "__main__":
    main()
