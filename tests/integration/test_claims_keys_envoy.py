"""Claims and keys in the real Envoy (issue 13, item 8): identity claims of the wrong type,
weak RSA keys in a JWKS, and one JWKS fetch at a time while an issuer has no key set."""
import hashlib
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from conftest import ISS, request

import servers
import tokens
from cryptography.hazmat.primitives.asymmetric import rsa

REV_ISS = "https://revoking.test"
REVOKED_SUB = "12345"
REVOKED_JTI = "777"


def code_of(resp):
    return json.loads(resp.body)["error"]["code"]


# ---- identity claims must be strings ----

@pytest.fixture(scope="module")
def rev_key():
    return tokens.Key("ES256")


@pytest.fixture()
def rev_stack(stack_factory, rev_key):
    issuer = {"name": "rev", "issuer": REV_ISS, "audiences": ["llm-api"],
              "jwks": {"inline": tokens.jwks(rev_key)},
              "revoked": {"subjects": [REVOKED_SUB], "jtis": [REVOKED_JTI]}}
    return stack_factory(extra_issuers=[issuer])


def rev_token(key, **overrides):
    return tokens.mint(key, tokens.claims(REV_ISS, **overrides))


def test_numeric_sub_of_a_revoked_subject_is_refused(rev_stack, rev_key):
    assert rev_stack.call(rev_token(rev_key, sub="alice")).status == 200
    assert rev_stack.call(rev_token(rev_key, sub=REVOKED_SUB)).status == 401
    # The same subject as a JSON number: today it is not a string, so it matched no
    # revocation and got in.
    jti = uuid.uuid4().hex
    r = rev_stack.call(rev_token(rev_key, sub=int(REVOKED_SUB), jti=jti))
    assert r.status == 401, r.body
    assert code_of(r) == "invalid_token"
    assert rev_stack.record(jti)["reason"] == "bad_claim"


@pytest.mark.parametrize("claim,value", [
    ("sub", [REVOKED_SUB]), ("sub", {"id": REVOKED_SUB}), ("sub", 12.5), ("sub", True), ("sub", ""),
    ("jti", int(REVOKED_JTI)), ("azp", 7), ("client_id", ["c"]),
    ("act", {"sub": 42}), ("act", "agent"), ("act", {"sub": "a", "act": {"sub": None}}),
])
def test_identity_claims_of_the_wrong_type_are_bad_claims(rev_stack, rev_key, claim, value):
    jti = uuid.uuid4().hex
    overrides = {"jti": jti, claim: value} if claim != "jti" else {"jti": value}
    r = rev_stack.call(rev_token(rev_key, **overrides))
    assert r.status == 401, r.body
    assert code_of(r) == "invalid_token"
    if claim != "jti":
        assert rev_stack.record(jti)["reason"] == "bad_claim"


def test_non_string_iss_is_refused(rev_stack, rev_key):
    r = rev_stack.call(tokens.mint(rev_key, tokens.claims([REV_ISS])))
    assert r.status == 401 and code_of(r) == "invalid_token"


# ---- weak RSA keys in a remote JWKS ----

def _pkcs1_sha256(message: bytes, k: int) -> int:
    digest_info = bytes.fromhex("3031300d060960864801650304020105000420") + hashlib.sha256(message).digest()
    em = b"\x00\x01" + b"\xff" * (k - 3 - len(digest_info)) + b"\x00" + digest_info
    return int.from_bytes(em, "big")


