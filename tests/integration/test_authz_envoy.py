"""Authorization inside the real Envoy: models, tools (request and response), admin routes,
default deny, monitor mode, body limits, and Envoy's stop-iteration behaviour."""
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from conftest import Response, Stack

import tokens

ADMIN_ISS = "https://admins.test"

ROUTES = [
    {"name": "admin", "match": {"prefix": "/admin/"}, "route": {"cluster": "llm_upstream"}},
    {"name": "misc", "match": {"prefix": "/misc/"}, "route": {"cluster": "llm_upstream"}},
    {"name": "inference", "match": {"prefix": "/"}, "route": {"cluster": "llm_upstream", "timeout": "60s"}},
]


def authz(mode="enforce", on_forbidden="error"):
    return {
        "routes": [
            {"match": {"route_name": "admin"}, "policy": "admin"},
            {"match": {"route_name": "inference"}, "policy": "inference"},
        ],
        "policies": {
            "inference": {"mode": mode, "rules": [
                {"name": "chat-users", "when": {"scopes": ["llm:chat"]},
                 "models": ["mock-gpt", "llama-*"], "tools": ["search_*"],
                 "max_tokens": {"limit": 512, "on_exceed": "clamp"}},
                {"name": "embedders", "when": {"scopes": ["llm:embed"]}, "actions": ["embeddings"],
                 "models": ["text-embedding-*"]},
            ]},
            "admin": {"rules": [
                # Admin APIs are endpoints the filter does not understand: granted explicitly.
                {"name": "platform-admins", "when": {"issuers": ["admins"], "audiences": ["llm-admin"],
                                                     "scopes": ["llm:admin"]}, "other_paths": ["/admin/**"]},
            ]},
        },
        "request_body": {"max_bytes": 65536},
        "response_tool_calls": {"on_forbidden": on_forbidden},
    }


def make_stack(tmp_path, keys, **authz_kw):
    admin_key = tokens.Key("ES256")
    admins = {"name": "admins", "issuer": ADMIN_ISS, "audiences": ["llm-admin"],
              "jwks": {"inline": tokens.jwks(admin_key)}}
    s = Stack(tmp_path, [keys["RS256"], keys["ES256"]], extra_issuers=[admins],
              plugin_extra={"authorization": authz(**authz_kw)}, routes=ROUTES)
    s.admin_key = admin_key
    return s


@pytest.fixture(scope="module")
def stack(tmp_path_factory, keys):
    s = make_stack(tmp_path_factory.mktemp("authz"), keys)
    yield s
    s.stop()


def chat(model="mock-gpt", **extra):
    return {"model": model, "messages": [{"role": "user", "content": "hi"}], **extra}


def user_token(stack, scope="llm:chat", **kw):
    return stack.token(stack.keys[0], scope=scope, **kw)


def code(r):
    return json.loads(r.body)["error"]["code"]


def test_first_request_with_body_while_keys_are_fetched_is_still_authorized(tmp_path, keys):
    # The very first request waits for the JWKS fetch while its body arrives: it must be
    # inspected all the same (a forbidden model must not slip through).
    s = make_stack(tmp_path, keys)
    try:
        r = s.call(user_token(s), body=chat("gpt-4-forbidden"))
        assert r.status == 403 and code(r) == "model_not_permitted"
        assert s.call(user_token(s), body=chat()).status == 200
    finally:
        s.stop()


def test_allowed_and_forbidden_model(stack):
    r = stack.call(user_token(stack), body=chat("llama-3-8b"))
    assert r.status == 200, r.body
    r = stack.call(user_token(stack), body=chat("gpt-5"))
    assert r.status == 403
    assert code(r) == "model_not_permitted"
    assert 'error="insufficient_scope"' in r.headers["www-authenticate"]
    assert "chat-users" not in r.body.decode()  # no policy internals


