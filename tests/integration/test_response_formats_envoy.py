"""Issue 14 ("#11" in the guide), the response side, in the real Envoy 1.40: what the CLIENT
receives when the upstream frames SSE with CR, CRLF, LF or `\\n\\r\\n`, streams NDJSON, sends
no or an opaque content type, compresses anyway, emits `NaN` in JSON, puts a secret in a
header or a trailer, shapes a forbidden tool call oddly, or cuts a stream; and the official
openai SDK's streaming loop under a token limit.

One Envoy serves every test (policies chosen by path prefix); the upstream
(scripted_upstream.py) sends each reply byte for byte as the test wrote it. Each test
asserts what the client gets first, then the audit record.

Run against another build with WARDEN_WASM=/path/to/llm_warden.wasm (the tests that fail on
the build before the fix are listed in /work/notes/resp-tests-results.md)."""
import gzip
import http.client
import json
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
from raw_clients import h2_request
from scripted_upstream import USAGE, Reply, ScriptedUpstream, chat_chunk, openai_chat, usage_chunk

import envoy_run
import tokens

if os.environ.get("WARDEN_WASM"):
    envoy_run.WASM = Path(os.environ["WARDEN_WASM"])

ISS = "https://idp.test"
TOKEN_LIMIT = 1000  # tokens per hour: nothing refills during a test
AWS = "AKIAIOSFODNN7EXAMPLE"
OPENAI_KEY = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcd"
# Pieces of the secrets that must never reach the client (each secret is split across events).
FRAGMENTS = ["AKIA", "IOSFODNN", "ODNN7EXAMPLE", "sk-proj", "AbCdEfGh", "IjKlMnOp", "0123456789abcd"]

ALL = {"name": "all", "models": ["*"], "actions": ["*", "other"]}
LIMIT = [{"name": "tph", "tokens": TOKEN_LIMIT, "per": "hour"}]
POLICIES = {
    # Redaction (secrets and PII) and tool-call inspection (only search_* may be called).
    "redact": {"rules": [{**ALL, "tools": ["search_*"]}], "redaction": {}},
    # Tool-call inspection only.
    "tools": {"rules": [{**ALL, "tools": ["search_*"]}]},
    # A token limit only (usage metering, no body inspection).
    "limited": {"rules": [{**ALL, "limits": LIMIT}]},
    # Ollama: redaction and a token limit.
    "ollama": {"rules": [{**ALL, "limits": LIMIT}], "redaction": {}},
}
AUTHZ = {"routes": [{"match": {"path_prefix": f"/{name}/"}, "policy": name} for name in POLICIES],
         "policies": POLICIES}


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    cut: bool = False  # the connection ended before the body did

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name]

    def json(self):
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        try:
            return json.loads(self.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


class Rig:
    def __init__(self, workdir: Path):
        self.key = tokens.Key("ES256")
        self.upstream = ScriptedUpstream()
        self.plugin_config = {"issuers": [{"name": "idp", "issuer": ISS, "audiences": ["llm-api"],
                                           "jwks": {"inline": tokens.jwks(self.key)}}],
                              "authorization": AUTHZ}
        self.access_log = workdir / "access.log"
        self.envoy = envoy_run.Envoy(
            envoy_run.bootstrap(self.plugin_config, envoy_run.free_port(), envoy_run.free_port(),
                                ("127.0.0.1", self.upstream.port), None, str(self.access_log),
                                upstream_http={"http_protocol_options": {"enable_trailers": True}}), workdir)
        self.port = self.envoy.port

    def token(self, **claims) -> str:
        return tokens.mint(self.key, tokens.claims(ISS, **claims))

    def call(self, path: str, body: dict | bytes, headers: dict | None = None, token: str | None = None,
             timeout: float = 10) -> Answer:
        """POSTs exactly `json.dumps(body)`; reads what arrives until the end or a cut."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        conn.request("POST", path, body=data, headers={
            "content-type": "application/json", "authorization": f"Bearer {token or self.token()}",
            **(headers or {})})
        resp = conn.getresponse()
        got, cut = b"", False
        while True:
            try:
                piece = resp.read1(65536)
            except (http.client.IncompleteRead, OSError) as e:
                got += getattr(e, "partial", b"") or b""
                cut = True
                break
            if not piece:
                break
            got += piece
        conn.close()
        return Answer(resp.status, resp.getheaders(), got, cut)

    def record(self, jti: str, timeout: float = 5.0) -> dict:
        """The audit record (access log, from filter state) of the call whose token had this jti."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.access_log.exists():
                for line in self.access_log.read_text().splitlines():
                    _, _, rec = line.partition(" ")
                    if f'"jti":"{jti}"' in rec:
                        return json.loads(rec)
            time.sleep(0.1)
        raise AssertionError(f"no audit record for jti {jti}")

    def stop(self):
        self.envoy.stop()
        self.upstream.stop()
        self.envoy.assert_no_trap()


@pytest.fixture(scope="module")
def rig(tmp_path_factory):
    r = Rig(tmp_path_factory.mktemp("formats"))
    yield r
    r.stop()


def chat(**extra) -> dict:
    return {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], **extra}


