"""Local servers for the demo and the integration tests: an OpenAI-compatible mock LLM that
reports the headers it received, and a JWKS endpoint whose keys and health can be changed
while it runs."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output readable
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/json"):
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class MockLLM(_Quiet):
    """POST /v1/chat/completions (JSON or SSE with "stream": true), GET /v1/models, and any
    other path echoes. Every JSON answer carries `received_headers`."""

    def _headers(self) -> dict:
        return {k.lower(): v for k, v in self.headers.items()}

    _big_cache: dict = {}

    def do_GET(self):
        if self.path.startswith("/big"):
            # Benchmarks: N bytes of text with a secret every ~500 bytes.
            size = int(self.path.partition("size=")[2] or 1048576)
            body = MockLLM._big_cache.get(size)
            if body is None:
                unit = ("the model summarised the quarterly report and listed follow-ups for the team. " * 6
                        + "contact jane.doe@example.com ")
                body = (unit * (size // len(unit) + 1))[:size].encode()
                MockLLM._big_cache[size] = body
            self._send(200, body, "text/plain; charset=utf-8")
            return
        if self.path.startswith("/v1/models"):
            body = {"object": "list", "data": [{"id": "mock-gpt", "object": "model", "owned_by": "llm-warden-demo"}],
                    "received_headers": self._headers()}
        else:
            body = {"path": self.path, "received_headers": self._headers()}
        self._send(200, json.dumps(body).encode())

    def do_POST(self):
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            raw = b""
            while True:
                size = int(self.rfile.readline().strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    break
                raw += self.rfile.read(size)
                self.rfile.readline()
        else:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
        try:
            req = json.loads(raw or b"{}")
        except ValueError:
            req = {}
        model = req.get("model", "mock-gpt")
        text = "Hello from the mock LLM behind llm-warden."
        created = int(time.time())
        # Tests make the upstream reset the connection mid-stream with this header.
        if self.headers.get("x-mock-reset"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.end_headers()
            self.wfile.write(b'data: {"choices": [{"index": 0, "delta": {"content": "partial '
                             b'jane.doe@exam"}}]}\n\n')
            self.wfile.flush()
            import socket
            import struct
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()  # RST
            self.close_connection = True
            return
        # A slow stream (clients disconnecting mid-stream).
        slow = self.headers.get("x-mock-slow")
        if slow:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            try:
                for k in range(int(slow)):
                    chunk = {"choices": [{"index": 0, "delta": {"content": f"word{k} "}, "finish_reason": None}]}
                    self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                    self.wfile.flush()
                    time.sleep(0.05)
                self.wfile.write(b"data: [DONE]\n\n")
            except OSError:
                pass
            self.close_connection = True
            return
        # Tests make the upstream fail fast, without usage, with this header.
        fail = self.headers.get("x-mock-status")
        if fail:
            self._send(int(fail), json.dumps({"error": {"message": "upstream failure", "type": "server_error"}}).encode())
            return
        # Tests choose the reply text (e.g. one containing secrets) with this header; streams
        # send it in 3-character deltas, each event split across two network writes.
        reply = self.headers.get("x-mock-reply")
        if reply is not None:
            reply = reply.encode("latin-1").decode("unicode_escape")
            if req.get("stream"):
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                for k in range(0, len(reply), 3):
                    chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                             "choices": [{"index": 0, "delta": {"content": reply[k:k + 3]}, "finish_reason": None}]}
                    event = f"data: {json.dumps(chunk)}\n\n".encode()
                    half = len(event) // 2
                    self.wfile.write(event[:half])
                    self.wfile.flush()
                    self.wfile.write(event[half:])
                    self.wfile.flush()
                end = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
                self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
                self.wfile.flush()
                self.close_connection = True
                return
            if self.path.startswith("/text"):
                split = int(self.headers.get("x-mock-split-every") or 0)
                if split:
                    # Separate network writes of `split` bytes, cutting through UTF-8
                    # characters, so the filter sees the body in several chunks.
                    data = reply.encode()
                    self.send_response(200)
                    self.send_header("content-type", "text/plain; charset=utf-8")
                    self.send_header("transfer-encoding", "chunked")
                    self.end_headers()
                    for k in range(0, len(data), split):
                        part = data[k:k + split]
                        self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                        self.wfile.flush()
                        time.sleep(0.02)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                    return
                self._send(200, reply.encode(), "text/plain; charset=utf-8")
                return
            if self.headers.get("x-mock-gzip"):
                # An upstream that compresses even when asked not to.
                import gzip
                data = gzip.compress(json.dumps({"choices": [{"message": {"content": reply}}]}).encode())
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-encoding", "gzip")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            body = {"id": "chatcmpl-mock", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}}
            self._send(200, json.dumps(body).encode())
            return
        # Tests make the "model" call a tool with this header (JSON and streamed).
        tool = self.headers.get("x-mock-tool-call")
        if req.get("stream") and tool:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("connection", "close")
            self.end_headers()
            deltas = [{"role": "assistant", "content": "Let me check."},
                      {"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                       "function": {"name": tool, "arguments": ""}}]},
                      {"tool_calls": [{"index": 0, "function": {"arguments": "{\"secret_arg\": 1}"}}]}]
            for d in deltas:
                chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": d, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
                time.sleep(0.02)
            end = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                   "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}
            self.wfile.write(f"data: {json.dumps(end)}\n\ndata: [DONE]\n\n".encode())
            self.wfile.flush()
            self.close_connection = True
            return
        if tool:
            body = {"id": "chatcmpl-mock", "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                        "role": "assistant", "content": None, "tool_calls": [
                            {"id": "call_1", "type": "function",
                             "function": {"name": tool, "arguments": "{\"secret_arg\": 1}"}}]}}]}
            self._send(200, json.dumps(body).encode())
            return
        if req.get("stream"):
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("cache-control", "no-cache")
            self.send_header("connection", "close")
            self.end_headers()
            for word in text.split(" "):
                chunk = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [{"index": 0, "delta": {"content": word + " "}, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            done = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(done)}\n\n".encode())
            # Like OpenAI: the usage chunk only when the request asks for it.
            if (req.get("stream_options") or {}).get("include_usage"):
                usage = {"id": "chatcmpl-mock", "object": "chat.completion.chunk", "created": created, "model": model,
                         "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}}
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        body = {
            "id": "chatcmpl-mock", "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18},
            "received_headers": self._headers(),
            "received_body": req,
            "path": self.path,
        }
        self._send(200, json.dumps(body).encode())


class JwksState:
    """What the JWKS server answers; tests change it while Envoy runs."""

    def __init__(self, doc: dict):
        self.doc = doc
        self.status = 200
        self.raw: bytes | None = None  # serve these bytes instead of the doc
        self.delay = 0.0  # seconds before answering (a slow IdP)
        self.hits = 0


def _jwks_handler(state: JwksState):
    class Jwks(_Quiet):
        def do_GET(self):
            state.hits += 1
            if state.delay:
                time.sleep(state.delay)
            if state.status != 200:
                self._send(state.status, b'{"error":"unavailable"}')
                return
            self._send(200, state.raw if state.raw is not None else json.dumps(state.doc).encode())
    return Jwks


class Server:
    def __init__(self, handler, port: int = 0, host: str = "127.0.0.1"):
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def start_mock_llm(port: int = 0) -> Server:
    return Server(MockLLM, port)


def start_jwks(state: JwksState, port: int = 0) -> Server:
    return Server(_jwks_handler(state), port)
