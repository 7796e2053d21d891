"""What TLS costs a remote step: the chain and MLP steps on a plaintext server and on a TLS server.

    python benchmarks/tls_cost.py [--rounds 7] [--steps 150] [--direct | --grpc]

Two servers run side by side (one with a certificate made for the run, by the `cryptography`
package); each round times each side in a client process of its own, the order alternating. The
report: per workload the median step of each side and the median and range of the per-round ratio
TLS / plaintext.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import subprocess
import sys
import tempfile

from _steps import report

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = r"""
import json, sys
import remote_autograd as ra
from _steps import median_steps
address, ca, steps, direct = sys.argv[1], sys.argv[2] or None, int(sys.argv[3]), sys.argv[4] == "1"
print(json.dumps(median_steps(lambda: ra.connect(address, root_certificates=ca, direct=direct), steps)))
"""


def make_certificate(folder: str) -> tuple[str, str]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return cert_path, key_path


def start(*flags: str):
    proc = subprocess.Popen([sys.executable, "-m", "remote_autograd.server", "--port", "0", "--log-level",
                             "WARNING", *flags], stdout=subprocess.PIPE, text=True)
    return proc, proc.stdout.readline().split()[-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--grpc", action="store_true", help="batches on the gRPC stream, not the direct lane")
    args = p.parse_args()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([HERE, os.environ.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory() as tmp:
        cert, key = make_certificate(tmp)
        plain, plain_address = start()
        secure, secure_address = start("--tls-cert", cert, "--tls-key", key)
        sides = {"plaintext": (plain_address, ""), "tls": (secure_address, cert)}
        runs: dict = {"plaintext": [], "tls": []}
        try:
            for r in range(args.rounds):
                for side in (("plaintext", "tls") if r % 2 == 0 else ("tls", "plaintext")):
                    address, ca = sides[side]
                    done = subprocess.run([sys.executable, "-c", CHILD, address, ca, str(args.steps),
                                           "0" if args.grpc else "1"], env=env, capture_output=True, text=True,
                                          check=True)
                    runs[side].append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(f"round {r + 1}/{args.rounds}: " + ", ".join(
                    f"{w} {runs['tls'][-1][w] / runs['plaintext'][-1][w]:.3f}" for w in ("chain", "mlp")), flush=True)
        finally:
            for proc in (plain, secure):
                proc.terminate()
                proc.wait()
    print(f"\nTLS / plaintext on the {runs['tls'][0]['wire']}, {args.rounds} rounds of {args.steps} steps")
    report(runs, "plaintext", "tls")


if __name__ == "__main__":
    main()