def test_action_and_scope(stack):
    embed = user_token(stack, scope="llm:embed")
    r = stack.call(embed, path="/v1/embeddings", body={"model": "text-embedding-3-small", "input": "x"})
    assert r.status == 200
    r = stack.call(embed, body=chat("text-embedding-3-small"))
    assert r.status == 403 and code(r) == "action_not_permitted"
    r = stack.call(user_token(stack, scope="profile"), body=chat())
    assert r.status == 403 and code(r) == "insufficient_scope"


def test_forbidden_tool_in_request(stack):
    tools = [{"type": "function", "function": {"name": "delete_database", "parameters": {}}}]
    r = stack.call(user_token(stack), body=chat(tools=tools))
    assert r.status == 403 and code(r) == "tool_not_permitted"
    assert "delete_database" in json.loads(r.body)["error"]["message"]
    forced = {"type": "function", "function": {"name": "shell"}}
    r = stack.call(user_token(stack), body=chat(tool_choice=forced))
    assert r.status == 403 and code(r) == "tool_not_permitted"
    ok = [{"type": "function", "function": {"name": "search_docs", "parameters": {}}}]
    assert stack.call(user_token(stack), body=chat(tools=ok)).status == 200


def test_every_tool_declaration_is_seen(stack):
    # On main, a server tool carrying an allowed name, a second name and switches such as
    # web_search_options all reached the upstream. The grant here is `search_*`.
    def status(body, path="/v1/chat/completions"):
        r = stack.call(user_token(stack), path=path, body=body)
        err = json.loads(r.body).get("error") if r.status >= 400 else None
        return r.status, err and err["code"], err and err["param"]

    refused = (400, "invalid_request", "tools")
    # Responses reads the top-level name; main authorized the nested one.
    two_names = {"type": "function", "name": "delete_database", "function": {"name": "search_docs"}}
    assert status({"model": "mock-gpt", "input": "hi", "tools": [two_names]}, "/v1/responses") == refused
    assert status(chat(tools=[two_names])) == refused
    bash_as_search = {"type": "bash_20250124", "name": "search_docs"}
    assert status(chat(max_tokens=10, tools=[bash_as_search]), "/v1/messages") == refused
    forbidden = [
        ("/v1/messages", chat(max_tokens=10, tools=[{"type": "bash_20250124", "name": "bash"}])),
        ("/v1/messages", chat(max_tokens=10, mcp_servers=[{"type": "url", "url": "https://evil.example/mcp",
                                                           "name": "search_evil"}])),
        ("/v1/chat/completions", chat(web_search_options={})),
        ("/v1/chat/completions", chat(tools=[{"type": "custom", "custom": {"name": "delete_database"}}])),
        ("/v1/responses", {"model": "mock-gpt", "input": "hi", "tools": [{"type": "code_interpreter"}]}),
        ("/v1/responses", {"model": "mock-gpt", "input": "hi",
                           "tools": [{"type": "mcp", "server_label": "search_x", "server_url": "https://x"}]}),
    ]
    for path, body in forbidden:
        assert status(body, path) == (403, "tool_not_permitted", None), (path, body)
    allowed = chat(tools=[{"type": "custom", "custom": {"name": "search_code"}}])
    assert status(allowed)[0] == 200


# The request declares an allowed tool; the model (talked into it, or hallucinating) calls
# another one. Without any declared tool these APIs do not return tool calls at all.
DECLARED = [{"type": "function", "function": {"name": "search_docs", "parameters": {}}}]


def test_forbidden_tool_in_json_response_is_blocked(stack):
    r = stack.call(user_token(stack), body=chat(tools=DECLARED), headers={"x-mock-tool-call": "transfer_funds"})
    assert r.status == 403
    err = json.loads(r.body)["error"]
    assert err["code"] == "tool_not_permitted" and "transfer_funds" in err["message"]
    assert b"secret_arg" not in r.body
    ok = stack.call(user_token(stack), body=chat(tools=DECLARED), headers={"x-mock-tool-call": "search_web"})
    assert ok.status == 200 and b"search_web" in ok.body


