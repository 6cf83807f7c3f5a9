"""Upstreams that record exactly what reached them, so a test can assert that a refused
request left nothing at all upstream.

`RecordingUpstream` is a raw HTTP/1.1 server on a plain socket (no http.server, which would
normalise what it parses): it records each request as soon as its head has arrived (method,
raw target, headers in order with their original spelling), then its body and trailers, and
counts every byte any connection sent, so even a request Envoy forwarded only in part is seen.
`H2Upstream` does the same over h2c (prior knowledge) with the `h2` package.

Both answer with a small chat completion; a test can choose the reply's content and make the
reply end with trailers (HTTP/1.1 chunked trailers, or an h2 trailers frame)."""
import json
import socket
import threading
import time
from dataclasses import dataclass, field


@dataclass
class Received:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    complete: bool = False

    def header(self, name: str) -> str | None:
        """The first header with exactly this name (case-insensitive, no `_`/`-` folding)."""
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


def chat_reply(content: str = "ok", model: str = "mock-gpt") -> bytes:
    return json.dumps({
        "id": "chatcmpl-rec", "object": "chat.completion", "created": int(time.time()), "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }).encode()


class _Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests: list[Received] = []
        self.bytes_received = 0
        self.connections = 0
        # What to answer: reply content, and trailers to end the reply with (None: no trailers).
        self.reply_content = "ok"
        self.reply_trailers: list[tuple[str, str]] | None = None
        self.reply_status = 200

    def _count(self, n: int):
        with self.lock:
            self.bytes_received += n

    def reset(self):
        with self.lock:
            self.requests.clear()
            self.bytes_received = 0
            self.connections = 0

    def received(self) -> list[Received]:
        with self.lock:
            return list(self.requests)

    def wait_for(self, n: int = 1, timeout: float = 5.0, complete: bool = True) -> list[Received]:
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = self.received()
            if len(got) >= n and (not complete or all(r.complete for r in got[:n])):
                return got
            time.sleep(0.02)
        return self.received()

    def assert_nothing(self, settle: float = 0.3):
        """Nothing of any request reached this upstream (not even a partial head)."""
        time.sleep(settle)
        with self.lock:
            got = [(r.method, r.target) for r in self.requests]
            assert not got and self.bytes_received == 0, (
                f"upstream received {self.bytes_received} bytes: {got}")


class RecordingUpstream(_Recorder):
    def __init__(self, host: str = "127.0.0.1"):
        super().__init__()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        buf = bytearray()
        conn.settimeout(30)

        def fill() -> bool:
            try:
                data = conn.recv(65536)
            except OSError:
                return False
            if not data:
                return False
            self._count(len(data))
            buf.extend(data)
            return True

        def line() -> bytes | None:
            while b"\r\n" not in buf:
                if not fill():
                    return None
            i = buf.index(b"\r\n")
            out = bytes(buf[:i])
            del buf[:i + 2]
            return out

        def exactly(n: int) -> bytes | None:
            while len(buf) < n:
                if not fill():
                    return None
            out = bytes(buf[:n])
            del buf[:n]
            return out

        def fields() -> list[tuple[str, str]] | None:
            out = []
            while True:
                raw = line()
                if raw is None:
                    return None
                if raw == b"":
                    return out
                k, _, v = raw.decode("latin-1").partition(":")
                out.append((k, v.strip()))

        try:
            while True:
                start = line()
                if not start:
                    return
                parts = start.decode("latin-1").split(" ")
                method, target = parts[0], parts[1] if len(parts) > 1 else ""
                rec = Received(method, target, [])
                with self.lock:
                    self.requests.append(rec)
                hdrs = fields()
                if hdrs is None:
                    return
                rec.headers = hdrs
                lower = {k.lower(): v for k, v in hdrs}
                if "chunked" in lower.get("transfer-encoding", "").lower():
                    while True:
                        size_line = line()
                        if size_line is None:
                            return
                        size = int(size_line.split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            trailers = fields()
                            if trailers is None:
                                return
                            rec.trailers = trailers
                            break
                        chunk = exactly(size + 2)
                        if chunk is None:
                            return
                        rec.body += chunk[:-2]
                else:
                    n = int(lower.get("content-length") or 0)
                    body = exactly(n) if n else b""
                    if body is None:
                        return
                    rec.body = body
                rec.complete = True
                self._reply(conn, rec)
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def _reply(self, conn: socket.socket, rec: Received):
        try:
            model = rec.json().get("model", "mock-gpt")
        except (ValueError, AttributeError):
            model = "mock-gpt"
        body = chat_reply(self.reply_content, model if isinstance(model, str) else "mock-gpt")
        head = f"HTTP/1.1 {self.reply_status} OK\r\ncontent-type: application/json\r\n"
        if self.reply_trailers is None:
            conn.sendall((head + f"content-length: {len(body)}\r\n\r\n").encode() + body)
            return
        names = ", ".join(k for k, _ in self.reply_trailers)
        out = (head + f"transfer-encoding: chunked\r\ntrailer: {names}\r\n\r\n").encode()
        # Two chunks, so the body arrives in more than one piece before the trailers.
        half = len(body) // 2
        for part in (body[:half], body[half:]):
            out += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        out += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in self.reply_trailers).encode() + b"\r\n"
        conn.sendall(out)


class H2Upstream(_Recorder):
    """An h2c (prior knowledge) upstream; Envoy's cluster needs http2_protocol_options."""

    def __init__(self, host: str = "127.0.0.1"):
        super().__init__()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self):
        self.running = False
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket):
        import h2.config
        import h2.connection
        import h2.events
        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="latin-1"))
        h2c.initiate_connection()
        conn.sendall(h2c.data_to_send())
        streams: dict[int, Received] = {}
        conn.settimeout(30)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    return
                self._count(len(data))
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        hdrs = [(k, v) for k, v in ev.headers]
                        pseudo = dict(hdrs)
                        rec = Received(pseudo.get(":method", ""), pseudo.get(":path", ""), hdrs)
                        streams[ev.stream_id] = rec
                        with self.lock:
                            self.requests.append(rec)
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id].body += ev.data
                        h2c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.TrailersReceived):
                        streams[ev.stream_id].trailers = [(k, v) for k, v in ev.headers]
                    elif isinstance(ev, h2.events.StreamEnded):
                        rec = streams[ev.stream_id]
                        rec.complete = True
                        body = chat_reply(self.reply_content)
                        h2c.send_headers(ev.stream_id, [(":status", str(self.reply_status)),
                                                        ("content-type", "application/json")])
                        half = len(body) // 2
                        h2c.send_data(ev.stream_id, body[:half])
                        if self.reply_trailers is None:
                            h2c.send_data(ev.stream_id, body[half:], end_stream=True)
                        else:
                            h2c.send_data(ev.stream_id, body[half:])
                            h2c.send_headers(ev.stream_id, self.reply_trailers, end_stream=True)
                out = h2c.data_to_send()
                if out:
                    conn.sendall(out)
        except Exception:  # noqa: BLE001 - a broken connection ends this connection only
            return
        finally:
            try:
                conn.close()
            except OSError:
                pass
