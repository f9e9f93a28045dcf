"""uvicorn's HTTP protocols, answering a request they can't parse as the app answers: JSON.

uvicorn refuses an HTTP request its parser can't read (a request line or headers over
llhttp's 80 KiB, such as a GET whose ``query`` parameter is too long; a malformed request line
or header) before the app sees it, with a plain-text ``Invalid HTTP request received.``. The
subclasses here send the same 400 with a GraphQL-shaped JSON body and a code, like every other
refusal. ``uvicorn_options`` (every start path of the app) names :data:`PROTOCOL`.
"""

from __future__ import annotations

import json

from uvicorn.protocols.http.h11_impl import H11Protocol

MESSAGE = (
    "The HTTP request could not be read: a malformed request line or header, or a URL or "
    "headers too long (over 80 KiB). Send long documents and variables in a POST body."
)
BODY = json.dumps(
    {"data": None, "errors": [{"message": MESSAGE, "extensions": {"code": "BAD_USER_INPUT"}}]}
).encode()


def _response(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 400 Bad Request\r\n"]
    lines += [name + b": " + value + b"\r\n" for name, value in default_headers]
    lines += [
        b"content-type: application/json\r\n",
        b"content-length: " + str(len(BODY)).encode("ascii") + b"\r\n",
        b"cache-control: no-store\r\n",
        b"connection: close\r\n",
        b"\r\n",
        BODY,
    ]
    return b"".join(lines)


class H11JSONProtocol(H11Protocol):
    """h11's protocol, its 400 for an unreadable request in JSON."""

    def send_400_response(self, msg: str) -> None:
        """The JSON 400 instead of uvicorn's plain text; the connection closes."""
        self.transport.write(_response(self.server_state.default_headers))
        self.transport.close()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - httptools comes with uvicorn[standard]
    PROTOCOL = "app.wire:H11JSONProtocol"
else:

    class HttpToolsJSONProtocol(HttpToolsProtocol):
        """httptools' protocol (uvicorn's choice when it is installed), its 400 in JSON."""

        def send_400_response(self, msg: str) -> None:
            """The JSON 400 instead of uvicorn's plain text; the connection closes."""
            self.transport.write(_response(self.server_state.default_headers))
            self.transport.close()

    PROTOCOL = "app.wire:HttpToolsJSONProtocol"