def test_forbidden_tool_in_streamed_response_is_blocked_and_audited(stack):
    jti = uuid.uuid4().hex
    r = stack.call(user_token(stack, jti=jti), body=chat(stream=True, tools=DECLARED),
                   headers={"x-mock-tool-call": "transfer_funds"})
    assert r.status == 200
    text = r.body.decode()
    assert "Let me check." in text  # content before the tool call passes
    assert "tool_not_permitted" in text and text.rstrip().endswith("data: [DONE]")
    assert "secret_arg" not in text and '"name": "transfer_funds"' not in text
    record = stack.record(jti)
    assert record["decision"] == "deny" and record["reason"] == "tool_call_blocked"
    assert record["blocked_tool"] == "transfer_funds"
    ok = stack.call(user_token(stack), body=chat(stream=True, tools=DECLARED),
                    headers={"x-mock-tool-call": "search_web"})
    assert "search_web" in ok.body.decode() and "secret_arg" in ok.body.decode()


def test_audit_names_route_policy_rule_model_tools(stack):
    jti = uuid.uuid4().hex
    tools = [{"type": "function", "function": {"name": "search_docs"}}]
    assert stack.call(user_token(stack, jti=jti), body=chat("llama-3", tools=tools)).status == 200
    rec = stack.record(jti)
    assert rec["route"] == "inference" and rec["policy"] == "inference" and rec["rule"] == "chat-users"
    assert rec["model"] == "llama-3" and rec["tools"] == ["search_docs"] and rec["action"] == "chat"
    assert rec["decision"] == "allow"


def test_admin_route(stack):
    inference = user_token(stack, scope="llm:chat llm:admin")
    r = stack.call(inference, path="/admin/models/reload", body={})
    assert r.status == 403 and code(r) == "insufficient_scope"
    admin = tokens.mint(stack.admin_key, tokens.claims(ADMIN_ISS, aud="llm-admin", sub="op", scope="llm:admin"))
    assert stack.call(admin, path="/admin/models/reload", body={}).status == 200
    # ...and an admin token does not open inference.
    r = stack.call(admin, body=chat())
    assert r.status == 403


def test_route_without_rule_is_denied(stack):
    r = stack.call(user_token(stack), path="/misc/anything", body={})
    assert r.status == 403 and code(r) == "route_not_permitted"


def test_max_tokens_clamped(stack):
    r = stack.call(user_token(stack), body=chat(max_tokens=4000))
    assert r.status == 200
    assert r.json()["received_body"]["max_tokens"] == 512
    r = stack.call(user_token(stack), body=chat())
    assert r.json()["received_body"]["max_tokens"] == 512


def raw_post(port, token, data: bytes, headers: dict):
    h = {"authorization": f"Bearer {token}", **headers}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", data=data, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=15) as r:
            return Response(r.status, dict(r.headers), r.read())
    except urllib.error.HTTPError as e:
        return Response(e.code, dict(e.headers), e.read())


def test_413_400_415(stack):
    token = user_token(stack)
    big = json.dumps(chat(padding="x" * 70000)).encode()
    r = raw_post(stack.port, token, big, {"content-type": "application/json"})
    assert r.status == 413 and code(r) == "request_too_large"
    r = raw_post(stack.port, token, b"model=gpt&x=1", {"content-type": "application/x-www-form-urlencoded"})
    assert r.status == 400 and code(r) == "invalid_json"
    r = raw_post(stack.port, token, b'{"model": 7}', {"content-type": "application/json"})
    assert r.status == 400 and json.loads(r.body)["error"]["param"] == "model"
    r = raw_post(stack.port, token, b"\x1f\x8b\x08\x00fake-gzip", {"content-type": "application/json",
                                                                     "content-encoding": "gzip"})
    assert r.status == 415 and code(r) == "unsupported_content_encoding"


