"""The HTTP/1.1 protocol `weightgen serve` runs: uvicorn's httptools protocol with the bounds
uvicorn lacks, for a service exposed without a proxy in front of it.

- The request head (request line and headers) is counted as it arrives, before httptools
  buffers it: past `max_head` bytes the answer is 414 (the request line has not ended) or 431,
  and no more of it is read. httptools has no limit of its own (a 64 MiB header line was read
  whole); h11's `max_incomplete_event_size` would be one, but h11 parses in Python and is
  slower for every small GET.
- A head must arrive within `head_timeout` seconds of its first byte, or of the connection's
  opening (nginx's client_header_timeout): then 408, or a silent close when no byte came.
  uvicorn's own `timeout_keep_alive` only covers idle time between two requests.
- Malformed requests (the parser's refusals) get the same problem+json as the app's errors,
  where uvicorn answers plain text.

Every refusal here is a problem+json document with `Connection: close`, an `X-Request-ID` and
its `instance`, and a JSON log line; the app never sees the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from service.api.problems import MEDIA_TYPE, document

log = logging.getLogger("weightgen.access")
# After a refusal, what the client still sends is read and dropped for this long before the
# connection closes: closing with unread bytes would reset it, and the answer with it.
LINGER = 2.0


class BoundedHttpTools(HttpToolsProtocol):
    """HttpToolsProtocol with a bounded head, in size and in time (see the module)."""

    max_head: ClassVar[int] = 32 << 10
    head_timeout: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_left = self.max_head  # bytes the current head may still take
        self.in_head = True  # the bytes now arriving belong to a request head
        self.line_ended = False  # that head's request line has ended: a 431, not a 414
        self.timer: asyncio.TimerHandle | None = None  # the head's deadline, or the linger
        self.refused = False  # answered here: whatever else the client sends is dropped
        self.pending: tuple[int, str, str] | None = None  # a refusal that waits its turn

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        self._unset_keepalive_if_required()
        start, size = 0, len(data)
        while start < size and not self.refused and not self.transport.is_closing():
            if self.in_head and self.timer is None:
                self._arm()
            # fed a head's worth at most, so a head that follows a body in one read is counted
            # from at most max_head bytes past its start (2 x max_head at worst)
            end = min(size, start + (self.head_left if self.in_head else self.max_head))
            counted = self.in_head
            if counted:
                self.head_left -= end - start
                self.line_ended = self.line_ended or data.find(b"\n", start, end) >= 0
            self._feed(data if end - start == size else memoryview(data)[start:end])
            start = end
            if counted and self.in_head and self.head_left <= 0 and not self.refused:
                self._too_large()

    def _feed(self, data: bytes | memoryview) -> None:
        """HttpToolsProtocol.data_received, with the parser's reason kept for the answer."""
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
        except httptools.HttpParserError as exc:
            # llhttp's reason is a fixed phrase ("Invalid header value char", ...), no input
            reason = str(exc)[:200] or "the request could not be parsed"
            self._refuse(400, "malformed-request", f"the request is not valid HTTP/1.1: {reason}")

    def _too_large(self) -> None:
        limit = f"{self.max_head} bytes (WEIGHTGEN_MAX_HEADER_BYTES)"
        if self.line_ended:
            detail = f"the request line and headers are longer than {limit}"
            self._refuse(431, "header-fields-too-large", detail)
        else:
            self._refuse(414, "uri-too-long", f"the request line is longer than {limit}")

    def on_headers_complete(self) -> None:
        self.in_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self.in_head, self.head_left, self.line_ended = True, self.max_head, False

    def _arm(self) -> None:
        self.timer = self.loop.call_later(self.head_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None

    def _head_timed_out(self) -> None:
        self.timer = None
        if self.transport.is_closing():
            return
        if self.head_left == self.max_head and self._idle():
            self.transport.close()  # not a byte of a request: nothing to answer
            return
        detail = (
            f"the request line and headers did not arrive within {self.head_timeout:g} s "
            "(WEIGHTGEN_HEADER_TIMEOUT)"
        )
        self._refuse(408, "request-timeout", detail)

    def _idle(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _answering(self) -> bool:
        """An earlier request of this connection is still being answered: a refusal of what
        follows it waits for that answer to end (HTTP/1.1 answers in order)."""
        if self._idle():
            return False
        return self.cycle.response_started or self.in_head or bool(self.pipeline)

    def _refuse(self, status: int, slug: str, detail: str) -> None:
        """Answer `status` and close, now or once the answer under way ends."""
        self.refused = True
        self._disarm()
        if self._answering():
            self.pending = (status, slug, detail)
            self.flow.pause_reading()
            return
        if not self._idle():  # the refused request's own body was bad: its app task is told
            self.cycle.disconnected = True  # the client left, and what it sends is dropped
            self.cycle.message_event.set()
        self._answer(status, slug, detail)

    def on_response_complete(self) -> None:
        if self.pending is None:
            super().on_response_complete()
            return
        self.server_state.total_requests += 1
        self.pipeline.clear()  # requests queued behind the refused bytes get no answer
        if not self.transport.is_closing():
            self._answer(*self.pending)

    def _answer(self, status: int, slug: str, detail: str) -> None:
        rid = uuid.uuid4().hex
        doc = document(status, slug, detail, f"urn:weightgen:request:{rid}")
        body = json.dumps(doc, separators=(",", ":"))
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content += [name, b": ", value, b"\r\n"]
        content += [
            f"content-type: {MEDIA_TYPE}\r\ncontent-length: {len(body)}\r\n".encode(),
            f"x-request-id: {rid}\r\nconnection: close\r\n\r\n{body}".encode(),
        ]
        self.transport.write(b"".join(content))
        if self.transport.can_write_eof():
            self.transport.write_eof()  # the client reads the answer, then sees the end
            self.timer = self.loop.call_later(LINGER, self.transport.close)
        else:
            self.transport.close()
        fields = {"request_id": rid, "status": status, "route": "protocol", "detail": detail}
        log.info("refused", extra={"fields": fields})


def bounded(max_head: int, head_timeout: float) -> type[BoundedHttpTools]:
    """The protocol class for uvicorn's `http=`, with these bounds."""

    class Configured(BoundedHttpTools):
        pass

    Configured.max_head, Configured.head_timeout = max_head, head_timeout
    return Configured
