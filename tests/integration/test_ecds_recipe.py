"""The shipped ECDS recipe in the real Envoy: envoy/envoy.yaml's filter entry (config_discovery
from a watched file, no default_config) and envoy/llm-warden-filter.yaml's resource, with only
the paths and the plugin configuration (inline test keys) swapped. A revocation made the way
the recipe documents (write the new file next to it, `mv` it into place) applies to the next
request on kept-alive HTTP/1.1 and HTTP/2 connections (as tests/integration/
test_revocation_ecds.py shows for ECDS in general), and the remaining window is measured: a
request already in flight when the update lands keeps the config it started with."""
import copy
import json
import os
import socket
import time
from pathlib import Path

from conftest import ISS
from ruamel.yaml import YAML
from test_revocation_ecds import H1Client, H2Client

import envoy_run
import servers
import tokens

ROOT = Path(__file__).resolve().parents[2]


def _shipped():
    bootstrap = YAML(typ="safe").load((ROOT / "envoy" / "envoy.yaml").read_text())
    hcm = bootstrap["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    entry = next(f for f in hcm["http_filters"] if "config_discovery" in f)
    resource = YAML(typ="safe").load((ROOT / "envoy" / "llm-warden-filter.yaml").read_text())
    return entry, resource


class Recipe:
    def __init__(self, tmp_path: Path, plugin_config: dict):
        entry, self.resource = _shipped()
        self.entry = copy.deepcopy(entry)
        source = self.entry["config_discovery"]["config_source"]["path_config_source"]
        self.dir = tmp_path / "filters"
        self.dir.mkdir()
        self.file = self.dir / Path(source["path"]).name
        source["path"] = str(self.file)
        source["watched_directory"]["path"] = str(self.dir)
        self.write(plugin_config)
        self.upstream = servers.start_mock_llm()
        b = envoy_run.bootstrap(plugin_config, envoy_run.free_port(), envoy_run.free_port(),
                                ("127.0.0.1", self.upstream.port), None)
        hcm = b["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["http_filters"][0] = self.entry
        b["node"] = {"id": "llm-warden-test", "cluster": "llm-warden-test"}
        self.envoy = envoy_run.Envoy(b, tmp_path, env={"WARDEN_CLIENT_SECRET": "unused-here"})
        self.port = self.envoy.port

    def write(self, plugin_config: dict):
        """As the recipe says: the new version next to the file, then a move into place."""
        resource = copy.deepcopy(self.resource)
        config = resource["resources"][0]["typed_config"]["config"]
        config["vm_config"]["code"]["local"]["filename"] = str(envoy_run.WASM)
        config["configuration"]["value"] = json.dumps(plugin_config)
        tmp = self.dir / (".new-" + self.file.name)
        tmp.write_text(json.dumps(resource))  # JSON is YAML: the .yaml name stays as shipped
        os.replace(tmp, self.file)

    def stop(self):
        self.envoy.stop()
        self.upstream.stop()
        self.envoy.assert_no_trap()


def test_revocation_through_the_shipped_ecds_recipe_reaches_live_connections(tmp_path):
    key = tokens.Key("ES256")
    issuer = {"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}
    recipe = Recipe(tmp_path, {"issuers": [issuer]})
    clients = []
    try:
        leaked = tokens.mint(key, tokens.claims(ISS, sub="alice", jti="leaked-jti"))
        innocent = tokens.mint(key, tokens.claims(ISS, sub="bob"))
        h1, h2 = H1Client(recipe.port), H2Client(recipe.port)
        clients += [h1, h2]
        for c in clients:
            assert c.post(leaked) == 200 and c.post(innocent) == 200

        # A request in flight: headers sent (and decided on), body still to come.
        body = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()
        in_flight = socket.create_connection(("127.0.0.1", recipe.port), timeout=10)
        in_flight.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: llm\r\ncontent-type: application/json\r\n"
                          + f"authorization: Bearer {leaked}\r\ncontent-length: {len(body)}\r\n\r\n".encode())
        time.sleep(0.3)

        moved = time.time()
        recipe.write({"issuers": [{**issuer, "revoked": {"jtis": ["leaked-jti"]}}]})
        while h2.post(leaked) != 401:
            assert time.time() - moved < 15, "revocation never reached the kept-alive HTTP/2 connection"
            time.sleep(0.05)
        latency = time.time() - moved
        assert h2.post(innocent) == 200
        assert h1.post(innocent) == 200  # the connection opened before the update ...
        assert h1.post(leaked) == 401  # ... (Envoy may close an HTTP/1.1 connection after a 401)
        assert latency < 5, latency

        # The in-flight request finishes under the config it started with: the remaining window.
        in_flight.sendall(body)
        head = in_flight.recv(65536).split(b"\r\n", 1)[0]
        in_flight.close()
        assert head == b"HTTP/1.1 200 OK", head
        stats = envoy_run_stats(recipe.envoy)
        assert stats["extension_config_discovery.http_filter.llm-warden.update_success"] >= 2
        assert stats["extension_config_discovery.http_filter.llm-warden.update_rejected"] == 0
        print(f"revocation reached live connections {latency * 1000:.0f} ms after the move")
    finally:
        for c in clients:
            c.close()
        recipe.stop()


def test_a_rejected_update_keeps_the_previous_config_and_is_counted(tmp_path):
    """A config on_configure refuses is NACKed: the old one stays (so a revocation inside it
    does not apply); operators alert on update_rejected."""
    key = tokens.Key("ES256")
    issuer = {"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}
    recipe = Recipe(tmp_path, {"issuers": [issuer]})
    try:
        token = tokens.mint(key, tokens.claims(ISS, sub="alice"))
        h1 = H1Client(recipe.port)
        assert h1.post(token) == 200
        recipe.write({"issuers": [{**issuer, "revoked": {"subjects": ["alice"]}, "typo": True}]})
        deadline = time.time() + 10
        while envoy_run_stats(recipe.envoy)["extension_config_discovery.http_filter.llm-warden.update_rejected"] < 1:
            assert time.time() < deadline, "update never attempted"
            time.sleep(0.1)
        assert h1.post(token) == 200  # still the previous config
        h1.close()
    finally:
        recipe.stop()


def envoy_run_stats(envoy) -> dict:
    import urllib.request
    with urllib.request.urlopen(f"http://127.0.0.1:{envoy.admin_port}/stats", timeout=5) as r:
        out = {}
        for line in r.read().decode().splitlines():
            name, _, value = line.partition(": ")
            if value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out