def jti_token(rig, **claims) -> tuple[str, str]:
    jti = uuid.uuid4().hex
    return jti, rig.token(jti=jti, **claims)


def no_fragments(data: bytes | str):
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    leaked = [f for f in FRAGMENTS if f in text]
    assert not leaked, (leaked, text[:2000])


# ---------- what a spec-conformant SSE client (the openai SDK, a browser) reads ----------

def sse_events(data: bytes) -> list[dict]:
    """The WHATWG event-stream algorithm: lines end in CRLF, CR or LF; a blank line
    dispatches; `data` lines join with LF; one space after the colon is dropped; a last line
    without its end (and an event without its blank line) is discarded."""
    text = data.decode("utf-8")
    text = text.removeprefix("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)[:-1]
    events, data_lines, kind = [], [], ""
    for line in lines:
        if line == "":
            if data_lines:
                events.append({"event": kind or "message", "data": "\n".join(data_lines)})
            data_lines, kind = [], ""
            continue
        if line.startswith(":"):
            continue
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            data_lines.append(value)
        elif name == "event":
            kind = value
    return events


def stream_json(data: bytes) -> list[dict]:
    return [json.loads(e["data"]) for e in sse_events(data) if e["data"] != "[DONE]"]


def stream_content(data: bytes) -> str:
    out = ""
    for v in stream_json(data):
        for c in v.get("choices") or []:
            out += (c.get("delta") or {}).get("content") or ""
    return out


FRAMINGS = {"cr": "\r\r", "crlf": "\r\n\r\n", "lf": "\n\n", "lf-crlf": "\n\r\n"}


def framed(events: list[dict | str], framing: str) -> list[bytes]:
    """Each event in two network writes, the second being its last byte (so a CRLF or the
    blank line is split across chunks)."""
    out = []
    for e in events:
        raw = f"data: {e if isinstance(e, str) else json.dumps(e)}{FRAMINGS[framing]}".encode()
        out += [raw[:-1], raw[-1:]]
    return out


SECRET_DELTAS = ["Your key is AKIAIOSF", "ODNN7EXAMPLE and the token sk-proj-AbCdEfGh",
                 "IjKlMnOpQrStUvWxYz0123456789abcd", " done."]
REDACTED_CONTENT = "Your key is [REDACTED:aws_access_key] and the token [REDACTED:openai_key] done."


def secret_stream(framing: str) -> Reply:
    events = [chat_chunk({"role": "assistant", "content": ""})]
    events += [chat_chunk({"content": d}) for d in SECRET_DELTAS]
    events += [chat_chunk(finish="stop"), "[DONE]"]
    return Reply(headers=[("content-type", "text/event-stream")], chunks=framed(events, framing),
                 framing="chunked", pause=0.005)


# ---------- 1. SSE in every framing the spec allows ----------

@pytest.mark.parametrize("framing", list(FRAMINGS))
def test_sse_secret_split_across_events_never_reaches_the_client(rig, framing):
    headers = rig.upstream.script(f"secret-{framing}", secret_stream(framing))
    r = rig.call("/redact/v1/chat/completions", chat(stream=True), headers)
    assert r.status == 200, r.body[:300]
    no_fragments(r.body)
    # The client reads every event the upstream sent (nothing merged or lost), redacted.
    assert stream_content(r.body) == REDACTED_CONTENT, r.body[:2000]
    assert sse_events(r.body)[-1]["data"] == "[DONE]"


def tool_call_stream(framing: str) -> Reply:
    events = [chat_chunk({"role": "assistant", "content": "Let me check."}),
              chat_chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                          "function": {"name": "delete_database", "arguments": ""}}]}),
              chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{\"secret_arg\": 1}"}}]}),
              chat_chunk(finish="tool_calls"), "[DONE]"]
    return Reply(headers=[("content-type", "text/event-stream")], chunks=framed(events, framing),
                 framing="chunked", pause=0.005)


DECLARED = [{"type": "function", "function": {"name": "search_docs", "parameters": {}}}]


@pytest.mark.parametrize("framing", ["cr", "lf-crlf"])
def test_forbidden_tool_call_in_cr_framed_stream_is_blocked(rig, framing):
    jti, token = jti_token(rig)
    headers = rig.upstream.script(f"tool-{framing}", tool_call_stream(framing))
    r = rig.call("/redact/v1/chat/completions", chat(stream=True, tools=DECLARED), headers, token)
    assert r.status == 200, r.body[:300]
    text = r.body.decode()
    assert "secret_arg" not in text, text
    called = [tc.get("function", {}).get("name") for v in stream_json(r.body) for c in v.get("choices") or []
              for tc in (c.get("delta") or {}).get("tool_calls") or []]
    assert "delete_database" not in called, text
    assert "tool_not_permitted" in text, text
    rec = rig.record(jti)
    assert rec["reason"] == "tool_call_blocked" and rec["blocked_tool"] == "delete_database", rec


# ---------- 2. NDJSON (Ollama's native streams) ----------

OLLAMA_DONE = {"prompt_eval_count": 500, "eval_count": 600}  # 1100 tokens > the 1000-token limit


