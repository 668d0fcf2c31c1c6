"""The HTTP side of the Kubernetes API emulator: requests in, JSON or a watch stream out.

Kept apart from the emulator's bookkeeping so each stays readable. Watches are answered
the way the API server answers them: `Transfer-Encoding: chunked`, one JSON event per
line, the stream held open until the request's `timeoutSeconds`. `self_signed` makes the
certificate for the emulator's TLS mode, so the clients' certificate checks run for real.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import tempfile
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


class ApiFailure(Exception):
    """A request the API server refuses: answered as a Status object with `code`."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


class Handler(BaseHTTPRequestHandler):
    emulator: Any
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once, no 40 ms delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        url = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        authorization = self.headers.get("Authorization", "")
        try:
            if self.command == "GET" and query.get("watch") in ("true", "1"):
                self._stream(self.emulator.watch(url.path, query, authorization))
                return
            code, payload = self.emulator.handle(
                self.command, url.path, query, self.headers.get("Content-Type", ""), body,
                authorization, self.headers.get("User-Agent", ""))
        except ApiFailure as failure:
            code, payload = failure.code, {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": failure.message, "reason": failure.reason, "code": failure.code}
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, events: Any) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                self._chunk(event)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _chunk(self, event: dict[str, Any]) -> None:
        line = json.dumps(event).encode() + b"\n"
        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
        self.wfile.flush()

    do_GET = do_PATCH = do_DELETE = do_POST = _serve


def self_signed(host: str) -> tuple[Path, Path, str]:
    """A certificate for `host` signed by itself: (certificate file, key file, PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes-emulator")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256()))
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode()
    directory = Path(tempfile.mkdtemp(prefix="k8s-emulator-tls-"))
    (directory / "tls.crt").write_text(pem)
    (directory / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return directory / "tls.crt", directory / "tls.key", pem
