"""Audit records in the real Envoy: bounded in size, and the request id is Envoy's."""
import json
import re
import uuid

import pytest
from conftest import Stack

import envoy_run

MAX_RECORD_BYTES = 8 * 1024
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

AUTHZ = {
    "routes": [{"match": {"route_name": "inference"}, "policy": "inference"}],
    "policies": {"inference": {"rules": [
        {"name": "chat-users", "when": {"scopes": ["llm:chat"]}, "models": ["mock-gpt"], "tools": ["search_*"]},
    ]}},
    "request_body": {"max_bytes": 1_000_000},
}
ROUTES = [{"name": "inference", "match": {"prefix": "/"}, "route": {"cluster": "llm_upstream"}}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, keys):
    s = Stack(tmp_path_factory.mktemp("audit"), [keys["ES256"]], plugin_extra={"authorization": AUTHZ},
              routes=ROUTES)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def edge_stack(tmp_path_factory, keys):
    """The shipped envoy/envoy.yaml's setting: use_remote_address, so Envoy is the edge."""
    plain = envoy_run.bootstrap

    def edge(*args, **kw):
        config = plain(*args, **kw)
        hcm = config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
        hcm["use_remote_address"] = True
        return config
    envoy_run.bootstrap = edge
    try:
        s = Stack(tmp_path_factory.mktemp("audit-edge"), [keys["ES256"]], routes=ROUTES)
    finally:
        envoy_run.bootstrap = plain
    yield s
    s.stop()


def access_line(stack, jti):
    """The raw access-log text of the call's audit record."""
    stack.record(jti)
    for line in stack.access_log.read_text().splitlines():
        if f'"jti":"{jti}"' in line:
            return line.partition(" ")[2]
    raise AssertionError(jti)


def test_fourteen_thousand_tools_make_a_bounded_record(stack):
    jti = str(uuid.uuid4())
    tools = [{"type": "function", "function": {"name": f"tool_{i:05}"}} for i in range(14_000)]
    body = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "tools": tools}
    r = stack.call(stack.token(scope="llm:chat", sub="many-tools", jti=jti), body=body)
    assert r.status == 403 and json.loads(r.body)["error"]["code"] == "tool_not_permitted"
    line = access_line(stack, jti)
    assert len(line.encode()) <= MAX_RECORD_BYTES, len(line)
    rec = json.loads(line)
    assert rec["decision"] == "deny" and rec["reason"] == "tool_not_permitted" and rec["status"] == 403
    assert rec["sub"] == "many-tools" and rec["issuer"] == "idp"
    assert len(rec["tools"]) + rec["tools_truncated"] == 14_000
    assert "tools" in rec["truncated"]
    # Envoy's log line is the same bounded record.
    log = stack.envoy.log()
    audit_lines = [ln for ln in log.splitlines() if f'"jti":"{jti}"' in ln]
    assert audit_lines and all(len(ln) < MAX_RECORD_BYTES + 512 for ln in audit_lines)


@pytest.mark.parametrize("xff", [None, "10.1.2.3"])
def test_at_the_edge_request_id_is_envoys_not_the_clients(edge_stack, xff):
    jti = str(uuid.uuid4())
    chosen = f"client-chosen-{uuid.uuid4()}"
    headers = {"x-request-id": chosen, **({"x-forwarded-for": xff} if xff else {})}
    r = edge_stack.call(edge_stack.token(jti=jti), headers=headers)
    assert r.status == 200
    rec = edge_stack.record(jti)
    # An external request: Envoy replaces the caller's x-request-id before any filter runs
    # (a forged x-forwarded-for does not make it internal).
    assert rec["request_id"] != chosen and UUID.match(rec["request_id"]), rec["request_id"]
    assert chosen not in json.dumps(rec)
    assert rec["client_request_id"] is None


def test_behind_a_proxy_envoy_keeps_the_callers_request_id(stack):
    # use_remote_address false (this bootstrap's default): Envoy treats no request as an edge
    # request and keeps an x-request-id it receives, so request.id is the caller's. Deploy
    # the listener that faces clients with use_remote_address: true (envoy/envoy.yaml does).
    jti = str(uuid.uuid4())
    chosen = f"client-chosen-{uuid.uuid4()}"
    assert stack.call(stack.token(scope="llm:chat", jti=jti), headers={"x-request-id": chosen}).status == 200
    assert stack.record(jti)["request_id"] == chosen


def test_new_fields_are_present_on_every_record(stack):
    jti = str(uuid.uuid4())
    assert stack.call(stack.token(scope="llm:chat", jti=jti)).status == 200
    rec = stack.record(jti)
    for field in ("client_request_id", "withheld", "tokens_reserved", "tokens_charged"):
        assert field in rec
    assert rec["withheld"] is None
    assert (rec["tools_truncated"], rec["act_truncated"], rec["redactions_truncated"]) == (0, 0, 0)
    assert rec["truncated"] == []