def ndjson_stream() -> Reply:
    lines = [{"model": "llama3", "created_at": "2026-12-01T00:00:00Z",
              "message": {"role": "assistant", "content": c}, "done": False} for c in SECRET_DELTAS]
    lines.append({"model": "llama3", "created_at": "2026-12-01T00:00:01Z",
                  "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
                  "total_duration": 1000, **OLLAMA_DONE})
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    # Network writes that cut through lines, and join the end of one line to the next.
    pieces = [body[k:k + 37] for k in range(0, len(body), 37)]
    return Reply(headers=[("content-type", "application/x-ndjson")], chunks=pieces, framing="chunked", pause=0.005)


@pytest.mark.parametrize("path", ["/ollama/api/chat", "/ollama/v1/chat/completions"],
                         ids=["native-api-chat", "openai-path"])
def test_ndjson_secret_split_across_lines_redacted_and_usage_charged(rig, path):
    sub = f"ollama-{uuid.uuid4().hex[:8]}"
    jti, token = jti_token(rig, sub=sub)
    headers = rig.upstream.script("ndjson", ndjson_stream())
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    r = rig.call(path, body, headers, token)
    assert r.status == 200, r.body[:300]
    no_fragments(r.body)
    lines = [json.loads(line) for line in r.body.decode().splitlines() if line.strip()]
    content = "".join(line["message"]["content"] for line in lines)
    assert content == REDACTED_CONTENT, r.body[:2000]
    assert lines[-1]["done"] is True and lines[-1]["eval_count"] == 600
    # The final line's usage (500 + 600) was charged: the 1000-token budget is spent.
    second = rig.call(path, body, headers, rig.token(sub=sub))
    assert second.status == 429, (second.status, second.body[:300])
    assert second.json()["error"]["type"] == "tokens"
    rec = rig.record(jti)
    assert rec["tokens_used"] == 1100 and rec["tokens_charged"] == 1100, rec


