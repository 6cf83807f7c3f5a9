"""Revocation that reaches live connections. An LDS update leaves kept-alive HTTP/1.1 and
HTTP/2 connections on the old filter config until Envoy drains them (600 s by default); the
filter config delivered through ECDS (extension config discovery) applies to the next
request on every existing connection. Here ECDS is file-based, as a control plane would
push it; the same test with the LDS recipe fails on its first kept-alive assertion."""
import http.client
import json
import os
import socket
import time

import h2.config
import h2.connection
import h2.events

import envoy_run
import servers
import tokens
from conftest import ISS

FILTER = "llm-warden"


def write_ecds(path, plugin_config):
    """Atomically replaces the file-based ECDS resource (Envoy watches the directory)."""
    wasm = envoy_run.wasm_filter(plugin_config)["typed_config"]
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"resources": [{
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": FILTER, "typed_config": wasm}]}))
    os.replace(tmp, path)


def ecds_bootstrap(plugin_config, port, upstream_port, ecds_path):
    config = envoy_run.bootstrap(plugin_config, port, envoy_run.free_port(), ("127.0.0.1", upstream_port), None)
    hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0] = {"name": FILTER, "config_discovery": {
        "config_source": {"resource_api_version": "V3", "path_config_source": {
            "path": str(ecds_path), "watched_directory": {"path": str(ecds_path.parent)}}},
        "type_urls": ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]}}
    config["node"] = {"id": "llm-warden-test", "cluster": "llm-warden-test"}
    return config


class H2Client:
    """One HTTP/2 (prior knowledge) connection, reused for every request."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.sock.sendall(self.conn.data_to_send())

    def post(self, token):
        sid = self.conn.get_next_available_stream_id()
        body = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}).encode()
        self.conn.send_headers(sid, [(":method", "POST"), (":path", "/v1/chat/completions"), (":scheme", "http"),
                                     (":authority", "llm"), ("authorization", f"Bearer {token}"),
                                     ("content-type", "application/json")])
        self.conn.send_data(sid, body, end_stream=True)
        self.sock.sendall(self.conn.data_to_send())
        status = None
        while True:
            data = self.sock.recv(65536)
            assert data, "connection closed"
            for ev in self.conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[":status"])
                elif isinstance(ev, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    self.sock.sendall(self.conn.data_to_send())
                    return status
            self.sock.sendall(self.conn.data_to_send())

    def close(self):
        self.sock.close()


class H1Client:
    """One kept-alive HTTP/1.1 connection."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        self.conn.connect()
        self.sock = self.conn.sock

    def post(self, token):
        """The status, sent on the connection this client opened first (Envoy may close it
        after a refusal, as HTTP/1.1 allows; later calls then fail loudly)."""
        assert self.conn.sock is self.sock, "not the kept-alive connection any more"
        body = json.dumps({"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})
        self.conn.request("POST", "/v1/chat/completions", body=body,
                          headers={"authorization": f"Bearer {token}", "content-type": "application/json"})
        r = self.conn.getresponse()
        r.read()
        return r.status

    def close(self):
        self.conn.close()


def test_ecds_revocation_applies_to_the_next_request_on_kept_alive_connections(tmp_path):
    key = tokens.Key("ES256")
    upstream = servers.start_mock_llm()
    issuer = {"name": "idp", "issuer": ISS, "audiences": ["llm-api"], "jwks": {"inline": tokens.jwks(key)}}
    ecds = tmp_path / "ecds" / "filter.json"
    ecds.parent.mkdir()
    write_ecds(ecds, {"issuers": [issuer]})
    port = envoy_run.free_port()
    envoy = envoy_run.Envoy(ecds_bootstrap({"issuers": [issuer]}, port, upstream.port, ecds), tmp_path)
    clients = []
    try:
        leaked = tokens.mint(key, tokens.claims(ISS, sub="alice", jti="leaked-jti"))
        mallory = tokens.mint(key, tokens.claims(ISS, sub="mallory"))
        innocent = tokens.mint(key, tokens.claims(ISS, sub="bob"))
        clients = [H1Client(port), H2Client(port)]
        for c in clients:
            for t in (leaked, mallory, innocent):
                assert c.post(t) == 200  # cached as verified, on this very connection
        write_ecds(ecds, {"issuers": [{**issuer, "revoked": {"jtis": ["leaked-jti"], "subjects": ["mallory"]}}]})
        # The update lands within the file watch's latency: poll with the innocent token on the
        # kept-alive connections until a revoked one is refused there.
        h1, h2c = clients
        deadline = time.time() + 15
        while h2c.post(leaked) != 401:
            assert time.time() < deadline, "revocation never reached the kept-alive HTTP/2 connection"
            assert h2c.post(innocent) == 200
            time.sleep(0.2)
        # HTTP/2: every later request on the same connection.
        assert h2c.post(mallory) == 401
        assert h2c.post(innocent) == 200
        # HTTP/1.1: the connection opened before the update is still the one used.
        assert h1.post(innocent) == 200
        assert h1.post(leaked) == 401
        for t, want in ((mallory, 401), (innocent, 200)):
            c = H1Client(port)
            clients.append(c)
            assert c.post(t) == want
        assert envoy.proc.poll() is None  # same Envoy process: no restart
    finally:
        for c in clients:
            c.close()
        envoy.stop()
        upstream.stop()
        envoy.assert_no_trap()