class CraftedRsaKey:
    """An RS256 key from a modulus we choose (prime, with a small factor, too short), signing
    by hand: an RSA library would refuse to build such a key."""

    alg = "RS256"

    def __init__(self, kid: str, n: int, phi: int, e: int = 65537):
        self.kid, self.n, self.e = kid, n, e
        self.d = pow(e, -1, phi)

    def jwk(self, pin_alg: bool = True) -> dict:
        def b64(i):
            return tokens.b64url(i.to_bytes((i.bit_length() + 7) // 8, "big"))
        return {"kty": "RSA", "kid": self.kid, "use": "sig", "alg": "RS256", "n": b64(self.n), "e": b64(self.e)}

    def sign(self, data: bytes, alg: str | None = None) -> bytes:
        k = (self.n.bit_length() + 7) // 8
        return pow(_pkcs1_sha256(data, k), self.d, self.n).to_bytes(k, "big")


@pytest.fixture(scope="module")
def weak_keys():
    big = rsa.generate_private_key(public_exponent=65537, key_size=4096).private_numbers()
    p = big.p  # a 2048-bit prime
    normal = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    short = rsa.generate_private_key(public_exponent=65537, key_size=1024).private_numbers()
    small_factor = 65521  # the largest prime below 2^16
    n_small = small_factor * normal.p * normal.q
    return {
        "prime": CraftedRsaKey("prime-modulus", p, p - 1),
        "small_factor": CraftedRsaKey("small-factor", n_small,
                                      (small_factor - 1) * (normal.p - 1) * (normal.q - 1)),
        "short": CraftedRsaKey("rsa-1024", short.p * short.q, (short.p - 1) * (short.q - 1)),
    }


def test_weak_rsa_keys_in_a_jwks_are_skipped(stack_factory, monkeypatch, keys, weak_keys):
    s = preset_stack(stack_factory, monkeypatch, doc=tokens.jwks(keys["ES256"], *weak_keys.values()))
    assert s.call(s.token()).status == 200
    for i, (name, key) in enumerate(weak_keys.items()):
        r = s.call(tokens.mint(key, tokens.claims(ISS)))
        assert r.status == 401, f"{name}: {r.status} {r.body}"
        # Refused because the key is not in the set at all (an unverified token's record
        # names no jti, so take the latest one).
        status, record = s.access_records(wait_for=i + 2)[-1]
        assert (status, record["reason"]) == (401, "unknown_key"), name
    time.sleep(0.5)
    log = s.envoy.log()
    assert "(3 skipped)" in log, log[-3000:]
    assert "small factor" in log and "prime" in log


# ---- one JWKS fetch at a time while an issuer has no key set ----

def preset_stack(stack_factory, monkeypatch, remote_opts=None, **state):
    """A stack whose JWKS server answers as `state` says from its very first request."""
    real = servers.JwksState

    def preset(doc):
        st = real(doc)
        for k, v in state.items():
            setattr(st, k, v)
        return st
    monkeypatch.setattr(servers, "JwksState", preset)
    return stack_factory(remote_opts=remote_opts)


def cold_stack(stack_factory, monkeypatch, **state):
    return preset_stack(stack_factory, monkeypatch, {"timeout_ms": 6000, "refresh_interval_s": 60}, **state)


def burst(s, n: int):
    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(lambda _: request(s.port, s.token(), timeout=20), range(n)))


def test_cold_issuer_with_slow_jwks_fetches_once(stack_factory, monkeypatch):
    s = cold_stack(stack_factory, monkeypatch, delay=4.0)
    results = burst(s, 16)
    time.sleep(0.5)
    # At most one fetch in flight across requests and workers (the first request's, or the
    # background tick's); every other request is told to retry instead of starting its own.
    assert s.jwks_state.hits <= 1, f"{s.jwks_state.hits} JWKS fetches for 16 requests"
    refused = [r for r in results if r.status == 503]
    assert all(code_of(r) == "auth_unavailable" and "retry-after" in r.headers for r in refused)
    assert all(r.status in (200, 503) for r in results)
    # Once the one fetch lands, the issuer serves.
    s.jwks_state.delay = 0
    deadline = time.time() + 10
    while s.call(s.token()).status != 200:
        assert time.time() < deadline, "issuer never became usable"
        time.sleep(0.5)


def test_cold_issuer_with_failing_jwks_backs_off(stack_factory, monkeypatch):
    s = cold_stack(stack_factory, monkeypatch, status=503)
    results = []
    t0 = time.time()
    for _ in range(3):  # three bursts within about 1.5 s
        results += burst(s, 10)
        time.sleep(0.3)
    elapsed = time.time() - t0
    assert all(r.status == 503 and code_of(r) == "auth_unavailable" for r in results)
    # Backoff after each failure (1 s, doubling): a handful of fetches, not one per request.
    assert s.jwks_state.hits <= 3, f"{s.jwks_state.hits} JWKS fetches for 30 requests in {elapsed:.1f} s"
    # The JWKS comes back: within the (bounded) backoff the issuer serves again.
    s.jwks_state.status = 200
    deadline = time.time() + 10
    while s.call(s.token()).status != 200:
        assert time.time() < deadline, "issuer never recovered"
        time.sleep(0.5)