def ndjson_tool_call() -> Reply:
    lines = [{"model": "llama3", "message": {"role": "assistant", "content": "Let me check."}, "done": False},
             {"model": "llama3", "message": {"role": "assistant", "content": "", "tool_calls": [
                 {"function": {"name": "delete_database", "arguments": {"secret_arg": 1}}}]}, "done": False},
             {"model": "llama3", "message": {"role": "assistant", "content": ""}, "done": True,
              "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 5}]
    body = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return Reply(headers=[("content-type", "application/x-ndjson")],
                 chunks=[body[k:k + 29] for k in range(0, len(body), 29)], framing="chunked", pause=0.005)


@pytest.mark.parametrize("path", ["/redact/api/chat", "/redact/v1/chat/completions"],
                         ids=["native-api-chat", "openai-path"])
def test_ndjson_forbidden_tool_call_is_blocked(rig, path):
    jti, token = jti_token(rig)
    headers = rig.upstream.script("ndjson-tool", ndjson_tool_call())
    body = {"model": "llama3", "messages": [{"role": "user", "content": "hi"}], "stream": True, "tools": DECLARED}
    r = rig.call(path, body, headers, token)
    assert r.status == 200, r.body[:300]
    assert b"secret_arg" not in r.body, r.body
    # The stream ends with an error line in Ollama's own shape ({"error": "<message>"}).
    last = json.loads(r.body.decode().splitlines()[-1])
    assert "delete_database" in last.get("error", "") and "blocked" in last["error"], r.body
    rec = rig.record(jti)
    assert rec["reason"] == "tool_call_blocked" and rec["blocked_tool"] == "delete_database", rec


# ---------- 3. Responses the filter cannot inspect ----------

SECRET_JSON = json.dumps({"id": "x", "object": "chat.completion", "model": "mock-gpt", "choices": [
    {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": f"key {AWS}"}}]}).encode()
TOOL_JSON = json.dumps({"id": "x", "object": "chat.completion", "model": "mock-gpt", "choices": [
    {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "delete_database",
                                                          "arguments": "{\"secret_arg\": 1}"}}]}}]}).encode()
OPAQUE = {
    "no-content-type": ([], "unknown_content_type"),
    "octet-stream": ([("content-type", "application/octet-stream")], "unknown_content_type"),
    "gzip": ([("content-type", "application/json"), ("content-encoding", "gzip")], "compressed"),
}


@pytest.mark.parametrize("kind", list(OPAQUE))
@pytest.mark.parametrize("route", ["redact", "tools"])
def test_uninspectable_response_is_withheld_with_the_reason(rig, route, kind):
    upstream_headers, reason = OPAQUE[kind]
    payload = SECRET_JSON if route == "redact" else TOOL_JSON
    if kind == "gzip":
        payload = gzip.compress(payload)
    jti, token = jti_token(rig)
    headers = rig.upstream.script(f"opaque-{kind}-{route}", Reply(headers=upstream_headers, chunks=[payload]))
    body = chat(tools=DECLARED) if route == "tools" else chat()
    r = rig.call(f"/{route}/v1/chat/completions", body, headers, token)
    assert r.status == 502, (r.status, r.body[:300])
    assert r.code == "uninspectable_response", r.body[:300]
    assert r.header("content-type") == "application/json" and r.header("content-encoding") is None
    assert AWS not in r.body.decode(errors="replace") and b"secret_arg" not in r.body
    rec = rig.record(jti)
    assert rec["withheld"] == reason and rec["status"] == 502, rec


def test_opaque_response_on_a_metering_only_route_passes(rig):
    # Token metering alone never withholds: it changes nothing.
    headers = rig.upstream.script("opaque-limited", Reply(headers=[], chunks=[SECRET_JSON]))
    r = rig.call("/limited/v1/chat/completions", chat(max_tokens=10),
                 headers, rig.token(sub=f"meter-{uuid.uuid4().hex[:8]}"))
    assert r.status == 200 and r.body == SECRET_JSON, (r.status, r.body[:300])


# ---------- 4. JSON with non-standard numbers and escaped secrets ----------

# vLLM's logprobs: -Infinity and NaN are not JSON, but Python's json and many clients read them.
VLLM_JSON = (b'{"id":"cmpl-vllm","object":"chat.completion","model":"mock-gpt","choices":[{"index":0,'
             b'"message":{"role":"assistant","content":"key \\u0041KIAIOSFODNN7EXAMPLE ok"},'
             b'"logprobs":{"content":[{"token":"key","logprob":-Infinity,"bytes":[107,101,121]},'
             b'{"token":" ok","logprob":NaN,"top_logprobs":[]}]},"finish_reason":"stop"}],'
             b'"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}')


def test_json_with_nan_has_escaped_secret_redacted_and_numbers_kept(rig):
    headers = rig.upstream.script("vllm-nan", Reply(headers=[("content-type", "application/json")],
                                                    chunks=[VLLM_JSON[:90], VLLM_JSON[90:]]))
    r = rig.call("/redact/v1/chat/completions", chat(), headers)
    assert r.status == 200, (r.status, r.body[:300])
    assert b"\\u0041KIA" not in r.body and b"AKIA" not in r.body, r.body
    assert json.loads(r.body)["choices"][0]["message"]["content"] == "key [REDACTED:aws_access_key] ok"
    # Every other byte as the upstream sent it: the NaN/-Infinity logprobs included.
    assert r.body == VLLM_JSON.replace(b"key \\u0041KIAIOSFODNN7EXAMPLE ok", b"key [REDACTED:aws_access_key] ok")
    assert int(r.header("content-length")) == len(r.body)


# ---------- 5. Secrets in response headers ----------

def test_secret_in_response_header_is_redacted_and_metadata_untouched(rig):
    upstream_headers = [("content-type", "application/json; charset=utf-8"), ("x-debug", f"key={AWS}"),
                        ("x-owner", f"owner token {OPENAI_KEY}"), ("x-trace", "plain value"),
                        ("x-note", f"first {AWS}"), ("x-note", "second clean"),
                        ("x-ratelimit-limit-requests", "4155552671"), ("cache-control", "no-store")]
    jti, token = jti_token(rig)
    headers = rig.upstream.script("secret-headers", Reply(headers=upstream_headers, chunks=[b'{"ok": true}']))
    r = rig.call("/redact/v1/chat/completions", chat(), headers, token)
    assert r.status == 200, (r.status, r.body[:300])
    flat = "\n".join(f"{k}: {v}" for k, v in r.headers)
    no_fragments(flat)
    assert r.header("x-debug") == "key=[REDACTED:aws_access_key]", flat
    assert r.header("x-owner") == "owner token [REDACTED:openai_key]", flat
    assert sorted(r.header_values("x-note")) == ["first [REDACTED:aws_access_key]", "second clean"], flat
    assert r.header("x-trace") == "plain value"
    # Protocol metadata and rate-limit figures (which look like phone numbers) are left alone.
    assert r.header("content-type") == "application/json; charset=utf-8"
    assert r.header("x-ratelimit-limit-requests") == "4155552671"
    assert r.header("cache-control") == "no-store"
    assert r.json() == {"ok": True}
    assert rig.record(jti)["redactions"] == {"aws_access_key": 2, "openai_key": 1}


# ---------- 6. Response trailers ----------
#
# That trailers do not release a held body unredacted is covered by
# tests/integration/test_bypass_request.py. The gap: a secret in a trailer's value, which is a
# header like any other (README "Response headers").

@pytest.mark.parametrize("kind", ["json", "sse"])
def test_secret_in_response_trailer_is_redacted(rig, kind):
    if kind == "json":
        reply = Reply(headers=[("content-type", "application/json")], chunks=[b'{"ok": true}'], framing="chunked")
    else:
        reply = secret_stream("lf")
    reply.trailers = [("x-debug", f"key={AWS}"), ("x-checksum", "abc123")]
    headers = rig.upstream.script(f"trailer-{kind}", reply)
    r = h2_request(rig.port, "/redact/v1/chat/completions", body=chat(stream=kind == "sse"),
                   headers={"authorization": f"Bearer {rig.token()}", "content-type": "application/json", **headers})
    assert r.status == 200, (r.status, r.body[:300])
    assert r.trailers.get("x-checksum") == "abc123", r.trailers  # the trailers did arrive
    no_fragments("\n".join(f"{k}: {v}" for k, v in r.trailers.items()))
    assert r.trailers.get("x-debug") == "key=[REDACTED:aws_access_key]", r.trailers


# ---------- 7. Streams cut by the upstream on a token-limited route ----------
#
# Covered elsewhere (tests/integration/test_ratelimit_envoy.py): an LF stream reset after one
# event (charge read from the next call's headers), a client leaving mid-stream, parallel
# calls on 2 workers. Here: the audit record's reserved and charged tokens, a CR-framed
# stream (the meter must read those events too), a chunked stream closed before its end, and
# a complete close-delimited stream that never sent [DONE] or usage.

def text_tokens(data: bytes) -> int:
    """src/usage.rs text_tokens: ASCII bytes / 4 rounded up, plus one per non-ASCII character."""
    return -(-sum(1 for b in data if b < 0x80) // 4) + sum(1 for b in data if b >= 0xC0)


CUT_WORDS = ["The answer ", "is being ", "written when ", "the upstream ", "goes away."]


@pytest.mark.parametrize("framing,cut", [("cr", "rst"), ("lf", "fin"), ("crlf", None)],
                         ids=["cr-reset", "lf-closed-mid-chunk", "crlf-complete-without-usage"])
def test_stream_cut_without_usage_is_charged_at_least_the_prompt(rig, framing, cut):
    sub = f"cut-{uuid.uuid4().hex[:8]}"
    jti, token = jti_token(rig, sub=sub)
    events = [chat_chunk({"content": w}) for w in CUT_WORDS]  # no finish, no usage, no [DONE]
    reply = Reply(headers=[("content-type", "text/event-stream")], chunks=framed(events, framing),
                  framing="close" if cut is None else "chunked", cut=cut, pause=0.01)
    headers = rig.upstream.script(f"cut-{framing}-{cut}", reply)
    body = chat(stream=True, max_tokens=200)
    r = rig.call("/limited/v1/chat/completions", body, headers, token)
    assert r.status == 200
    assert "".join(CUT_WORDS[:2]) in stream_content(r.body + b"\n\n"), r.body[:500]
    prompt = text_tokens(json.dumps(body).encode())
    output = sum(text_tokens(w.encode()) for w in CUT_WORDS)
    rig.record(jti)  # logged, so settled
    # The next call finds the charge missing from the budget (the header is the budget
    # before its own reservation): at least the prompt, at most prompt + what passed.
    nxt = rig.call("/limited/v1/chat/completions", chat(max_tokens=10), token=rig.token(sub=sub))
    assert nxt.status == 200
    charged = TOKEN_LIMIT - int(nxt.header("x-ratelimit-remaining-tokens"))
    assert prompt <= charged <= prompt + output, (charged, prompt, output)
    rec = rig.record(jti)
    assert rec["tokens_used"] is None, rec
    assert rec["tokens_reserved"] == prompt + 200 and rec["tokens_charged"] == charged, (rec, prompt)


# ---------- 8. The official openai SDK's streaming loop under a token limit ----------

def sdk_client(rig, token: str, script: str):
    openai = pytest.importorskip("openai")
    return openai.OpenAI(base_url=f"http://127.0.0.1:{rig.port}/limited/v1", api_key=token, max_retries=0,
                         timeout=10, default_headers={"x-script": script})


SDK_FRAMINGS = {"lf": "\n", "cr": "\r"}


@pytest.mark.parametrize("framing", list(SDK_FRAMINGS))
def test_openai_sdk_stream_loop_under_token_limit(rig, framing):
    rig.upstream.script(f"sdk-{framing}", lambda rec: openai_chat(rec, sep=SDK_FRAMINGS[framing]))
    jti, token = jti_token(rig, sub=f"sdk-{uuid.uuid4().hex[:8]}")
    client = sdk_client(rig, token, f"sdk-{framing}")
    stream = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "hi"}],
                                            stream=True)
    # The loop every SDK example shows: it must not raise IndexError on a usage-only chunk.
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream)
    assert text == "Hello from the scripted upstream."
    # The filter did ask the upstream for usage on the client's behalf, and charged it.
    assert rig.upstream.last_json("/limited/")["stream_options"] == {"include_usage": True}
    rec = rig.record(jti)
    assert rec["tokens_used"] == 18 and rec["tokens_charged"] == 18, rec


