"""FlinkClient over real TLS: a loopback HTTPS server (stdlib) that demands a client certificate
signed by a test CA, standing in for a TLS-terminating proxy in front of Flink's REST API.
Certificates are made here with `cryptography`; the client's key is read via its SecretRef path."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from flink_gitops.clock import FakeClock
from flink_gitops.errors import ConfigError
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.errors import FlinkNoAnswer, FlinkNotSent
from flink_gitops.flink.retry import RetryPolicy
from flink_gitops.secrets import SecretRef
from flink_gitops.settings import ClusterAuth, ClusterConfig, ClusterTls

TOKEN = "tls-bearer-T0KEN"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _issue(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if not ca:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(
    path: Path, cert: x509.Certificate | None = None, key: ec.EllipticCurvePrivateKey | None = None
) -> Path:
    if cert is not None:
        path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None:
        path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return path


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    d = tmp_path_factory.mktemp("pki")
    ca_key, server_key, client_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _issue("test-ca", ca_key, "test-ca", ca_key, ca=True)
    return Pki(
        ca=_write(d / "ca.pem", ca),
        server_cert=_write(d / "server.pem", _issue("flink", server_key, "test-ca", ca_key, ca=False)),
        server_key=_write(d / "server.key", key=server_key),
        client_cert=_write(d / "client.pem", _issue("flink-gitops", client_key, "test-ca", ca_key, ca=False)),
        client_key=_write(d / "client.key", key=client_key),
    )


class _Handler(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []  # noqa: RUF012 - (client CN, Authorization) per request

    def do_GET(self) -> None:
        peer = self.connection.getpeercert()
        cn = dict(x[0] for x in peer["subject"])["commonName"] if peer else ""
        type(self).seen.append((cn, self.headers.get("Authorization", "")))
        body = json.dumps({"taskmanagers": 1, "slots-total": 4, "slots-available": 4}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_url(pki: Pki) -> Iterator[str]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    ctx.load_verify_locations(pki.ca)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _config(url: str, tls: ClusterTls, token_file: Path) -> ClusterConfig:
    return ClusterConfig(
        url=url, tls=tls, max_attempts=1, auth=ClusterAuth(kind="bearer", token=SecretRef(file=token_file))
    )


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    return path


def test_mutual_tls_with_custom_ca_and_bearer(pki: Pki, https_url: str, token_file: Path) -> None:
    tls = ClusterTls(ca_file=pki.ca, cert_file=pki.client_cert, key=SecretRef(file=pki.client_key))
    _Handler.seen.clear()
    with FlinkClient.from_config("tls", _config(https_url, tls, token_file), clock=FakeClock()) as client:
        assert client.overview().slots_total == 4
        assert TOKEN not in repr(client)
    assert _Handler.seen == [("flink-gitops", f"Bearer {TOKEN}")]


def test_server_refuses_a_client_without_certificate(pki: Pki, https_url: str, token_file: Path) -> None:
    cfg = _config(https_url, ClusterTls(ca_file=pki.ca), token_file)
    with (
        FlinkClient.from_config("tls", cfg, clock=FakeClock()) as client,
        pytest.raises((FlinkNotSent, FlinkNoAnswer)) as info,  # TLS 1.3: refused after the handshake
    ):
        client.overview()
    assert TOKEN not in str(info.value)


def test_unknown_ca_is_refused_unless_verify_is_off(pki: Pki, https_url: str, token_file: Path) -> None:
    client_cert = {"cert_file": pki.client_cert, "key": SecretRef(file=pki.client_key)}
    strict = _config(https_url, ClusterTls(**client_cert), token_file)  # system trust store only
    with FlinkClient.from_config("tls", strict, clock=FakeClock()) as client, pytest.raises(FlinkNotSent):
        client.overview()
    lax = _config(https_url, ClusterTls(verify=False, **client_cert), token_file)
    with FlinkClient.from_config("tls", lax, clock=FakeClock()) as client:
        assert client.overview().taskmanagers == 1


def test_encrypted_or_mismatched_key_is_a_config_error(pki: Pki, tmp_path: Path, token_file: Path) -> None:
    wrong_key = _write(tmp_path / "other.key", key=ec.generate_private_key(ec.SECP256R1()))
    tls = ClusterTls(ca_file=pki.ca, cert_file=pki.client_cert, key=SecretRef(file=wrong_key))
    with pytest.raises(ConfigError, match="cannot load TLS material") as info:
        FlinkClient.from_config("tls", _config("https://127.0.0.1:1", tls, token_file), clock=FakeClock())
    assert "PRIVATE KEY" not in str(info.value)


def test_retry_policy_from_config_is_used(pki: Pki, https_url: str, token_file: Path) -> None:
    cfg = _config(https_url, ClusterTls(ca_file=pki.ca), token_file).model_copy(update={"max_attempts": 3})
    clock = FakeClock()
    with (
        FlinkClient.from_config("tls", cfg, clock=clock) as client,
        pytest.raises((FlinkNotSent, FlinkNoAnswer)),
    ):
        client.overview()
    assert isinstance(client.retry, RetryPolicy)
    assert client.retry.max_attempts == 3
    assert len(clock.sleeps) == 2
