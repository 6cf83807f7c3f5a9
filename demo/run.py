"""`make run`: Envoy on 127.0.0.1:10000 with llm-warden, a mock OpenAI-compatible LLM (or
your own model server via UPSTREAM=host:port) and a local JWKS endpoint. Mints demo tokens,
shows 401/200/401 live, then keeps running and prints each audit record as it happens."""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers  # noqa: E402
import tokens  # noqa: E402
from envoy_run import ENVOY, ROOT, WASM  # noqa: E402

ISSUER = "https://demo.llm-warden.local"
LISTEN = "http://127.0.0.1:10000"
DEMO_UPSTREAM = ("127.0.0.1", 18080)
JWKS_PORT = 18081
RUN = ROOT / "run"
BOLD, DIM, GREEN, RED, RESET = ("\033[1m", "\033[2m", "\033[32m", "\033[31m", "\033[0m") if sys.stdout.isatty() \
    else ("", "", "", "", "")


def upstream_from_env() -> tuple[str, int] | None:
    value = os.environ.get("UPSTREAM", "").strip()
    if not value:
        return None
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        sys.exit(f"UPSTREAM must be host:port (got {value!r})")
    return host, int(port)


def post(token: str | None, body: dict) -> tuple[int, str]:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{LISTEN}/v1/chat/completions", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read().decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")
    except OSError as e:
        return 0, str(e)


def wait_ready(proc: subprocess.Popen, log: Path):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"Envoy exited ({proc.returncode}); see {log}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen("http://127.0.0.1:9901/ready", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"Envoy did not become ready; see {log}")


def main():
    if not WASM.exists():
        sys.exit("llm_warden.wasm is missing: run `make run`, which builds it first.")
    RUN.mkdir(exist_ok=True)
    os.chdir(ROOT)
    upstream = upstream_from_env()
    started = []
    if upstream is None:
        started.append(servers.start_mock_llm(DEMO_UPSTREAM[1]))
        upstream_desc = f"mock OpenAI-compatible LLM on {DEMO_UPSTREAM[0]}:{DEMO_UPSTREAM[1]}"
        model = "mock-gpt"
    else:
        upstream_desc = f"your model server at {upstream[0]}:{upstream[1]}"
        model = os.environ.get("MODEL", "your-model")

    key = tokens.Key("ES256", kid="demo-es256")
    started.append(servers.start_jwks(servers.JwksState(tokens.jwks(key)), JWKS_PORT))

    config = (ROOT / "envoy" / "demo.yaml").read_text()
    if upstream:
        config = config.replace("{address: 127.0.0.1, port_value: 18080}",
                                f"{{address: {upstream[0]}, port_value: {upstream[1]}}}")
    config_path = RUN / "envoy.yaml"
    config_path.write_text(config)
    log_path = RUN / "envoy.log"
    log = open(log_path, "wb")
    envoy = subprocess.Popen([str(ENVOY), "-c", str(config_path), "--base-id", "4242", "--concurrency", "2",
                              "--log-level", "warn", "--component-log-level", "wasm:info"],
                             stdout=log, stderr=subprocess.STDOUT)

    def stop(*_):
        envoy.terminate()
        for s in started:
            s.stop()
        print("\nstopped.")
        sys.exit(0)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    wait_ready(envoy, log_path)

    now = int(time.time())
    token = tokens.mint(key, tokens.claims(ISSUER, sub="demo-user", ttl=900, azp="demo-cli", scope="chat"))
    expired = tokens.mint(key, tokens.claims(ISSUER, sub="demo-user", now=now - 1200, ttl=600))
    (RUN / "token").write_text(token + "\n")
    (RUN / "expired-token").write_text(expired + "\n")
    body = {"model": model, "messages": [{"role": "user", "content": "Say hello."}]}

    print(f"{BOLD}llm-warden demo{RESET}: Envoy on {LISTEN} -> {upstream_desc}")
    print(f"{DIM}JWKS on 127.0.0.1:{JWKS_PORT}, Envoy log in {log_path}{RESET}\n")
    for label, tok in (("no token", None), ("valid token", token), ("expired token", expired)):
        status, text = post(tok, body)
        colour = GREEN if status == 200 else RED
        print(f"{BOLD}{label:>14}{RESET} -> {colour}{status}{RESET}  {text[:160]}")

    payload = json.dumps(body)
    stream_payload = json.dumps({**body, "stream": True})
    print(f"""
{BOLD}Try it yourself{RESET} (the demo token is valid for 15 minutes):
  export TOKEN=$(cat run/token)
  curl -i {LISTEN}/v1/chat/completions -H 'content-type: application/json' -d '{payload}'
  curl -i {LISTEN}/v1/chat/completions -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{payload}'
  curl -N {LISTEN}/v1/chat/completions -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{stream_payload}'
  curl -i {LISTEN}/v1/chat/completions -H "authorization: Bearer $(cat run/expired-token)" -H 'content-type: application/json' -d '{payload}'

{BOLD}Audit records{RESET} appear below as calls arrive. Ctrl-C stops everything.
""", flush=True)

    # Follow Envoy's log and show the audit records live.
    with open(log_path, "rb") as f:
        while True:
            line = f.readline()
            if not line:
                if envoy.poll() is not None:
                    print(f"Envoy exited ({envoy.returncode}); see {log_path}")
                    stop()
                time.sleep(0.2)
                continue
            text = line.decode(errors="replace")
            if "llm-warden-audit " in text:
                print("audit " + text.split("llm-warden-audit ", 1)[1].rstrip(), flush=True)


if __name__ == "__main__":
    main()