@pytest.mark.parametrize("framing", list(SDK_FRAMINGS))
def test_openai_sdk_client_that_asked_for_usage_gets_it(rig, framing):
    rig.upstream.script(f"sdk-{framing}", lambda rec: openai_chat(rec, sep=SDK_FRAMINGS[framing]))
    jti, token = jti_token(rig, sub=f"sdk-usage-{uuid.uuid4().hex[:8]}")
    client = sdk_client(rig, token, f"sdk-{framing}")
    chunks = list(client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "hi"}], stream=True,
        stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage is not None, chunks[-1]
    assert chunks[-1].usage.total_tokens == 18
    assert all(c.choices for c in chunks[:-1])
    assert rig.record(jti)["tokens_charged"] == 18


def test_usage_chunk_the_client_asked_for_arrives_byte_for_byte(rig):
    r = rig.call("/limited/v1/chat/completions", chat(stream=True, stream_options={"include_usage": True}),
                 token=rig.token(sub=f"raw-usage-{uuid.uuid4().hex[:8]}"))
    assert r.status == 200
    assert f"data: {json.dumps(usage_chunk())}\n\n".encode() in r.body, r.body[-600:]
    assert json.loads(sse_events(r.body)[-2]["data"])["usage"] == USAGE


# ---------- 9. Audit records ----------
#
# A refused request with 14,000 tool names is covered by tests/integration/test_audit_envoy.py.
# The withheld reason is asserted above (test_uninspectable_response_is_withheld_with_the_reason).
# The gap: an ALLOWED request with 14,000 tools, whose record is also written as the response
# passes (the filter republishes it at response headers, body end and log time).

