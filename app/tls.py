"""HTTPS for both launchers: the server's TLS context, from the user's files or a local CA.

`--tls-cert FILE --tls-key FILE` serve the user's certificate. `--tls self-signed` keeps a
small certificate authority of our own in `<data-dir>/tls/` and a server certificate it signs
for this machine's names and addresses; a phone that trusts the CA once (its `ca.crt` is
served under the token) then gets a real secure context on the LAN. The server certificate is
issued again when the names or addresses change or it nears its end; the CA is kept, so the
phone stays trusting.

A CA that a phone trusts could vouch for any site: ours carries X.509 name constraints, so
its key, if stolen, can only sign for this machine's names, localhost, the addresses it was
made for and the private and loopback address ranges (kept so that a new Wi-Fi network does
not need a new CA). A CA made before it had constraints is kept as it is (a new one would
break every phone that trusts it) with a warning saying how to replace it.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import logging
import os
import ssl
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .config import ConfigError, Settings
from .store import make_private_dir, write_private_file

SELF_SIGNED = "self-signed"
TLS_DIR = "tls"
CA_CERT_FILE = "ca.crt"
CA_KEY_FILE = "ca.key"
SERVER_CERT_FILE = "server.crt"
SERVER_KEY_FILE = "server.key"
CA_DAYS = 3650
# Apple refuses TLS server certificates valid for more than 825 days, whoever issued them;
# the public CAs' 398 days is the safe side of it.
SERVER_DAYS = 397
RENEW_BEFORE = datetime.timedelta(days=30)
ALWAYS_SERVED = ("localhost", "127.0.0.1", "::1")
# Where the CA may vouch besides the names and addresses it was made for: loopback, the
# private ranges a LAN uses (RFC 1918, RFC 4193) and the carrier-grade NAT range Tailscale uses.
PERMITTED_NETWORKS = ("127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12",
                      "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")

logger = logging.getLogger(__name__)


class DrainingSSLSocket(ssl.SSLSocket):
    """An SSLSocket whose recv() also returns what OpenSSL already decrypted.

    A TLS record (up to 16 KiB) is decrypted whole; a recv() smaller than it leaves the rest
    inside OpenSSL, where select()/poll() cannot see it. simple_websocket and waitress both
    wait for the socket to become readable before they read again: the rest of a message
    would then wait for the next packet. Taking it all at once keeps the kernel's readiness
    true to what is left to read.
    """

    def recv(self, buflen: int = 1024, flags: int = 0) -> bytes:
        data = super().recv(buflen, flags)
        while data and self._sslobj is not None and (left := self.pending()):
            data += super().recv(left, flags)
        return data


@dataclass(frozen=True)
class CertFiles:
    """The PEM files the server presents; `ca_cert` only for our own CA."""

    cert: str
    key: str
    ca_cert: str | None = None


def tls_dir(data_dir: str) -> str:
    return os.path.join(data_dir, TLS_DIR)


def ca_cert_path(data_dir: str) -> str:
    return os.path.join(tls_dir(data_dir), CA_CERT_FILE)


def cert_files(settings: Settings, names: Iterable[str],
               addresses: Iterable[str]) -> CertFiles | None:
    """The certificate and key to serve, or None for plain HTTP.

    With `--tls self-signed`, the local CA and the server certificate are made or renewed
    first (for `names` and `addresses`, plus localhost and the loopback addresses).

    :raise ConfigError: the TLS settings contradict each other.
    """
    if settings.tls is not None and settings.tls != SELF_SIGNED:
        raise ConfigError(f"--tls: the only mode is '{SELF_SIGNED}' (your own certificate: "
                          "--tls-cert FILE --tls-key FILE)")
    if settings.tls == SELF_SIGNED:
        if settings.tls_cert or settings.tls_key:
            raise ConfigError("--tls self-signed cannot be used with --tls-cert/--tls-key")
        return ensure_local_ca(settings.data_dir, names, addresses)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise ConfigError("--tls-cert and --tls-key must be given together")
    if settings.tls_cert:
        return CertFiles(settings.tls_cert, settings.tls_key)
    return None


def server_context(files: CertFiles) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) serving `files`.

    :raise ConfigError: a file cannot be read, is not PEM, or the key does not match.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.sslsocket_class = DrainingSSLSocket
    for path in (files.cert, files.key):  # load_cert_chain would not say which one
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror
            raise ConfigError(f"TLS: cannot read {path}: {reason or exc}") from None
    try:
        context.load_cert_chain(files.cert, files.key)
    except ssl.SSLError as exc:
        raise ConfigError(f"TLS: {files.cert} and {files.key} are not a PEM certificate "
                          f"and its private key ({exc.reason or exc})") from None
    return context


def ca_fingerprint(path: str) -> str:
    """The SHA-256 fingerprint of a PEM certificate, as phones show it (AB:CD:...)."""
    with open(path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def spki_sha256_base64(path: str) -> str:
    """Base64 SHA-256 of a certificate's public key: what Chromium's
    `--ignore-certificate-errors-spki-list` takes."""
    with open(path, "rb") as handle:
        cert = x509.load_pem_x509_certificate(handle.read())
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(spki).digest()).decode()


# ---- the local CA -------------------------------------------------------------------------


def ensure_local_ca(data_dir: str, names: Iterable[str], addresses: Iterable[str]) -> CertFiles:
    """The local CA (made once) and a server certificate it signed for these names and
    addresses, issued again when they change or it is within RENEW_BEFORE of its end."""
    folder = tls_dir(data_dir)
    make_private_dir(folder)
    paths = {name: os.path.join(folder, name) for name in
             (CA_CERT_FILE, CA_KEY_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE)}
    now = datetime.datetime.now(datetime.UTC)
    ca_cert, ca_key = _load_pair(paths[CA_CERT_FILE], paths[CA_KEY_FILE])
    wanted = _subject_names(names, addresses)
    if ca_cert is None or ca_cert.not_valid_after_utc - now < RENEW_BEFORE:
        ca_cert, ca_key = _new_ca(now, wanted)
        _write_pair(paths[CA_CERT_FILE], paths[CA_KEY_FILE], ca_cert, ca_key)
    wanted = _within_constraints(ca_cert, wanted, folder)
    server_cert, _ = _load_pair(paths[SERVER_CERT_FILE], paths[SERVER_KEY_FILE])
    if (server_cert is None or server_cert.issuer != ca_cert.subject
            or server_cert.not_valid_after_utc - now < RENEW_BEFORE
            or _names_of(server_cert) != set(wanted)):
        server_cert, server_key = _new_server_cert(now, ca_cert, ca_key, wanted)
        _write_pair(paths[SERVER_CERT_FILE], paths[SERVER_KEY_FILE], server_cert, server_key)
    return CertFiles(paths[SERVER_CERT_FILE], paths[SERVER_KEY_FILE], paths[CA_CERT_FILE])


GeneralName = x509.DNSName | x509.IPAddress


def _subject_names(names: Iterable[str], addresses: Iterable[str]) -> list[GeneralName]:
    result: dict[str, GeneralName] = {}
    for text in (*ALWAYS_SERVED, *names, *addresses):
        text = text.strip().lower().rstrip(".")
        if not text or text in result:
            continue
        try:
            result[text] = x509.IPAddress(ipaddress.ip_address(text))
        except ValueError:
            result[text] = x509.DNSName(text)
    return list(result.values())


def _within_constraints(ca_cert: x509.Certificate, wanted: list[GeneralName],
                        folder: str) -> list[GeneralName]:
    """The names the CA may vouch for; the others are left out of the server certificate,
    with a warning (a browser would refuse a certificate that names them)."""
    try:
        constraints = ca_cert.extensions.get_extension_for_class(x509.NameConstraints).value
    except x509.ExtensionNotFound:
        logger.warning("the local CA in %s predates name constraints: a stolen ca.key could "
                       "vouch for any site. Delete ca.crt and ca.key there to get a new one "
                       "(then trust the new ca.crt on your phone again)", folder)
        return wanted
    permitted = list(constraints.permitted_subtrees or ())
    inside = [name for name in wanted if _permitted(name, permitted)]
    for name in wanted:
        if name not in inside:
            logger.warning("TLS: %s is outside what the local CA may vouch for (it was made "
                           "for other names); delete ca.crt and ca.key in %s to make a CA that "
                           "covers it (then trust it on your phone again)", name.value, folder)
    return inside


def _permitted(name: GeneralName, permitted: list[GeneralName]) -> bool:
    """RFC 5280 4.2.1.10 for the two kinds we use; a kind with no subtree is unconstrained."""
    if isinstance(name, x509.DNSName):
        domains = [tree.value for tree in permitted if isinstance(tree, x509.DNSName)]
        return not domains or any(name.value == domain or name.value.endswith("." + domain)
                                  for domain in domains)
    networks = [tree.value for tree in permitted if isinstance(tree, x509.IPAddress)]
    return not networks or any(name.value in network for network in networks)


def _name_constraints(names: list[GeneralName]) -> x509.NameConstraints:
    """Permitted: the DNS names given, and the addresses given beside PERMITTED_NETWORKS."""
    networks = [ipaddress.ip_network(text) for text in PERMITTED_NETWORKS]
    for name in names:
        if isinstance(name, x509.IPAddress) and not any(name.value in net for net in networks):
            networks.append(ipaddress.ip_network(name.value))
    trees: list[GeneralName] = [name for name in names if isinstance(name, x509.DNSName)]
    trees += [x509.IPAddress(network) for network in networks]
    return x509.NameConstraints(permitted_subtrees=trees, excluded_subtrees=None)


def _names_of(cert: x509.Certificate) -> set[GeneralName]:
    try:
        extension = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return set(extension.value)


def _load_pair(cert_path: str, key_path: str) -> tuple[x509.Certificate | None, object]:
    """A certificate and its key from our own files; (None, None) when either is missing
    or unreadable (a new pair replaces them)."""
    try:
        with open(cert_path, "rb") as handle:
            cert = x509.load_pem_x509_certificate(handle.read())
        with open(key_path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
    except (OSError, ValueError):
        return None, None
    return cert, key


def _write_pair(cert_path: str, key_path: str, cert: x509.Certificate,
                key: ec.EllipticCurvePrivateKey) -> None:
    """The key first (0600 from its first byte), then the certificate."""
    pem_key = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    write_private_file(key_path, pem_key.decode("ascii"))
    write_private_file(cert_path, cert.public_bytes(serialization.Encoding.PEM).decode("ascii"))


def _new_ca(now: datetime.datetime, names: list[GeneralName],
            ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Maestro Web"),
                      x509.NameAttribute(NameOID.COMMON_NAME,
                                         f"Maestro Web local CA ({os.uname().nodename})")])
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(_name_constraints(names), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def _new_server_cert(now: datetime.datetime, ca_cert: x509.Certificate,
                     ca_key: object, names: list[GeneralName],
                     ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME,
                                                        os.uname().nodename or "localhost")]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=SERVER_DAYS))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key
