"""TLS for a session's channel and its direct lane: the client's trust roots and, for mutual TLS, its certificate."""
from __future__ import annotations

import contextlib
import os
import ssl
import tempfile
from dataclasses import dataclass

import grpc


def _pem(value) -> bytes | None:
    """PEM data given as bytes, as text, or as the path of a file holding it."""
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    text = str(value)
    if text.lstrip().startswith("-----BEGIN"):
        return text.encode()
    with open(os.path.expanduser(text), "rb") as f:
        return f.read()


@dataclass(frozen=True)
class ClientTLS:
    """``root``: CA certificates the server's must chain to (None: the system's); ``cert`` and
    ``key``: this client's certificate chain and key, for a server that asks for one."""

    root: bytes | None = None
    cert: bytes | None = None
    key: bytes | None = None

    def grpc_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.root, private_key=self.key,
                                            certificate_chain=self.cert)

    def lane_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=self.root.decode() if self.root else None)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        # the certificates gRPC's channel accepts, the lane accepts too: Python 3.13 made its default
        # context strict (RFC 5280 extensions a private CA's certificates often lack), gRPC is not
        ctx.verify_flags &= ~getattr(ssl, "VERIFY_X509_STRICT", 0)
        if self.cert is not None:
            # ssl reads a certificate chain from files only: written for the call, readable by this user alone
            with _private_file(self.cert) as cert, _private_file(self.key or self.cert) as key:
                ctx.load_cert_chain(cert, key)
        return ctx


@contextlib.contextmanager
def _private_file(data: bytes):
    fd, path = tempfile.mkstemp(prefix="remote-autograd-", suffix=".pem")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        yield path
    finally:
        os.unlink(path)


def client_tls(tls: bool | None, root_certificates=None, client_cert=None, client_key=None) -> ClientTLS | None:
    """The TLS a session asked for: with ``tls=True``, or any certificate given (or their
    REMOTE_AUTOGRAD_TLS, _TLS_CA, _TLS_CERT, _TLS_KEY environment variables); None for plaintext."""
    env = os.environ.get
    root_certificates = root_certificates or env("REMOTE_AUTOGRAD_TLS_CA") or None
    client_cert = client_cert or env("REMOTE_AUTOGRAD_TLS_CERT") or None
    client_key = client_key or env("REMOTE_AUTOGRAD_TLS_KEY") or None
    if tls is None:
        tls = env("REMOTE_AUTOGRAD_TLS", "").strip().lower() in ("1", "true", "yes", "on") or any(
            v is not None for v in (root_certificates, client_cert, client_key))
    if not tls:
        return None
    if (client_cert is None) != (client_key is None):
        raise ValueError("a client certificate needs its key: give both client_cert and client_key")
    return ClientTLS(_pem(root_certificates), _pem(client_cert), _pem(client_key))
