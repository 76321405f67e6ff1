"""Mutual-TLS credentials for a private Dask cluster (the Compose file's ``dask-certs`` service).

    python -m rs5m.core.dask_tls --out /opt/rs5m/tls [--host dask-scheduler --host localhost]

Writes ``ca.pem`` (a fresh self-signed CA certificate) and ``node.pem`` / ``node-key.pem`` (one
certificate + key signed by it, for scheduler, workers and clients alike) plus ``dask-tls.env``, the
Dask settings that use them. The CA's private key is never written: once the node certificate is
signed nobody can mint another, so only processes given ``node-key.pem`` can join or submit work (Dask
TLS verifies the peer's certificate in both directions). Existing credentials are kept (idempotent);
``--force`` replaces them. Regenerating means restarting every container that holds the old ones.
"""

from __future__ import annotations

import argparse
import datetime as dt
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

FILES = ("ca.pem", "node.pem", "node-key.pem", "dask-tls.env")
VALID_DAYS = 825


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _san(hosts: list[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for h in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            names.append(x509.DNSName(h))
    return x509.SubjectAlternativeName(names)


def make_credentials(hosts: list[str]) -> tuple[bytes, bytes, bytes]:
    """``(ca_pem, node_cert_pem, node_key_pem)``: a new CA and one node certificate for ``hosts``."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("rs5m dask CA"))
        .issuer_name(_name("rs5m dask CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    usage = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
    node = (
        x509.CertificateBuilder()
        .subject_name(_name("rs5m dask node"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
        .add_extension(_san(hosts), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    pem = serialization.Encoding.PEM
    return ca.public_bytes(pem), node.public_bytes(pem), key_pem


def tls_env(folder: str | os.PathLike[str]) -> dict[str, str]:
    """Dask settings (environment variables) that require mutual TLS with the credentials in ``folder``."""
    d = Path(folder)
    env = {
        "DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(d / "ca.pem"),
    }
    for role in ("SCHEDULER", "WORKER", "CLIENT"):
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__CERT"] = str(d / "node.pem")
        env[f"DASK_DISTRIBUTED__COMM__TLS__{role}__KEY"] = str(d / "node-key.pem")
    return env


def write_credentials(out: str | os.PathLike[str], hosts: list[str], force: bool = False) -> bool:
    """Write the credentials under ``out`` unless all exist (``force`` replaces); True when written."""
    out = Path(out)
    if not force and all((out / f).is_file() for f in FILES):
        return False
    out.mkdir(parents=True, exist_ok=True)
    ca, cert, key = make_credentials(hosts)
    (out / "ca.pem").write_bytes(ca)
    (out / "node.pem").write_bytes(cert)
    fd = os.open(out / "node-key.pem", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    lines = [f"{k}={v}" for k, v in tls_env(out).items()]
    (out / "dask-tls.env").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return True


def main(argv: list[str] | None = None) -> int:
    """Command line: write credentials (or keep existing ones) and say which."""
    ap = argparse.ArgumentParser(prog="python -m rs5m.core.dask_tls", description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for ca.pem, node.pem, node-key.pem, dask-tls.env")
    ap.add_argument("--host", action="append", help="a name or IP the scheduler is reached by (repeatable)")
    ap.add_argument("--force", action="store_true", help="replace existing credentials")
    args = ap.parse_args(argv)
    hosts = args.host or ["dask-scheduler", "localhost", "127.0.0.1"]
    wrote = write_credentials(args.out, hosts, force=args.force)
    print(f"{'wrote' if wrote else 'kept existing'} Dask TLS credentials in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
