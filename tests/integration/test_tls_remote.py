"""TLS on both of a server's ports (gRPC and the direct lane) and mutual TLS, with certificates made here."""
from __future__ import annotations

import datetime
import ipaddress
import socket

import numpy as np
import pytest
import remote_autograd as ra
import torch
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from remote_autograd.protos.lane import MAGIC
from remote_helpers import running_server


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(subject: str, issuer_key, issuer_name: str | None = None, *, ca: bool = False,
                 server: bool = False):
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(_name(issuer_name or subject))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = builder.sign(issuer_key or key, hashes.SHA256())
    return key, cert


def _write(path, key, cert) -> tuple[str, str]:
    key_path, cert_path = path.with_suffix(".key"), path.with_suffix(".pem")
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_path), str(key_path)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for 127.0.0.1 and localhost, a client certificate from the CA, and a
    stranger's client certificate from another CA."""
    d = tmp_path_factory.mktemp("pki")
    ca_key, ca = _certificate("test CA", None, ca=True)
    out = {"ca": _write(d / "ca", ca_key, ca)[0]}
    key, cert = _certificate("127.0.0.1", ca_key, "test CA", server=True)
    out["server"] = _write(d / "server", key, cert)
    key, cert = _certificate("a client", ca_key, "test CA")
    out["client"] = _write(d / "client", key, cert)
    other_key, _ = _certificate("another CA", None, ca=True)
    key, cert = _certificate("a stranger", other_key, "another CA")
    out["stranger"] = _write(d / "stranger", key, cert)
    return out


def _steps(lib, n: int = 3):
    rng = np.random.default_rng(0)
    X = lib.tensor(rng.standard_normal((6, 4), dtype=np.float32))
    W = lib.tensor(rng.standard_normal((4, 2), dtype=np.float32), requires_grad=True)
    losses = []
    for _ in range(n):
        loss = (X @ W).tanh().pow(2).mean()
        loss.backward()
        with lib.no_grad():
            W.sub_(0.1 * W.grad)
            W.grad.zero_()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("direct", [True, False], ids=["lane", "grpc"])
def test_a_session_over_tls_computes_as_torch(pki, direct):
    cert, key = pki["server"]
    with running_server("--tls-cert", cert, "--tls-key", key) as server, \
            ra.connect(server.address, root_certificates=pki["ca"], direct=direct) as t:
        np.testing.assert_allclose(_steps(t), _steps(torch), rtol=1e-6)
        assert t.wire.kind == ("lane" if direct else "stream")  # the lane runs over TLS too
        x = t.ones(3, requires_grad=True)
        seen = []
        (x * 2).register_hook(lambda g: seen.append(g.tolist()))  # callbacks over TLS
        watcher = ra.watch(server.address, t.session_id, t.token, root_certificates=pki["ca"])
        y = x * 2
        y.register_hook(lambda g: seen.append(g.tolist()))
        y.sum().backward()
        assert seen == [[1.0, 1.0, 1.0]] and x.grad.tolist() == [2.0] * 3
        assert next(watcher).grad.tolist() == [1.0, 1.0, 1.0]  # watch over TLS


def test_a_plaintext_client_is_refused_by_a_tls_server(pki):
    cert, key = pki["server"]
    with running_server("--tls-cert", cert, "--tls-key", key) as server:
        with pytest.raises(ra.ServerUnavailable):
            ra.connect(server.address, tls=False, timeout=3)
        with ra.connect(server.address, root_certificates=pki["ca"]) as t:
            lane_port = t.wire.lane_port
            assert (t.ones(2) * 2).tolist() == [2.0, 2.0]
        # the lane's port speaks TLS before anything else: a plaintext hello gets no answer of the protocol
        with socket.create_connection(("127.0.0.1", lane_port), timeout=5) as s:
            s.sendall(MAGIC + b"\x00" * 64)
            s.settimeout(5)
            try:
                reply = s.recv(4096)
            except OSError:
                reply = b""
            assert not reply.startswith(MAGIC) and b"LaneWelcome" not in reply


def test_a_client_that_does_not_trust_the_servers_certificate_refuses_it(pki):
    cert, key = pki["server"]
    with running_server("--tls-cert", cert, "--tls-key", key) as server:
        with pytest.raises(ra.ServerUnavailable):
            ra.connect(server.address, tls=True, timeout=3)  # the system's CAs: not this test CA


def test_mutual_tls_refuses_a_client_without_a_certificate_of_its_ca(pki):
    cert, key = pki["server"]
    with running_server("--tls-cert", cert, "--tls-key", key, "--tls-client-ca", pki["ca"]) as server:
        with pytest.raises(ra.ServerUnavailable):
            ra.connect(server.address, root_certificates=pki["ca"], timeout=3)
        stranger_cert, stranger_key = pki["stranger"]
        with pytest.raises(ra.ServerUnavailable):
            ra.connect(server.address, root_certificates=pki["ca"], client_cert=stranger_cert,
                       client_key=stranger_key, timeout=3)
        client_cert, client_key = pki["client"]
        with ra.connect(server.address, root_certificates=pki["ca"], client_cert=client_cert,
                        client_key=client_key) as t:
            np.testing.assert_allclose(_steps(t), _steps(torch), rtol=1e-6)
            assert t.wire.kind == "lane"  # the lane checks the client's certificate too


def test_tls_flags_come_in_pairs():
    from remote_autograd.server.tls import from_flags
    assert from_flags("", "", "") is None
    with pytest.raises(ValueError, match="both --tls-cert and --tls-key"):
        from_flags("cert.pem", "", "")
    from remote_autograd.tls import client_tls
    with pytest.raises(ValueError, match="needs its key"):
        client_tls(True, client_cert="-----BEGIN CERTIFICATE-----\n")
