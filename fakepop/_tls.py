"""Test certificates: a throwaway CA and a server certificate, made with trustme.

trustme (and the cryptography package under it) is imported when the first
:class:`TlsCertificates` is made, not with fakepop: most test runs never use TLS.
"""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trustme

__all__ = ["TlsCertificates"]

DEFAULT_IDENTITIES = ("localhost", "127.0.0.1", "::1")
#: The longest CommonName a certificate may hold (ub-common-name, RFC 5280 appendix A.1).
_COMMON_NAME_MAX = 64


class TlsCertificates:
    """A certificate authority that exists only for this test run, and a certificate
    it signed for the server's names (``localhost``, ``127.0.0.1`` and ``::1`` unless
    ``identities`` are given; the first that fits, at most 64 characters, is also the
    subject's CommonName).

    ``server_context()`` goes to the server (``Pop3Server(ssl_context=...)``), and
    ``client_context()`` to the code under test, which then trusts the server exactly
    as it would trust a real one; external clients get the CA as a PEM file from
    ``write_ca_pem(path)`` (``curl --cacert``, ``openssl s_client -CAfile``).
    """

    def __init__(self, *identities: str) -> None:
        import trustme  # noqa: PLC0415 - slow to import, and only TLS tests need it

        self.identities = identities or DEFAULT_IDENTITIES
        self._ca: trustme.CA = trustme.CA()
        # A name is the subject's CommonName too, as on certificates public CAs issue:
        # some clients (fetchmail) refuse a certificate whose subject has none, even
        # when its subjectAltName holds the host's name.
        common_name = next((n for n in self.identities if len(n) <= _COMMON_NAME_MAX), None)
        self._certificate: trustme.LeafCert = self._ca.issue_cert(
            *self.identities, common_name=common_name
        )

    def server_context(self) -> ssl.SSLContext:
        """A server-side context with the certificate; TLS 1.2 or newer (RFC 8997)."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        self._certificate.configure_cert(context)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A client-side context that trusts this CA (and verifies host names)."""
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self._ca.configure_trust(context)
        return context

    @property
    def ca_pem(self) -> bytes:
        """The CA certificate, PEM-encoded."""
        return self._ca.cert_pem.bytes()

    def write_ca_pem(self, path: str | os.PathLike[str]) -> Path:
        """Write the CA certificate to ``path`` as PEM, for clients outside Python."""
        target = Path(path)
        target.write_bytes(self.ca_pem)
        return target
