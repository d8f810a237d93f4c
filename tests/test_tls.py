"""HTTPS and WSS under both launchers: our local CA (--tls self-signed), the user's own files
(--tls-cert/--tls-key), HSTS on request, and the TLS handshake kept off the accept path."""

from __future__ import annotations

import datetime
import ipaddress
import os
import socket
import ssl
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

from app import tls
from tests.conftest import ROOT
from tests.test_terminal_sessions import ready_session, send
from tests.wsclient import LiveClient

SCRIPTS = ["run.py", "wsgi.py"]


@pytest.fixture(params=SCRIPTS)
def script(request) -> str:
    return request.param


@pytest.fixture
def tls_server(make_server, script, tmp_path):
    server = make_server("--token", str(uuid.uuid4()), "--no-rate-limit", "--tls", "self-signed",
                         "--interrupt-grace-s", "1", script=script)
    server.verify = str(tmp_path / "data" / "tls" / "ca.crt")
    return server


def _names(path: str) -> set[str]:
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(name.value) for name in names}


def test_self_signed_serves_https_that_trusts_our_ca_and_keeps_keys_private(tls_server,
                                                                            tmp_path):
    assert tls_server.scheme == "https"
    response = tls_server.api("GET", "whoami")
    assert response.status_code == 200 and response.json()["role"] == "owner"
    with pytest.raises(requests.exceptions.SSLError):  # not trusted without our CA
        requests.get(tls_server.url("api/whoami"), timeout=10)
    folder = tmp_path / "data" / "tls"
    for name in ("ca.key", "server.key"):
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert {"localhost", "127.0.0.1", "::1", socket.gethostname().lower()} <= _names(
        str(folder / "server.crt"))
    assert "Trust this server's local CA" in "".join(tls_server.output)


