"""TLS for the server's two ports: gRPC credentials and the direct lane's SSL context, from PEM files."""
from __future__ import annotations

import ipaddress
import logging
import ssl
from dataclasses import dataclass

import grpc

log = logging.getLogger("remote_autograd.server")


@dataclass(frozen=True)
class TLS:
    """The server's certificate chain and key, and (mutual TLS) the CA its clients' certificates must chain to."""

    cert_file: str
    key_file: str
    client_ca_file: str | None = None

    def grpc_credentials(self) -> grpc.ServerCredentials:
        with open(self.cert_file, "rb") as f:
            chain = f.read()
        with open(self.key_file, "rb") as f:
            key = f.read()
        client_ca = None
        if self.client_ca_file:
            with open(self.client_ca_file, "rb") as f:
                client_ca = f.read()
        return grpc.ssl_server_credentials([(key, chain)], root_certificates=client_ca,
                                           require_client_auth=client_ca is not None)

    def lane_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.cert_file, self.key_file)
        if self.client_ca_file:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(self.client_ca_file)
        return ctx


def from_flags(cert: str, key: str, client_ca: str) -> TLS | None:
    """The TLS of the command line (all empty: none); a half-given pair is an error."""
    if not (cert or key or client_ca):
        return None
    if not (cert and key):
        raise ValueError("TLS needs both --tls-cert and --tls-key (--tls-client-ca adds mutual TLS)")
    return TLS(cert, key, client_ca or None)


def warn_if_exposed(host: str, tls: TLS | None, keys: bool = False) -> None:
    """A server reachable from other machines without TLS hands every token and tensor to the network;
    without API keys, anyone who reaches it creates sessions."""
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not keys:
        log.warning("NO API KEYS ON %s: anyone who reaches the port creates sessions and takes the server's "
                    "memory and threads; give --api-keys FILE (remote-autograd keygen TENANT makes a key)", host)
    if not loopback and tls is None:
        log.warning("SERVING IN PLAINTEXT ON %s: session tokens, every tensor and every batch cross the network "
                    "unencrypted, and anyone who reaches the port can create sessions; give --tls-cert and "
                    "--tls-key (and --tls-client-ca for client certificates), or bind 127.0.0.1 behind a TLS "
                    "gateway", host)
