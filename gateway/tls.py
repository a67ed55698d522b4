"""TLS contexts for SMPP over TLS: our listeners (server side) and our binds to an SMSC.

One place builds them so every listener and client gets the same floor (TLS 1.2+, the
`ssl` module's default ciphers) and the same clear errors for a missing or bad file.
"""

from __future__ import annotations

import ssl
from pathlib import Path


class TlsConfigError(ValueError):
    """A certificate, key or CA file is unusable; the message names the file."""


def server_context(cert_file: str, key_file: str | None = None) -> ssl.SSLContext:
    """A listener's context: our certificate chain (PEM) and its private key (PEM; omit it
    when the key is inside `cert_file`). Clients are not asked for certificates."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    _check_files(cert_file, key_file)
    try:
        ctx.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"cannot load TLS certificate {cert_file} / key "
                             f"{key_file or '(in the certificate file)'}: {exc}") from None
    return ctx


def client_context(ca_file: str | None = None, *, verify: bool = True) -> ssl.SSLContext:
    """A bind's context. `ca_file` (PEM) is trusted instead of the system store; with
    `verify` false the SMSC's certificate is not checked at all (encryption without
    authentication: only for a test SMSC with a throwaway certificate)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file:
        _check_files(ca_file)
        try:
            ctx.load_verify_locations(cafile=ca_file)
        except (ssl.SSLError, OSError) as exc:
            raise TlsConfigError(f"cannot load TLS CA file {ca_file}: {exc}") from None
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _check_files(*paths: str | None) -> None:
    for path in paths:
        if path and not Path(path).is_file():
            raise TlsConfigError(f"TLS file {path} does not exist or is not a file")