def test_allowed_request_with_fourteen_thousand_tools_has_a_bounded_record(rig):
    jti, token = jti_token(rig)
    tools = [{"type": "function", "function": {"name": f"search_{i:05}"}} for i in range(14_000)]
    r = rig.call("/redact/v1/chat/completions", chat(tools=tools), rig.upstream.script("plain", openai_chat), token)
    assert r.status == 200, (r.status, r.body[:300])
    rec = rig.record(jti)
    line = next(line.partition(" ")[2] for line in rig.access_log.read_text().splitlines() if jti in line)
    assert len(line.encode()) <= 8 * 1024, len(line)
    assert rec["decision"] == "allow" and len(rec["tools"]) + rec["tools_truncated"] == 14_000, rec
    assert "tools" in rec["truncated"]


# ---------- More shapes: every API's text stream, stream oddities, opaque and bodiless replies ----------

def raw_stream(parts: list[str], ctype: str = "text/event-stream") -> Reply:
    return Reply(headers=[("content-type", ctype)], chunks=[p.encode() for p in parts], framing="chunked",
                 pause=0.005)


def ev(obj, framing="\n\n", event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {obj if isinstance(obj, str) else json.dumps(obj)}{framing}"


SPLIT_STREAMS = {
    # A tool the caller may call, whose arguments carry the secret across two events.
    "tool-arguments": [
        ev(chat_chunk({"tool_calls": [{"index": 0, "id": "c1", "type": "function",
                                       "function": {"name": "search_docs", "arguments": "{\"q\": \"AKIAIOSF"}}]})),
        ev(chat_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "ODNN7EXAMPLE\"}"}}]})),
        ev(chat_chunk(finish="tool_calls")), ev("[DONE]")],
    # The Responses API's text deltas.
    "responses": [
        ev({"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": 0,
            "delta": "key AKIAIOSF"}, event="response.output_text.delta"),
        ev({"type": "response.output_text.delta", "item_id": "m1", "output_index": 0, "content_index": 0,
            "delta": "ODNN7EXAMPLE ok"}, event="response.output_text.delta")],
    # Anthropic's messages stream.
    "anthropic": [
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "key AKIAIOSF"}},
           event="content_block_delta"),
        ev({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ODNN7EXAMPLE ok"}},
           event="content_block_delta"),
        ev({"type": "message_stop"}, event="message_stop")],
    # Two choices interleaved (n=2): each choice's text is its own stream.
    "two-choices": [
        ev({**chat_chunk({"content": "key AKIAIOSF"})}),
        ev({**chat_chunk(), "choices": [{"index": 1, "delta": {"content": "hello"}, "finish_reason": None}]}),
        ev({**chat_chunk({"content": "ODNN7EXAMPLE ok"})}),
        ev("[DONE]")],
    # Escaped in the event's JSON, split across events.
    "escaped": [ev('{"choices":[{"index":0,"delta":{"content":"key \\u0041KIAIOSF"}}]}'),
                ev('{"choices":[{"index":0,"delta":{"content":"ODNN7EXAMPLE ok"}}]}'), ev("[DONE]")],
    # One event's data over two `data:` lines (joined with LF by the client).
    "multi-line-data": ['data: {"choices":[{"index":0,\ndata: "delta":{"content":"key AKIAIOSFODNN7EXAMPLE ok"}}]}\n\n',
                        ev("[DONE]")],
    # A comment and an id carry a secret; then the last event ends without its blank line.
    "comment-id-last": [f": debug {AWS}\n\n", f"id: {AWS}\n" + ev(chat_chunk({"content": "hi"})),
                        f"data: {json.dumps(chat_chunk({'content': 'key ' + AWS}))}\n"],
    # A UTF-8 BOM, CR framing, data that is not JSON.
    "bom-cr-text": ["\ufeffdata: plain key AKIAIOSF", "ODNN7EXAMPLE ok\r\r", "data: [DONE]\r\r"],
}
PATHS = {"responses": "/redact/v1/responses", "anthropic": "/redact/v1/messages"}


@pytest.mark.parametrize("shape", list(SPLIT_STREAMS))
def test_stream_shapes_never_leak_a_secret(rig, shape):
    headers = rig.upstream.script(f"shape-{shape}", raw_stream(SPLIT_STREAMS[shape]))
    body = chat(stream=True, tools=DECLARED) if shape == "tool-arguments" else chat(stream=True)
    if shape == "anthropic":
        body["max_tokens"] = 64
    r = rig.call(PATHS.get(shape, "/redact/v1/chat/completions"), body, headers)
    assert r.status == 200, (r.status, r.body[:300])
    no_fragments(r.body)
    assert "[REDACTED:aws_access_key]" in "\n".join(e["data"] for e in sse_events(r.body + b"\n\n")), r.body