def test_ca_crt_is_served_with_the_token_and_never_without(tls_server, tmp_path):
    response = requests.get(tls_server.url("ca.crt"), verify=tls_server.verify, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-x509-ca-cert"
    assert response.content == (tmp_path / "data" / "tls" / "ca.crt").read_bytes()
    without = requests.get(f"{tls_server.base}/ca.crt", verify=tls_server.verify,
                           allow_redirects=False, timeout=10)
    assert without.status_code == 302 and "BEGIN CERTIFICATE" not in without.text


def test_no_ca_crt_without_our_own_ca(make_server):
    server = make_server()
    assert requests.get(server.url("ca.crt"), timeout=10).status_code == 404


def test_a_websocket_over_wss_gets_live_events_and_resumes(tls_server, project):
    sslopt = {"ca_certs": tls_server.verify}
    sid = ready_session(tls_server, project)
    client = LiveClient(tls_server, sslopt=sslopt)
    last_seen = client.init["seq"]
    # Many records at once: each must arrive without waiting for the next packet.
    send(tls_server, sid, "seq 1 30000 | tr '\\n' ' '; echo; echo flood-done")
    client.wait_for(lambda m: m["type"] == "history:added", timeout=30)
    last_seen = client.events()[-1]["seq"]
    client.close()
    send(tls_server, sid, "echo while-away")
    resumed = LiveClient(tls_server, since=last_seen, sslopt=sslopt)
    assert resumed.init["resumed"] is True
    resumed.wait_for(lambda m: m["type"] == "history:added", timeout=30)
    seqs = [event["seq"] for event in resumed.events()]
    assert seqs[0] == last_seen + 1 and seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    # One message in one TLS record larger than a read: all of it must be read at once, not
    # when the next packet (the server's ping, 25 s on) wakes the reader.
    started = time.monotonic()
    assert resumed.request({"type": "ping", "padding": "x" * 12000}, "pong", timeout=10)
    assert time.monotonic() - started < 5
    resumed.close()


def test_a_client_that_never_finishes_its_handshake_blocks_no_one(tls_server):
    with socket.create_connection(("127.0.0.1", tls_server.port)) as silent:
        started = time.monotonic()
        assert tls_server.api("GET", "whoami", timeout=10).status_code == 200
        assert time.monotonic() - started < 5
        silent.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # plain HTTP on the TLS port
    assert tls_server.api("GET", "whoami").status_code == 200


def test_hsts_only_when_asked(make_server, script, tmp_path):
    plain = make_server("--tls", "self-signed", script=script)
    plain.verify = str(tmp_path / "data" / "tls" / "ca.crt")
    assert "Strict-Transport-Security" not in plain.api("GET", "whoami").headers
    plain.stop()
    strict = make_server("--tls", "self-signed", "--hsts", script=script)
    strict.verify = plain.verify
    assert strict.api("GET", "whoami").headers["Strict-Transport-Security"] == "max-age=31536000"


def test_the_users_own_certificate_and_key(make_server, script, tmp_path):
    files = tls.ensure_local_ca(str(tmp_path / "elsewhere"), [], [])
    server = make_server("--tls-cert", files.cert, "--tls-key", files.key, script=script)
    server.verify = files.ca_cert
    assert server.scheme == "https" and server.api("GET", "whoami").status_code == 200
    ca = requests.get(server.url("ca.crt"), verify=server.verify, timeout=10)
    assert ca.status_code == 404  # not our CA to hand out


def _start_error(tmp_path: Path, *args: str, script: str = "run.py") -> list[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAESTRO_")}
    result = subprocess.run(
        [sys.executable, str(ROOT / script), "--host", "127.0.0.1", "--port", "0",
         "--data-dir", str(tmp_path / "d"), *args],
        capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2, result.stderr
    return result.stderr.strip().splitlines()


def test_a_bad_certificate_or_key_is_one_line_and_exit_2(tmp_path, script):
    files = tls.ensure_local_ca(str(tmp_path / "a"), [], [])
    other = tls.ensure_local_ca(str(tmp_path / "b"), ["other"], [])
    [line] = _start_error(tmp_path, "--tls-cert", files.cert, "--tls-key", other.key,
                          script=script)
    assert line.startswith("maestro-web: error: TLS: ") and "private key" in line
    [line] = _start_error(tmp_path, "--tls-cert", str(tmp_path / "missing.pem"),
                          "--tls-key", files.key, script=script)
    assert line == f"maestro-web: error: TLS: cannot read {tmp_path / 'missing.pem'}: no such file"
    [line] = _start_error(tmp_path, "--tls-cert", files.cert, script=script)
    assert line == "maestro-web: error: --tls-cert and --tls-key must be given together"
    [line] = _start_error(tmp_path, "--tls", "letsencrypt", script=script)
    assert line.startswith("maestro-web: error: --tls: the only mode is 'self-signed'")


def test_the_server_certificate_is_renewed_when_names_change_or_it_nears_its_end(tmp_path):
    data = str(tmp_path)
    first = tls.ensure_local_ca(data, ["box"], ["192.168.1.20"])
    ca = Path(first.ca_cert).read_bytes()
    server = Path(first.cert).read_bytes()
    assert {"box", "192.168.1.20"} <= _names(first.cert)
    tls.ensure_local_ca(data, ["box"], ["192.168.1.20"])
    assert Path(first.cert).read_bytes() == server  # nothing changed: kept
    tls.ensure_local_ca(data, ["box"], ["10.0.0.7"])  # a new network
    assert "10.0.0.7" in _names(first.cert) and "192.168.1.20" not in _names(first.cert)
    assert Path(first.ca_cert).read_bytes() == ca  # the phone keeps trusting the same CA
    renewed = Path(first.cert).read_bytes()
    soon = tls.RENEW_BEFORE - datetime.timedelta(days=1)
    later = datetime.datetime.now(datetime.UTC) + tls.SERVER_DAYS * datetime.timedelta(days=1)
    cert = x509.load_pem_x509_certificate(renewed)
    assert cert.not_valid_after_utc - later < datetime.timedelta(days=1)
    # Make it near its end: re-sign it with a short life, as if a year had passed.
    ca_key = serialization.load_pem_private_key(Path(tmp_path / "tls" / "ca.key").read_bytes(),
                                                None)
    now = datetime.datetime.now(datetime.UTC)
    short = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer)
             .public_key(cert.public_key()).serial_number(cert.serial_number)
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + soon)
             .add_extension(cert.extensions.get_extension_for_class(
                 x509.SubjectAlternativeName).value, critical=False)
             .sign(ca_key, hashes.SHA256()))
    Path(first.cert).write_bytes(short.public_bytes(serialization.Encoding.PEM))
    tls.ensure_local_ca(data, ["box"], ["10.0.0.7"])
    again = x509.load_pem_x509_certificate(Path(first.cert).read_bytes())
    assert again.not_valid_after_utc - now > datetime.timedelta(days=300)
    context = tls.server_context(tls.CertFiles(first.cert, first.key))
    assert isinstance(context, ssl.SSLContext)


