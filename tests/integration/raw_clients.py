"""Clients that send exactly what a test says: an h2c (prior knowledge) client that can end a
request body with a trailers frame, and a raw HTTP/1.1 client that sends request targets
byte for byte (urllib would quote or normalise them) and can send chunked trailers."""
import json
import socket
import time
from dataclasses import dataclass, field


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes
    trailers: dict = field(default_factory=dict)
    reset: bool = False

    def json(self):
        return json.loads(self.body)

    @property
    def code(self) -> str | None:
        """error.code of an OpenAI-shaped error body, else None."""
        try:
            return json.loads(self.body)["error"]["code"]
        except (ValueError, KeyError, TypeError):
            return None


def h2_request(port: int, path: str = "/v1/chat/completions", body: bytes | dict | None = None,
               headers: dict | list | None = None, trailers: dict | None = None, method: str = "POST",
               timeout: float = 5.0, authority: str = "127.0.0.1", trailer_delay: float = 0.0) -> Reply:
    """One request on a fresh h2c connection. With `trailers`, the body's last DATA frame does
    not end the stream: a trailers HEADERS frame does (after `trailer_delay` seconds)."""
    import h2.config
    import h2.connection
    import h2.events
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    hdrs = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", method), (":scheme", "http"), (":authority", authority),
                            (":path", path), *hdrs], end_stream=not body and not trailers)
    if body:
        conn.send_data(sid, body, end_stream=not trailers)
    if trailers and not trailer_delay:
        conn.send_headers(sid, list(trailers.items()), end_stream=True)
    sock.sendall(conn.data_to_send())
    if trailers and trailer_delay:
        time.sleep(trailer_delay)
        conn.send_headers(sid, list(trailers.items()), end_stream=True)
        sock.sendall(conn.data_to_send())
    status, resp_headers, resp_body, resp_trailers, reset = 0, {}, b"", {}, False
    deadline = time.time() + timeout
    try:
        done = False
        while not done:
            sock.settimeout(max(0.05, deadline - time.time()))
            data = sock.recv(65536)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    resp_headers = {k.lower(): v for k, v in ev.headers}
                    status = int(resp_headers.get(":status", 0))
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    resp_body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.TrailersReceived) and ev.stream_id == sid:
                    resp_trailers = {k.lower(): v for k, v in ev.headers}
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    done = True
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    reset, done = True, True
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    done = True
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
    except (socket.timeout, TimeoutError):
        raise TimeoutError(f"no complete h2 response within {timeout}s (status {status})") from None
    finally:
        sock.close()
    return Reply(status, resp_headers, resp_body, resp_trailers, reset)


def h1_head(method: str, target: str, headers: dict | list) -> bytes:
    items = list(headers.items()) if isinstance(headers, dict) else list(headers)
    lines = [f"{method} {target} HTTP/1.1", "host: 127.0.0.1", *(f"{k}: {v}" for k, v in items)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def h1_request(port: int, target: str = "/v1/chat/completions", body: bytes | dict | None = None,
               headers: dict | list | None = None, method: str = "POST", trailers: dict | None = None,
               timeout: float = 5.0) -> Reply:
    """One request on a fresh connection (closed after). With `trailers` the body is sent
    chunked and ends with them."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    items.append(("connection", "close"))
    if trailers is not None:
        items += [("transfer-encoding", "chunked"), ("trailer", ", ".join(trailers))]
        data = h1_head(method, target, items)
        if body:
            half = len(body) // 2 or len(body)
            for part in (body[:half], body[half:]):
                if part:
                    data += f"{len(part):x}\r\n".encode() + part + b"\r\n"
        data += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in trailers.items()).encode() + b"\r\n"
    else:
        if body is not None:
            items.append(("content-length", str(len(body))))
        data = h1_head(method, target, items) + (body or b"")
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_h1_response(sock, timeout)


def read_h1_response(sock: socket.socket, timeout: float = 5.0) -> Reply:
    sock.settimeout(timeout)
    buf = bytearray()

    def fill():
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed")
        buf.extend(chunk)

    def line() -> bytes:
        while b"\r\n" not in buf:
            fill()
        i = buf.index(b"\r\n")
        out = bytes(buf[:i])
        del buf[:i + 2]
        return out

    def exactly(n: int) -> bytes:
        while len(buf) < n:
            fill()
        out = bytes(buf[:n])
        del buf[:n]
        return out

    def fields() -> dict:
        out = {}
        while True:
            raw = line()
            if not raw:
                return out
            k, _, v = raw.decode("latin-1").partition(":")
            out[k.strip().lower()] = v.strip()

    status = int(line().split(b" ")[1])
    headers = fields()
    trailers = {}
    if "chunked" in headers.get("transfer-encoding", ""):
        body = b""
        while True:
            size = int(line().split(b";")[0] or b"0", 16)
            if size == 0:
                trailers = fields()
                break
            body += exactly(size + 2)[:-2]
    elif "content-length" in headers:
        body = exactly(int(headers["content-length"]))
    else:
        try:
            while True:
                fill()
        except ConnectionError:
            pass
        body = bytes(buf)
    return Reply(status, headers, body, trailers)