def test_chunked_body_without_content_length_is_still_inspected(stack):
    token = user_token(stack)

    def chunks():
        yield b'{"model": "gpt-5", '
        yield b'"messages": []}'
    req = urllib.request.Request(f"http://127.0.0.1:{stack.port}/v1/chat/completions", data=chunks(),
                                 headers={"authorization": f"Bearer {token}", "content-type": "application/json",
                                          "transfer-encoding": "chunked"})
    try:
        urllib.request.urlopen(req, timeout=15)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    assert status == 403


def test_monitor_mode_lets_through_and_audits_would_deny(tmp_path, keys):
    s = make_stack(tmp_path, keys, mode="monitor")
    try:
        jti = uuid.uuid4().hex
        r = s.call(user_token(s, jti=jti), body=chat("gpt-5"))
        assert r.status == 200
        rec = s.record(jti)
        assert rec["decision"] == "would_deny" and rec["reason"] == "model_not_permitted"
    finally:
        s.stop()


def test_refusal_mode_answers_in_protocol(tmp_path, keys):
    s = make_stack(tmp_path, keys, on_forbidden="refusal")
    try:
        r = s.call(user_token(s), body=chat(tools=DECLARED), headers={"x-mock-tool-call": "transfer_funds"})
        assert r.status == 200
        msg = r.json()["choices"][0]
        assert msg["finish_reason"] == "stop" and "transfer_funds" in msg["message"]["content"]
        assert "tool_calls" not in msg["message"]
    finally:
        s.stop()


def test_envoy_needs_allow_on_headers_stop_iteration(tmp_path, keys):
    """Envoy 1.40 turns a Pause from on_request_headers into StopAllIterationAndWatermark
    unless the Wasm PluginConfig sets allow_on_headers_stop_iteration: then the body
    callbacks never run and the request stalls (it is never forwarded unchecked). With the
    flag (every config we ship sets it), the same request is decided at once."""
    s = make_stack(tmp_path, keys)
    try:
        t0 = time.time()
        assert s.call(user_token(s), body=chat()).status == 200
        assert time.time() - t0 < 3
    finally:
        s.stop()
    (tmp_path / "nostop").mkdir()
    s = Stack(tmp_path / "nostop", [keys["RS256"]], plugin_extra={"authorization": {
        "routes": [{"match": {"path_prefix": "/"}, "policy": "p"}],
        "policies": {"p": {"rules": [{"name": "r", "models": ["mock-gpt"]}]}}}}, stop_iteration=False)
    try:
        with pytest.raises(OSError):  # a client timeout: no answer, no forwarding
            s.call(s.token(keys["RS256"]), body=chat("gpt-5"), timeout=3)
    finally:
        s.stop()


def test_source_address_conditions(tmp_path, keys):
    # Rules on the client address: Envoy's source.address is read only when a rule has one.
    cfg = authz()
    cfg["routes"] = [{"match": {"route_name": "inference"}, "policy": "inference"}]
    del cfg["policies"]["admin"]
    cfg["policies"]["inference"]["rules"] = [
        {"name": "loopback-chat", "when": {"scopes": ["llm:chat"], "source_cidrs": ["127.0.0.0/8"]},
         "models": ["mock-gpt"]},
        {"name": "office-embed", "when": {"scopes": ["llm:embed"], "source_cidrs": ["10.0.0.0/8", "::1/128"]},
         "actions": ["embeddings"], "models": ["text-embedding-*"]},
    ]
    s = Stack(tmp_path, [keys["RS256"], keys["ES256"]], plugin_extra={"authorization": cfg}, routes=ROUTES)
    try:
        assert s.call(user_token(s), body=chat("mock-gpt")).status == 200
        r = s.call(user_token(s, scope="llm:embed"), path="/v1/embeddings",
                   body={"model": "text-embedding-3-small", "input": "x"})
        assert r.status == 403, r.body
        s.envoy.assert_no_trap()
    finally:
        s.stop()
