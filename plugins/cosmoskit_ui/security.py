"""Who may talk to the server: the token (non-loopback binds), the Host header, and the CSRF token.

- Bound to loopback, only this machine reaches the server; still, a web page elsewhere could make
  the browser send requests to it, so every request's ``Host`` must name this server (no DNS
  rebinding) and every action carries the CSRF token that only our own pages know.
- Bound to any other address, every request must also prove it has the token printed in the URL,
  as Jupyter does: ``?token=`` once (it becomes an HttpOnly cookie), or the cookie, or an
  ``Authorization: token …`` header.
"""
from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from urllib.parse import urlsplit

TOKEN_COOKIE = "cosmoskit_ui_token"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def same(a: str | None, b: str | None) -> bool:
    """Constant-time comparison of two secrets (a missing one never matches)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


@dataclass
class Guard:
    host: str
    port: int
    token: str | None = None  # None: loopback bind, no token needed
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @classmethod
    def for_bind(cls, host: str, port: int) -> Guard:
        return cls(host, port, None if is_loopback(host) else secrets.token_urlsafe(24))

    # ------------------------------------------------------------ Host header
    def host_allowed(self, header: str | None) -> bool:
        """Refuse a request whose ``Host`` is not this server: a rebinding attack names another."""
        if not header:
            return False
        name = urlsplit(f"//{header}").hostname or ""
        if self.token is not None:
            return True  # any name may reach a non-loopback bind, but only with the token
        return is_loopback(name)

    # ------------------------------------------------------------ token
    def token_ok(self, query_token: str | None, cookie: str | None, authorization: str | None) -> bool:
        if self.token is None:
            return True
        if same(query_token, self.token) or same(cookie, self.token):
            return True
        if authorization and authorization.lower().startswith("token "):
            return same(authorization[6:].strip(), self.token)
        return False

    # ------------------------------------------------------------ CSRF
    def csrf_ok(self, method: str, header: str | None, form_value: str | None, origin: str | None,
                host_header: str | None) -> bool:
        """An action (any non-GET) must carry our CSRF token and, when the browser says where it comes from,
        come from this very server."""
        if method in SAFE_METHODS:
            return True
        if origin and origin != "null" and urlsplit(origin).netloc != (host_header or ""):
            return False
        return same(header, self.csrf) or same(form_value, self.csrf)
