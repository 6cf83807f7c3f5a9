"""A small rate limit service for the global-mode tests: the real gRPC protocol
(envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit) with counters in Redis, like
envoyproxy/ratelimit (fixed windows, INCRBY + EXPIRE). Protobuf is encoded by hand from the
field numbers of rls.proto / ratelimit.proto, so no generated code is needed.

Limits are keyed by the descriptor's generic_key value; every entry of the descriptor is part
of the counter key. A descriptor hits_addend of 0 only checks ("is the budget exhausted?")."""
import subprocess
import time
from concurrent import futures

import grpc
import redis

UNITS = {"SECOND": (1, 1), "MINUTE": (60, 2), "HOUR": (3600, 3), "DAY": (86400, 4)}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        b = data[i]
        i += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, i
        shift += 7


def _fields(data: bytes):
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 2:
            n, i = _varint(data, i)
            value, i = data[i:i + n], i + n
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield field, value


def decode_request(data: bytes) -> dict:
    req = {"domain": "", "descriptors": [], "hits_addend": 0}
    for f, v in _fields(data):
        if f == 1:
            req["domain"] = v.decode()
        elif f == 3:
            req["hits_addend"] = v
        elif f == 2:
            d = {"entries": [], "hits_addend": None}
            for df, dv in _fields(v):
                if df == 1:
                    entry = dict(_fields(dv))
                    d["entries"].append((entry.get(1, b"").decode(), entry.get(2, b"").decode()))
                elif df == 3:  # google.protobuf.UInt64Value
                    d["hits_addend"] = dict(_fields(dv)).get(1, 0)
            req["descriptors"].append(d)
    return req


def _enc_varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(num: int, value) -> bytes:
    if isinstance(value, int):
        return _enc_varint(num << 3) + _enc_varint(value)
    return _enc_varint(num << 3 | 2) + _enc_varint(len(value)) + value


def encode_response(resp: dict) -> bytes:
    out = _field(1, resp["overall_code"])
    for s in resp["statuses"]:
        status = _field(1, s["code"])
        if s.get("limit"):
            limit = _field(1, s["limit"]) + _field(2, s["unit_code"]) + _field(3, s["name"].encode())
            status += _field(2, limit) + _field(3, s["remaining"])
            status += _field(4, _field(1, s["reset_s"]))
        out += _field(2, status)
    return out


class MiniRls:
    OK, OVER_LIMIT = 1, 2

    def __init__(self, redis_port: int, limits: dict, port: int = 0):
        self.redis = redis.Redis(port=redis_port)
        self.limits = limits  # generic_key value -> {"limit": n, "unit": "MINUTE"}
        self.requests: list[dict] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handler = grpc.unary_unary_rpc_method_handler(
            self.should_rate_limit, request_deserializer=decode_request, response_serializer=encode_response)
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(
            "envoy.service.ratelimit.v3.RateLimitService", {"ShouldRateLimit": handler}),))
        self.port = self.server.add_insecure_port(f"127.0.0.1:{port}")
        self.server.start()

    def should_rate_limit(self, req: dict, _context) -> dict:
        self.requests.append(req)
        overall, statuses = self.OK, []
        for d in req["descriptors"]:
            generic = next((v for k, v in d["entries"] if k == "generic_key"), None)
            rule = self.limits.get(generic)
            if rule is None:
                statuses.append({"code": self.OK})
                continue
            seconds, unit_code = UNITS[rule["unit"]]
            hits = d["hits_addend"] if d["hits_addend"] is not None else (req["hits_addend"] or 1)
            window = int(time.time()) // seconds
            key = "|".join([req["domain"], *(f"{k}={v}" for k, v in d["entries"]), str(window)])
            if hits == 0:
                count = int(self.redis.get(key) or 0)
                over = count >= rule["limit"]
            else:
                pipe = self.redis.pipeline()
                pipe.incrby(key, hits)
                pipe.expire(key, seconds)
                count = pipe.execute()[0]
                over = count > rule["limit"]
            code = self.OVER_LIMIT if over else self.OK
            if over:
                overall = self.OVER_LIMIT
            statuses.append({"code": code, "limit": rule["limit"], "unit_code": unit_code, "name": generic,
                             "remaining": max(0, rule["limit"] - count), "reset_s": seconds - int(time.time()) % seconds})
        return {"overall_code": overall, "statuses": statuses}

    def stop(self):
        self.server.stop(0)


class RedisServer:
    def __init__(self, port: int, workdir):
        self.port = port
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)