def test_ndjson_last_line_without_newline_is_redacted(rig):
    line = json.dumps({"model": "llama3", "response": f"key {AWS}", "done": True})
    headers = rig.upstream.script("ndjson-last", raw_stream([line[:30], line[30:]], "application/x-ndjson"))
    r = rig.call("/redact/api/generate", {"model": "llama3", "prompt": "hi"}, headers)
    assert r.status == 200, (r.status, r.body[:300])
    no_fragments(r.body)
    assert json.loads(r.body)["response"] == "key [REDACTED:aws_access_key]"


def test_html_error_page_labelled_json_is_withheld_on_a_redacting_route(rig):
    page = f"<html><body>upstream error, key {AWS}</body></html>".encode()
    jti, token = jti_token(rig)
    headers = rig.upstream.script("html-json", Reply(status=500, headers=[("content-type", "application/json")],
                                                     chunks=[page]))
    r = rig.call("/redact/v1/chat/completions", chat(), headers, token)
    assert r.status == 502 and r.code == "uninspectable_response", (r.status, r.body[:300])
    assert rig.record(jti)["withheld"] == "unparseable"


def test_content_type_parameters_and_case_do_not_skip_inspection(rig):
    reply = secret_stream("cr")
    reply.headers = [("content-type", "Text/Event-Stream; charset=UTF-8")]
    headers = rig.upstream.script("sse-ctype-case", reply)
    r = rig.call("/redact/v1/chat/completions", chat(stream=True), headers)
    assert r.status == 200
    no_fragments(r.body)
    assert stream_content(r.body) == REDACTED_CONTENT


def test_compressed_stream_is_withheld(rig):
    jti, token = jti_token(rig)
    data = gzip.compress(b"".join(secret_stream("lf").chunks))
    headers = rig.upstream.script("sse-gzip", Reply(headers=[("content-type", "text/event-stream"),
                                                             ("content-encoding", "gzip")], chunks=[data],
                                                    framing="chunked"))
    r = rig.call("/redact/v1/chat/completions", chat(stream=True), headers, token)
    assert r.status == 502 and r.code == "uninspectable_response", (r.status, r.body[:300])
    assert rig.record(jti)["withheld"] == "compressed"


def test_bodiless_reply_without_content_type_is_not_withheld(rig):
    headers = rig.upstream.script("no-content", Reply(status=204, headers=[], chunks=[]))
    r = rig.call("/redact/v1/chat/completions", chat(), headers)
    assert r.status == 204, (r.status, r.body[:300])


@pytest.mark.parametrize("options", [{"include_usage": False}, {}], ids=["include_usage-false", "empty"])
def test_openai_sdk_loop_when_client_declined_usage(rig, options):
    rig.upstream.script("sdk-lf", lambda rec: openai_chat(rec))
    jti, token = jti_token(rig, sub=f"sdk-no-{uuid.uuid4().hex[:8]}")
    stream = sdk_client(rig, token, "sdk-lf").chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options=options)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream) == "Hello from the scripted upstream."
    assert rig.record(jti)["tokens_charged"] == 18

# ---------- Forbidden tool calls however the reply is shaped ----------

FORBIDDEN_CALL = {"id": "c1", "type": "function",
                  "function": {"name": "delete_database", "arguments": "{\"secret_arg\": 1}"}}


def completion(*choices: dict, **top) -> dict:
    return {"id": "x", "object": "chat.completion", "model": "mock-gpt", "choices": list(choices), **top}


def calling(index: int = 0, **message) -> dict:
    return {"index": index, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": None, **message}}


ALLOWED_CALL = {"id": "c0", "type": "function", "function": {"name": "search_docs", "arguments": "{}"}}
STOP = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}
PLAIN_CALL = json.dumps(completion(calling(tool_calls=[FORBIDDEN_CALL])))


def dup(text: str, key: str, first: str) -> str:
    """`text` with a first `key` member inserted before the existing one (a duplicate key:
    Python's json, like most parsers, keeps the last)."""
    return text.replace(f'"{key}": ', f'"{key}": {first}, "{key}": ', 1)


# JSON replies a Python client (json.loads, the openai SDK) reads as calling delete_database.
TOOL_JSON_SHAPES = {
    "nan-logprobs": PLAIN_CALL.replace('"finish_reason"', '"logprobs": {"content": [{"logprob": NaN}]}, '
                                                          '"finish_reason"'),
    "duplicate-tool_calls": dup(PLAIN_CALL, "tool_calls", json.dumps([ALLOWED_CALL])),
    "duplicate-name": dup(PLAIN_CALL, "name", '"search_docs"'),
    "duplicate-choices": dup(PLAIN_CALL, "choices", json.dumps([STOP])),
    "second-choice": json.dumps(completion(STOP, calling(1, tool_calls=[FORBIDDEN_CALL]))),
    "legacy-function_call": json.dumps(completion(calling(function_call=FORBIDDEN_CALL["function"]))),
    "escaped-name": PLAIN_CALL.replace('"delete_database"', '"\\u0064elete_database"'),
    "bom": "\ufeff" + PLAIN_CALL,
}


