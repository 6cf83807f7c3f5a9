"""Issue 15: the JWKS cluster must verify the IdP's name, not only its CA. The test makes its
own CA and two server certificates from it, one for the IdP's name and one for another host,
and serves a JWKS over HTTPS (Python ssl) on 127.0.0.1. Envoy's JWKS cluster uses TLS exactly
as the shipped envoy/envoy.yaml does (its `spire_jwks` transport socket, with only the CA file
swapped for the test CA) and the issuer exactly as envoy/llm-warden-filter.yaml has it.

This file reproduces the attack: without the SAN matcher (envoy.yaml before issue 15), the
wrong-name certificate with an attacker's JWKS is accepted and a forged workload token gets
200; with the shipped recipe it is refused, while the genuine IdP's token gets 200."""
import copy
import datetime
import json
import ssl
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from ruamel.yaml import YAML

import envoy_run
import servers
import tokens

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = "spire_jwks"
ATTACKER_HOST = "attacker.example.com"


def _shipped():
    """The spire_jwks transport socket from envoy.yaml and the issuer using it from the ECDS
    filter file, as shipped."""
    bootstrap = YAML(typ="safe").load((ROOT / "envoy" / "envoy.yaml").read_text())
    cluster = next(c for c in bootstrap["static_resources"]["clusters"] if c["name"] == CLUSTER)
    ecds = YAML(typ="safe").load((ROOT / "envoy" / "llm-warden-filter.yaml").read_text())
    plugin = json.loads(ecds["resources"][0]["typed_config"]["config"]["configuration"]["value"])
    issuer = next(i for i in plugin["issuers"] if i["jwks"].get("remote", {}).get("cluster") == CLUSTER)
    return cluster["transport_socket"], issuer


TRANSPORT_SOCKET, ISSUER = _shipped()
IDP_HOST = TRANSPORT_SOCKET["typed_config"]["sni"]


