"""Credentials: a token, an API key, or clientId/clientSecret exchanged for a token (getToken).

An exchanged token can be revoked while we hold it: an `AuthenticationError` on an
authenticated call makes us forget it and exchange once more (`refresh_after`); a token given
explicitly is never "refreshed", its 1101 surfaces at once.
"""

from __future__ import annotations

from collections.abc import Mapping

from akool_flows.api import endpoints
from akool_flows.api.endpoints import Call
from akool_flows.api.errors import AkoolError, AuthenticationError, ValidationError

__all__ = ["Credentials", "env_value", "refresh_after", "token_call"]


class Credentials:
    """Token, API key or clientId/clientSecret. The repr never shows a secret."""

    __slots__ = ("_token", "api_key", "client_id", "_client_secret")

    def __init__(self, *, token: str | None = None, api_key: str | None = None, client_id: str | None = None,
                 client_secret: str | None = None) -> None:
        self._token = token or None
        self.api_key = api_key or None
        self.client_id = client_id or None
        self._client_secret = client_secret or None
        if not (self._token or self.api_key or (self.client_id and self._client_secret)):
            raise ValidationError(
                "no Akool credentials: set AKOOL_API_TOKEN, AKOOL_API_KEY, or AKOOL_CLIENT_ID and "
                "AKOOL_CLIENT_SECRET (or pass token=, api_key=, client_id= and client_secret=)",
                field="credentials")
        if bool(self.client_id) != bool(self._client_secret) and not (self._token or self.api_key):
            raise ValidationError("client_id and client_secret go together", field="client_secret")

    @property
    def mode(self) -> str:
        return "api_key" if self.api_key else "token" if self._token else "client_credentials"

    @property
    def needs_exchange(self) -> bool:
        return self._token is None and self.api_key is None

    @property
    def client_secret(self) -> str | None:
        return self._client_secret

    @property
    def token(self) -> str | None:
        """The bearer token in use (given, or obtained through getToken)."""
        return self._token

    def headers(self) -> dict[str, str]:
        if self.api_key:
            return {"x-api-key": self.api_key}
        if self._token:
            return {"Authorization": f"Bearer {self._token}"}
        return {}

    def set_token(self, token: str) -> None:
        self._token = token

    def forget_exchanged_token(self) -> bool:
        """Drop a token obtained through getToken so the next call exchanges again."""
        if self.client_id and self._client_secret and self._token:
            self._token = None
            return True
        return False

    def __repr__(self) -> str:
        return f"Credentials(mode={self.mode!r})"


def token_call(credentials: Credentials) -> Call:
    """The getToken call for clientId/clientSecret credentials (its parse returns the token)."""
    return endpoints.get_token(credentials.client_id or "", credentials.client_secret or "")


def refresh_after(call: Call, exc: AkoolError, credentials: Credentials, refreshed: bool) -> bool:
    """After `exc` on `call`: should the token be exchanged again and the call retried at once?

    Once per call, for an exchanged token only (which this forgets, so the next attempt
    exchanges). A create refused with 1101 / HTTP 401 created nothing, so retrying it is safe."""
    return (isinstance(exc, AuthenticationError) and call.auth and not refreshed
            and credentials.forget_exchanged_token())


def env_value(name: str, env: Mapping[str, str]) -> str | None:
    """`env[name]` stripped, or None when unset or blank."""
    value = env.get(name)
    return value.strip() if value and value.strip() else None
