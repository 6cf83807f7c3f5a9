"""Signing keys and JWT minting for the demo and the integration tests.

Keys are generated at run time (no key material is checked in). Besides honest tokens it can
mint the hostile ones the tests need (alg none, forged headers), so it deliberately does not
use a JWT library that would refuse to.
"""
import base64
import json
import time
import uuid

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n: int, length: int | None = None) -> bytes:
    length = length or (n.bit_length() + 7) // 8
    return n.to_bytes(length, "big")


_HASH = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}


class Key:
    """A signing key of one algorithm family with its public JWK."""

    def __init__(self, alg: str, kid: str | None = None):
        self.alg = alg
        self.kid = kid if kid is not None else f"{alg.lower()}-{uuid.uuid4().hex[:8]}"
        if alg[:2] in ("RS", "PS"):
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        elif alg == "ES256":
            self.private = ec.generate_private_key(ec.SECP256R1())
        elif alg == "ES384":
            self.private = ec.generate_private_key(ec.SECP384R1())
        elif alg == "EdDSA":
            self.private = ed25519.Ed25519PrivateKey.generate()
        else:
            raise ValueError(alg)

    def jwk(self, pin_alg: bool = True) -> dict:
        if self.alg[:2] in ("RS", "PS"):
            pub = self.private.public_key().public_numbers()
            jwk = {"kty": "RSA", "n": b64url(_int_bytes(pub.n)), "e": b64url(_int_bytes(pub.e))}
        elif self.alg in ("ES256", "ES384"):
            pub = self.private.public_key().public_numbers()
            size = 32 if self.alg == "ES256" else 48
            crv = "P-256" if self.alg == "ES256" else "P-384"
            jwk = {"kty": "EC", "crv": crv, "x": b64url(_int_bytes(pub.x, size)),
                   "y": b64url(_int_bytes(pub.y, size))}
        else:
            from cryptography.hazmat.primitives import serialization
            raw = self.private.public_key().public_bytes(serialization.Encoding.Raw,
                                                         serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64url(raw)}
        jwk["kid"] = self.kid
        jwk["use"] = "sig"
        if pin_alg:
            jwk["alg"] = self.alg
        return jwk

    def sign(self, data: bytes, alg: str | None = None) -> bytes:
        alg = alg or self.alg
        bits = alg[2:]
        if alg.startswith("RS"):
            return self.private.sign(data, padding.PKCS1v15(), _HASH[bits]())
        if alg.startswith("PS"):
            h = _HASH[bits]()
            return self.private.sign(data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h)
        if alg in ("ES256", "ES384"):
            h = _HASH[bits]()
            r, s = decode_dss_signature(self.private.sign(data, ec.ECDSA(h)))
            size = 32 if alg == "ES256" else 48
            return _int_bytes(r, size) + _int_bytes(s, size)
        if alg == "EdDSA":
            return self.private.sign(data)
        raise ValueError(alg)


def jwks(*keys: Key) -> dict:
    return {"keys": [k.jwk() for k in keys]}


def claims(iss: str, aud="llm-api", sub="demo-user", ttl: int = 300, now: int | None = None, **extra) -> dict:
    now = int(time.time()) if now is None else now
    c = {"iss": iss, "aud": aud, "sub": sub, "iat": now, "exp": now + ttl, "jti": uuid.uuid4().hex}
    c.update(extra)
    return {k: v for k, v in c.items() if v is not None}


def encode(header: dict, payload: dict) -> str:
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    return f"{h}.{p}"


def mint(key: Key, payload: dict, alg: str | None = None, kid: str | None = "default", **header_extra) -> str:
    """A signed token. kid="default" uses the key's kid, None omits it."""
    header = {"alg": alg or key.alg, "typ": "JWT"}
    if kid == "default":
        header["kid"] = key.kid
    elif kid is not None:
        header["kid"] = kid
    header.update(header_extra)
    signing_input = encode(header, payload)
    return f"{signing_input}.{b64url(key.sign(signing_input.encode(), alg))}"


def mint_hmac(secret: bytes, payload: dict, alg: str = "HS256", **header_extra) -> str:
    header = {"alg": alg, "typ": "JWT", **header_extra}
    signing_input = encode(header, payload)
    mac = hmac.HMAC(secret, _HASH[alg[2:]]())
    mac.update(signing_input.encode())
    return f"{signing_input}.{b64url(mac.finalize())}"


def mint_unsigned(payload: dict, alg: str = "none") -> str:
    return encode({"alg": alg, "typ": "JWT"}, payload) + "."
