"""Request bodies framed by hand, over a raw socket to a real gunicorn (issue 11, row 6).

gunicorn unframes a chunked body and tells the app so (`wsgi.input_terminated`); the app must
hold it to the same limit as a Content-Length (413), and a chunk gunicorn cannot read must be
a 400 problem, not its bare 500 page.
"""

from __future__ import annotations

import contextlib
import json
import socket

import pytest

from tests.conftest import LiveServer, org_payload

pytestmark = pytest.mark.slow

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def server(database_url):
    live = LiveServer(database_url, workers=2)
    yield live
    live.stop()


def exchange(server, head: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send one request as raw bytes; return the status, headers and body of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as sock:
        # The server may answer and close before reading all of a refused body.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head.encode("latin-1") + body)
        answer = b""
        while True:
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                break
            if not data:
                break
            answer += data
    header_text, _, content = answer.partition(b"\r\n\r\n")
    lines = header_text.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {name.lower(): value.strip() for name, _, value in
               (line.partition(":") for line in lines[1:])}
    return status, headers, content


def head(method: str, path: str, headers: dict[str, str], **extra: str) -> str:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close",
             "Content-Type: application/json", *(f"{k}: {v}" for k, v in headers.items()),
             *(f"{k.replace('_', '-')}: {v}" for k, v in extra.items())]
    return "\r\n".join(lines) + "\r\n\r\n"


def chunks(data: bytes, size: int = 64 * 1024) -> bytes:
    """Frame `data` as HTTP/1.1 chunks."""
    framed = b"".join(b"%x\r\n%s\r\n" % (len(part), part)
                      for part in (data[i:i + size] for i in range(0, len(data), size)))
    return framed + b"0\r\n\r\n"


def problem_of(status, headers, content, expected: int) -> dict:
    assert status == expected, content[:300]
    assert headers["content-type"].startswith("application/problem+json")
    return json.loads(content)


def test_a_chunked_body_within_the_limit_is_read(server, admin_headers):
    body = json.dumps(org_payload(name="Chunked Ltd")).encode()
    status, _headers, content = exchange(
        server, head("POST", "/api/v1/organizations", admin_headers,
                     Transfer_Encoding="chunked"), chunks(body, 16))
    assert status == 201, content[:300]


def test_a_chunked_body_past_the_limit_is_413_as_with_content_length(server, admin_headers):
    body = json.dumps(org_payload(name="Padded Ltd")).encode() + b" " * (3 * MIB)
    answer = exchange(server, head("POST", "/api/v1/organizations", admin_headers,
                                   Transfer_Encoding="chunked"), chunks(body))
    problem_of(*answer, 413)
    answer = exchange(server, head("POST", "/api/v1/organizations", admin_headers,
                                   Content_Length=str(len(body))), body)
    problem_of(*answer, 413)


@pytest.mark.parametrize("framing", [
    b"zz\r\n{}\r\n0\r\n\r\n",                # not hexadecimal
    b"2;\x01\r\n{}\r\n0\r\n\r\n",            # a control character in an extension
    b"2\r\n{}XX0\r\n\r\n",                   # no CRLF after the chunk
], ids=["size", "extension", "terminator"])
def test_a_malformed_chunk_is_a_400_problem(server, admin_headers, framing):
    status, headers, content = exchange(
        server, head("POST", "/api/v1/organizations", admin_headers,
                     Transfer_Encoding="chunked"), framing)
    assert status == 400, content[:300]
    assert headers["content-type"].startswith("application/problem+json"), content[:300]


def test_a_deeply_nested_body_is_a_400_problem(server, admin_headers):
    body = b"[" * 100_000 + b"]" * 100_000
    answer = exchange(server, head("POST", "/api/v1/referrals", admin_headers,
                                   Content_Length=str(len(body))), body)
    assert "nested" in problem_of(*answer, 400)["detail"]


def test_a_portal_post_over_the_limit_is_a_413_page(server):
    body = b"x=" + b"a" * (2 * MIB)
    status, headers, _content = exchange(server, (
        "POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nAccept: text/html\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"), body)
    assert status == 413
    assert headers["content-type"].startswith("text/html")
