"""Mock LLM (:18080) and JWKS (:18081) for envoy/docker-compose.yaml; writes a demo token."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import servers  # noqa: E402
import tokens  # noqa: E402

key = tokens.Key("ES256", kid="compose-es256")
servers.Server(servers.MockLLM, 18080, host="0.0.0.0")
servers.Server(servers._jwks_handler(servers.JwksState(tokens.jwks(key))), 18081, host="0.0.0.0")
token = tokens.mint(key, tokens.claims("https://demo.llm-warden.local", ttl=900))
Path("run").mkdir(exist_ok=True)
Path("run/token").write_text(token + "\n")
print("demo token (15 min) written to run/token:", token, flush=True)
while True:
    time.sleep(3600)