def _verifies(ca_path: str, leaf: x509.Certificate, name: x509.GeneralName) -> bool:
    """Does a client that trusts the CA accept `leaf` for `name` (RFC 5280, name constraints
    included)?"""
    ca = x509.load_pem_x509_certificate(Path(ca_path).read_bytes())
    verifier = PolicyBuilder().store(Store([ca])).build_server_verifier(name)
    try:
        verifier.verify(leaf, [])
    except VerificationError:
        return False
    return True


def _minted(folder: Path, name: x509.GeneralName) -> x509.Certificate:
    """What a thief holding our ca.key could sign: a server certificate for `name`."""
    ca = x509.load_pem_x509_certificate((folder / "ca.crt").read_bytes())
    ca_key = serialization.load_pem_private_key((folder / "ca.key").read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    return (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "thief")]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName([name]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))


def _ip(text: str) -> x509.IPAddress:
    return x509.IPAddress(ipaddress.ip_address(text))


def test_a_stolen_ca_key_cannot_vouch_for_other_sites(tmp_path, caplog):
    files = tls.ensure_local_ca(str(tmp_path), ["box", "box.local"], ["192.168.1.20",
                                                                       "203.0.113.7"])
    folder = tmp_path / "tls"
    served = x509.load_pem_x509_certificate(Path(files.cert).read_bytes())
    for name in (x509.DNSName("box"), x509.DNSName("localhost"), _ip("192.168.1.20"),
                 _ip("203.0.113.7"), _ip("127.0.0.1")):
        assert _verifies(files.ca_cert, served, name), name
    for name in (x509.DNSName("bank.example.com"), x509.DNSName("box.example.com"),
                 _ip("8.8.8.8"), _ip("203.0.113.8")):
        assert not _verifies(files.ca_cert, _minted(folder, name), name), name
    # Another private network needs no new CA: the phone keeps trusting it.
    ca = Path(files.ca_cert).read_bytes()
    assert _verifies(files.ca_cert, _minted(folder, _ip("10.0.0.7")), _ip("10.0.0.7"))
    tls.ensure_local_ca(str(tmp_path), ["box"], ["10.0.0.7", "198.51.100.9"])
    assert Path(files.ca_cert).read_bytes() == ca
    names = _names(files.cert)
    assert "10.0.0.7" in names and "198.51.100.9" not in names  # outside: left out, said so
    assert "198.51.100.9 is outside what the local CA may vouch for" in caplog.text


def test_a_ca_made_before_name_constraints_is_kept_with_a_warning(tmp_path, caplog):
    folder = tmp_path / "tls"
    folder.mkdir(mode=0o700)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Maestro Web local CA (old)")])
    now = datetime.datetime.now(datetime.UTC)
    old = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
           .public_key(key.public_key()).serial_number(x509.random_serial_number())
           .not_valid_before(now - datetime.timedelta(days=1))
           .not_valid_after(now + datetime.timedelta(days=3000))
           .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
           .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                        key_encipherment=False, data_encipherment=False,
                                        key_agreement=False, key_cert_sign=True, crl_sign=True,
                                        encipher_only=False, decipher_only=False), critical=True)
           .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                          critical=False)
           .sign(key, hashes.SHA256()))  # as the CAs of earlier versions were made
    tls._write_pair(str(folder / "ca.crt"), str(folder / "ca.key"), old, key)
    before = (folder / "ca.crt").read_bytes()
    files = tls.ensure_local_ca(str(tmp_path), ["box"], ["192.168.1.20"])
    assert (folder / "ca.crt").read_bytes() == before  # phones that trust it keep working
    assert _verifies(files.ca_cert, x509.load_pem_x509_certificate(
        Path(files.cert).read_bytes()), x509.DNSName("box"))
    assert "predates name constraints" in caplog.text


def test_plain_http_to_the_https_port_gets_a_one_line_hint(tls_server):
    response = requests.get(f"http://127.0.0.1:{tls_server.port}/{tls_server.token}/api/whoami",
                            timeout=10, allow_redirects=False)
    assert response.status_code == 400
    assert response.text == ("This server speaks HTTPS only: open the same address with "
                             "https:// instead of http://.\n")
    assert tls_server.api("GET", "whoami").status_code == 200  # HTTPS goes on as before
