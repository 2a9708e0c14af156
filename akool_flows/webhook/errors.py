"""Exceptions raised by the webhook layer."""

from __future__ import annotations

__all__ = ["WebhookVerificationError"]


class WebhookVerificationError(Exception):
    """A webhook body failed verification, decryption or parsing.

    Every way a body can be wrong (bad JSON, missing field, bad signature, stale timestamp,
    bad base64, bad padding, non-UTF-8 or non-JSON plaintext, payload without a job id)
    raises this one type, never a crypto or unicode traceback, so callers need one
    ``except``.

    ``reason`` is a short fixed phrase safe to log (it never contains the secret, the
    plaintext or attacker-controlled text). A receiver must still answer every rejection
    identically: the reason is for the operator's log, not for the sender.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
