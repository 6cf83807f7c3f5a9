"""An upstream whose replies a test writes byte for byte: status, headers (a content type may
be absent), the body's pieces (each its own network write), how the body ends (content-length,
chunked, or the connection closing) and whether the upstream cuts the reply short (FIN before
the chunked terminator, or a TCP reset).

It is a `RecordingUpstream` (the raw HTTP/1.1 server of recording_upstream.py, which records
every request it receives) whose answer is chosen per request by the `x-script` request
header: a `Reply`, or a function of the received request returning one. Without the header
it answers like the OpenAI chat completions API (`openai_chat`): JSON, or an SSE stream that
ends with a usage-only chunk exactly when the request asked for it."""
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Callable

from recording_upstream import Received, RecordingUpstream


@dataclass
class Reply:
    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[bytes] = field(default_factory=list)
    # How the body's end is marked: "length" (content-length), "chunked", or "close" (the
    # connection closes after the body: a complete HTTP/1.1 reply without a length).
    framing: str = "length"
    # None: the reply is complete. "fin": the connection closes before the body's end
    # (chunked: no terminating chunk); "rst": the connection is reset after the chunks.
    cut: str | None = None
    # Seconds between network writes (so Envoy sees the pieces in separate callbacks).
    pause: float = 0.02
    # Chunked replies end with these trailers (Envoy's cluster needs enable_trailers).
    trailers: list[tuple[str, str]] = field(default_factory=list)


def sse(events: list[dict | str], sep: str = "\n") -> list[bytes]:
    """One network write per event: `data: <json>` ended with `sep` twice (a blank line), in
    the framing a test chooses (`\\n`, `\\r`, `\\r\\n`). A str event is sent as written."""
    out = []
    for e in events:
        data = e if isinstance(e, str) else json.dumps(e)
        out.append(f"data: {data}{sep}{sep}".encode())
    return out


def chat_chunk(delta: dict | None = None, finish: str | None = None, model: str = "mock-gpt", **extra) -> dict:
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1764547200, "model": model,
            "choices": [{"index": 0, "delta": delta if delta is not None else {}, "finish_reason": finish}], **extra}


USAGE = {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}


def usage_chunk(usage: dict | None = None) -> dict:
    return {"id": "chatcmpl-scripted", "object": "chat.completion.chunk", "created": 1764547200,
            "model": "mock-gpt", "choices": [], "usage": usage or USAGE}


def openai_chat(rec: Received, words: tuple[str, ...] = ("Hello", " from", " the", " scripted", " upstream."),
                sep: str = "\n") -> Reply:
    """The OpenAI chat completions API as the SDK expects it: a JSON completion, or (with
    `"stream": true`) content deltas, a finish chunk, the usage-only chunk only when
    `stream_options.include_usage` is set, and `data: [DONE]`."""
    try:
        req = rec.json()
    except ValueError:
        req = {}
    if not req.get("stream"):
        body = json.dumps({"id": "chatcmpl-scripted", "object": "chat.completion", "created": 1764547200,
                           "model": "mock-gpt", "choices": [{"index": 0, "finish_reason": "stop", "message": {
                               "role": "assistant", "content": "".join(words)}}], "usage": USAGE}).encode()
        return Reply(headers=[("content-type", "application/json")], chunks=[body])
    events: list[dict | str] = [chat_chunk({"role": "assistant", "content": ""})]
    events += [chat_chunk({"content": w}) for w in words]
    events.append(chat_chunk(finish="stop"))
    if (req.get("stream_options") or {}).get("include_usage"):
        events.append(usage_chunk())
    events.append("[DONE]")
    return Reply(headers=[("content-type", "text/event-stream")], chunks=sse(events, sep), framing="chunked")


class ScriptedUpstream(RecordingUpstream):
    def __init__(self, host: str = "127.0.0.1"):
        self.scripts: dict[str, Reply | Callable[[Received], Reply]] = {}
        super().__init__(host)

    def script(self, name: str, reply: Reply | Callable[[Received], Reply]) -> dict:
        """Registers a reply; returns the request header that selects it."""
        self.scripts[name] = reply
        return {"x-script": name}

    def last_json(self, target_contains: str = "") -> dict:
        """The JSON body of the last complete request received (whose target contains this)."""
        got = [r for r in self.received() if r.complete and target_contains in r.target]
        assert got, [r.target for r in self.received()]
        return got[-1].json()

    def _reply(self, conn: socket.socket, rec: Received):
        try:
            self._send(conn, rec)
        except OSError:
            # Envoy gave up on the reply (e.g. a local error reply): nothing more to send.
            pass

    def _send(self, conn: socket.socket, rec: Received):
        chosen = self.scripts.get(rec.header("x-script") or "", openai_chat)
        reply = chosen(rec) if callable(chosen) else chosen
        head = f"HTTP/1.1 {reply.status} Scripted\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply.headers)
        if reply.framing == "length":
            head += f"content-length: {sum(len(c) for c in reply.chunks)}\r\n"
        elif reply.framing == "chunked":
            head += "transfer-encoding: chunked\r\n"
            if reply.trailers:
                head += f"trailer: {', '.join(k for k, _ in reply.trailers)}\r\n"
        else:
            head += "connection: close\r\n"
        conn.sendall((head + "\r\n").encode("latin-1"))
        for piece in reply.chunks:
            time.sleep(reply.pause)
            if reply.framing == "chunked":
                piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
            conn.sendall(piece)
        time.sleep(reply.pause)
        if reply.cut == "rst":
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            return
        if reply.cut == "fin" or reply.framing == "close":
            conn.shutdown(socket.SHUT_RDWR)
            conn.close()
            return
        if reply.framing == "chunked":
            conn.sendall(b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply.trailers).encode() + b"\r\n")
