"""When a failed download is worth another attempt, and how long to wait before it.

Retried: connection errors, timeouts, broken or truncated bodies, HTTP 5xx and 429. Not retried:
other 4xx, TLS failures, bad redirects, a refused size or checksum, local disk errors — the same
request would fail the same way. Waits grow exponentially with jitter; a server's `Retry-After`
is honoured; both are capped by `max_wait`, so one server cannot park a download for hours.
"""

from __future__ import annotations

import dataclasses
import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

__all__ = ["Failure", "backoff_delay", "classify_network_error", "retry_after"]


@dataclasses.dataclass(frozen=True)
class Failure:
    """Why one attempt failed, and whether (and when) another attempt may succeed."""

    reason: str
    status: int | None = None  # the HTTP status, when a response arrived
    retry: bool = False
    wait: float | None = None  # seconds the server asked for (Retry-After), if it did
    cause: BaseException | None = dataclasses.field(default=None, compare=False)


def backoff_delay(attempt: int, base: float, cap: float, wait: float | None = None) -> float:
    """Seconds before attempt `attempt + 1`: Retry-After if given, else base·2^(n-1) ± jitter.

    The jitter draws from [½, 1] of the exponential step, so clients that failed together do not
    retry together, yet every wait is at least half the planned one.
    """
    if wait is not None:
        return min(cap, wait)
    step = min(cap, base * 2.0 ** max(0, attempt - 1))
    return step * random.uniform(0.5, 1.0)


def retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number of seconds or an HTTP date; None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def classify_network_error(exc: BaseException, settings: Any) -> Failure:
    """A Failure for an exception raised while connecting, sending or reading."""
    from urllib3 import exceptions as e

    reason = exc.reason if isinstance(exc, e.MaxRetryError) and exc.reason else exc
    if isinstance(reason, e.SSLError):
        why = (
            f"TLS failed ({reason}): the server's certificate could not be verified. Fix the "
            "certificate, or only on a network you trust, pass insecure=True (--insecure)"
        )
        return Failure(why, cause=exc)
    if isinstance(reason, e.LocationValueError):
        return Failure(f"bad URL or redirect target: {reason}", cause=exc)
    if isinstance(reason, e.NewConnectionError):
        why = f"cannot connect: {_root(reason)}"
    elif isinstance(reason, e.ConnectTimeoutError):
        why = f"connect timed out after {settings.connect_timeout:g} s"
    elif isinstance(reason, e.ReadTimeoutError):
        why = f"read timed out: no data for {settings.read_timeout:g} s"
    elif isinstance(reason, (e.ProtocolError, e.IncompleteRead)):
        why = f"connection broken: {_root(reason)}"
    elif isinstance(reason, (e.HTTPError, ConnectionError, TimeoutError)):
        why = f"{type(reason).__name__}: {reason}"
    else:  # not the network: a full disk, a permission, a bug; another request will not help
        return Failure(f"{type(exc).__name__}: {exc}", cause=exc)
    return Failure(why, retry=True, cause=exc)


def _root(exc: BaseException) -> str:
    """The innermost useful message: 'Connection refused' rather than urllib3's wrapping."""
    while True:
        if exc.__cause__ is not None:
            exc = exc.__cause__
        elif exc.args and isinstance(exc.args[-1], BaseException):
            exc = exc.args[-1]
        else:
            break
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc.args[0] if len(exc.args) == 1 else exc) or type(exc).__name__