@pytest.mark.parametrize("shape", list(TOOL_JSON_SHAPES))
def test_forbidden_tool_call_in_json_of_any_shape_is_blocked(rig, shape):
    body = TOOL_JSON_SHAPES[shape].encode()
    assert "delete_database" in json.dumps(json.loads(body.decode("utf-8-sig")))  # what a client reads
    headers = rig.upstream.script(f"tool-json-{shape}", Reply(headers=[("content-type", "application/json")],
                                                             chunks=[body]))
    r = rig.call("/tools/v1/chat/completions", chat(tools=DECLARED), headers)
    assert b"secret_arg" not in r.body, (r.status, r.body)
    assert r.status in (403, 502), (r.status, r.body)


def cr_events(*events: tuple[str | None, dict | str]) -> list[str]:
    return [ev(data, "\r\r", event=name) for name, data in events]


ARGS = "{\"secret_arg\": 1}"
# CR-framed streams of every API the filter knows.
STREAM_TOOL_SHAPES = {
    "responses": ("/tools/v1/responses", cr_events(
        ("response.output_item.added", {"type": "response.output_item.added", "output_index": 0, "item": {
            "type": "function_call", "id": "fc1", "call_id": "c1", "name": "delete_database", "arguments": ""}}),
        ("response.function_call_arguments.delta", {"type": "response.function_call_arguments.delta",
                                                    "item_id": "fc1", "output_index": 0, "delta": ARGS}),
        ("response.function_call_arguments.done", {"type": "response.function_call_arguments.done",
                                                   "item_id": "fc1", "output_index": 0, "arguments": ARGS}))),
    "anthropic": ("/tools/v1/messages", cr_events(
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
            "type": "tool_use", "id": "t1", "name": "delete_database", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "input_json_delta", "partial_json": ARGS}}),
        ("message_stop", {"type": "message_stop"}))),
    "second-choice": ("/tools/v1/chat/completions", cr_events(
        (None, chat_chunk({"content": "hi"})),
        (None, {**chat_chunk(), "choices": [{"index": 1, "delta": {"tool_calls": [{"index": 0, **FORBIDDEN_CALL}]},
                                             "finish_reason": None}]}),
        (None, "[DONE]"))),
    "legacy-function_call": ("/tools/v1/chat/completions", cr_events(
        (None, chat_chunk({"function_call": {"name": "delete_database", "arguments": ""}})),
        (None, chat_chunk({"function_call": {"arguments": ARGS}})), (None, "[DONE]"))),
    # One event's JSON over two `data:` lines, which the client joins.
    "multi-line-data": ("/tools/v1/chat/completions", [
        'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","type":"function",\r'
        'data: "function":{"name":"delete_database","arguments":"{\\"secret_arg\\": 1}"}}]}}]}\r\r',
        ev("[DONE]", "\r\r")]),
}


@pytest.mark.parametrize("shape", list(STREAM_TOOL_SHAPES))
def test_forbidden_tool_call_in_cr_framed_stream_of_any_api_is_blocked(rig, shape):
    path, parts = STREAM_TOOL_SHAPES[shape]
    headers = rig.upstream.script(f"tool-stream-{shape}", raw_stream(parts))
    body = chat(stream=True, tools=DECLARED)
    if "messages" in path:
        body["max_tokens"] = 64
    r = rig.call(path, body, headers)
    assert r.status == 200
    assert b"secret_arg" not in r.body, r.body


@pytest.mark.parametrize("kind", ["sse", "ndjson"])
def test_event_too_large_to_inspect_ends_the_stream_with_an_error(rig, kind):
    # Over the 8 MiB an event (or NDJSON line) may take: the filter cannot hold it for
    # inspection, so nothing of it passes and the stream ends with an error.
    jti, token = jti_token(rig)
    filler = "x" * (1 << 20)
    if kind == "sse":
        first = ev(chat_chunk({"content": "before "})).encode()
        big = [b'data: {"choices":[{"index":0,"delta":{"content":"key ' + AWS.encode() + b" "]
        ctype = "text/event-stream"
    else:
        first = json.dumps({"model": "llama3", "message": {"role": "assistant", "content": "before "},
                            "done": False}).encode() + b"\n"
        big = [b'{"model":"llama3","message":{"role":"assistant","content":"key ' + AWS.encode() + b" "]
        ctype = "application/x-ndjson"
    big += [filler.encode()] * 9
    headers = rig.upstream.script(f"huge-{kind}", Reply(headers=[("content-type", ctype)], chunks=[first, *big],
                                                        framing="chunked", pause=0.002))
    r = rig.call("/redact/v1/chat/completions" if kind == "sse" else "/redact/api/chat", chat(stream=True),
                 headers, token, timeout=30)
    assert r.status == 200
    assert len(r.body) < 1 << 20, len(r.body)
    no_fragments(r.body)
    assert b"before" in r.body and (b"uninspectable_response" in r.body or b"withheld" in r.body), r.body[-500:]
    assert rig.record(jti)["withheld"] == "unparseable"