class Pki:
    """A CA and server certificates it issues, written as PEM files."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "llm-warden test CA")])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.name = name
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(minutes=5))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                                  content_commitment=False, key_encipherment=False,
                                                  data_encipherment=False, key_agreement=False,
                                                  encipher_only=False, decipher_only=False), critical=True)
                     .sign(self.key, hashes.SHA256()))
        self.ca_file = directory / "ca.pem"
        self.ca_file.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))

    def server_cert(self, host: str) -> tuple[Path, Path]:
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                .issuer_name(self.name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(self.key, hashes.SHA256()))
        cert_file, key_file = self.dir / f"{host}.pem", self.dir / f"{host}.key"
        cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return cert_file, key_file


class HttpsJwks:
    """A JWKS server on 127.0.0.1 presenting the given certificate. Handshakes run in the
    handler thread, so a client refusing the certificate is counted, not fatal."""

    def __init__(self, cert_file: Path, key_file: Path, doc: dict):
        self.state = servers.JwksState(doc)
        self.handshake_failures = 0
        self.sni = []  # server names the clients asked for
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert_file, key_file)
        context.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
        outer = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def finish_request(self, sock, address):
                try:
                    tls = context.wrap_socket(sock, server_side=True)
                except (ssl.SSLError, OSError):
                    outer.handshake_failures += 1
                    return
                self.RequestHandlerClass(tls, address, self)

        self.httpd = Server(("127.0.0.1", 0), servers._jwks_handler(self.state))
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _tls_socket(ca_file: Path, san_matcher: bool) -> dict:
    ts = copy.deepcopy(TRANSPORT_SOCKET)
    validation = ts["typed_config"]["common_tls_context"]["validation_context"]
    validation["trusted_ca"] = {"filename": str(ca_file)}  # the one thing the test changes
    if not san_matcher:
        del validation["match_typed_subject_alt_names"]  # envoy.yaml before issue 15
    return ts


@pytest.fixture()
def idp(tmp_path):
    """Runs (wrong_or_right_name, san_matcher) setups; yields a starter and stops them all."""
    pki = Pki(tmp_path)
    genuine, attacker = tokens.Key("ES256", kid="spire-1"), tokens.Key("ES256", kid="spire-1")
    running = []

    def start(cert_host: str, san_matcher: bool = True):
        # The attacker's server, holding a certificate for another host, serves the attacker's keys.
        doc = tokens.jwks(genuine if cert_host == IDP_HOST else attacker)
        jwks = HttpsJwks(*pki.server_cert(cert_host), doc)
        upstream = servers.start_mock_llm()
        issuer = copy.deepcopy(ISSUER)
        issuer["jwks"]["remote"].update({"unknown_kid_refetch_interval_s": 1, "timeout_ms": 1000})
        config = {"issuers": [issuer]}
        b = envoy_run.bootstrap(config, envoy_run.free_port(), envoy_run.free_port(),
                                ("127.0.0.1", upstream.port), None)
        cluster = envoy_run._cluster(CLUSTER, "127.0.0.1", jwks.port)
        cluster["transport_socket"] = _tls_socket(pki.ca_file, san_matcher)
        b["static_resources"]["clusters"].append(cluster)
        d = tmp_path / f"envoy{len(running)}"
        d.mkdir()
        envoy = envoy_run.Envoy(b, d)
        running.append((envoy, jwks, upstream))
        return envoy, jwks

    yield start, genuine, attacker
    for envoy, jwks, upstream in running:
        envoy.stop()
        jwks.stop()
        upstream.stop()
        envoy.assert_no_trap()


def _token(key, sub):
    return tokens.mint(key, tokens.claims(ISSUER["issuer"], aud=ISSUER["audiences"][0], sub=sub))


ADMIN_SA = "spiffe://example.com/ns/platform/sa/admin"


def _status_eventually(port, token, want, seconds=10.0):
    """Polls until the status is `want` (the first JWKS fetch runs just after start)."""
    deadline = time.time() + seconds
    while True:
        status = request(port, token, timeout=5).status
        if status == want or time.time() > deadline:
            return status
        time.sleep(0.2)


def test_attack_reproduced_without_the_san_matcher(idp):
    """The finding: CA checked but not the name, so another host's certificate from the same
    CA serves the attacker's JWKS and their forged workload token is accepted."""
    start, _, attacker = idp
    envoy, jwks = start(ATTACKER_HOST, san_matcher=False)
    assert _status_eventually(envoy.port, _token(attacker, ADMIN_SA), 200) == 200
    assert jwks.state.hits >= 1


def test_shipped_recipe_refuses_a_certificate_for_another_host(idp):
    start, _, attacker = idp
    envoy, jwks = start(ATTACKER_HOST)
    forged = _token(attacker, ADMIN_SA)
    deadline = time.time() + 10
    while jwks.handshake_failures == 0:
        assert time.time() < deadline, "Envoy never tried the JWKS server"
        request(envoy.port, forged, timeout=5)
        time.sleep(0.2)
    # Keep trying across refetches: never a 200, and the attacker's server never served a key.
    for _ in range(10):
        assert request(envoy.port, forged, timeout=5).status in (401, 503)
        time.sleep(0.2)
    assert jwks.state.hits == 0
    assert jwks.handshake_failures >= 1


def test_shipped_recipe_accepts_the_idp_with_the_right_name(idp):
    start, genuine, attacker = idp
    envoy, jwks = start(IDP_HOST)
    assert _status_eventually(envoy.port, _token(genuine, ADMIN_SA), 200) == 200
    assert jwks.state.hits >= 1 and jwks.handshake_failures == 0
    assert set(jwks.sni) == {IDP_HOST}  # Envoy asked for the IdP by name (SNI)
    # The same forgery against the genuine IdP's keys is refused as usual.
    assert request(envoy.port, _token(attacker, ADMIN_SA)).status == 401


def test_shipped_socket_matches_exactly_the_idps_name():
    validation = TRANSPORT_SOCKET["typed_config"]["common_tls_context"]["validation_context"]
    assert [m["matcher"] for m in validation["match_typed_subject_alt_names"]] == [{"exact": IDP_HOST}]
