"""Field helpers the vendor connectors share: times, hosts, identifiers, bounded text.

Vendor JSON is loosely typed (Splunk sends every value as a string, multivalue fields as
lists; Falco sends nanoseconds; Alertmanager writes "0001-01-01T00:00:00Z" for "never"),
so each helper accepts what the vendors really send and raises ValueError otherwise:
inside a pydantic validator that becomes a field error pointing at the vendor's field.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator

from contracts.findings import Endpoint, Evidence, User

MAX_UID = 256  # FindingInfo.uid and Resource.uid
MAX_TITLE = 1024  # FindingInfo.title
MAX_TEXT = 4096  # descriptions and names: enough to read, bounded for workflow state
MAX_EVIDENCES = 256  # Finding.evidences
_EPOCH_MS_LIMIT = 253_402_300_800_000  # 10000-01-01: past this a number is not a time


def clip(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def scalar(value: Any) -> str | None:
    """A vendor value as text: the first of a multivalue list, None when empty or nested.

    Splunk renders multivalue fields as JSON lists and every value as a string; a nested
    object has no single meaning as a host or user name, so it is skipped, not guessed.
    """
    while isinstance(value, list):
        if not value:
            return None
        value = value[0]
    if isinstance(value, bool) or value is None or isinstance(value, dict):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    try:
        text = str(value).strip()
    except ValueError:  # an integer past Python's int-to-str digit limit
        return None
    return text or None


def uid(source: str, *parts: object) -> str:
    """`source:part:part`, or `source:sha256:<digest>` when that is too long for a uid."""
    text = ":".join([source, *(str(p) for p in parts)])
    if len(text) <= MAX_UID:
        return text
    return f"{source}:sha256:{hashlib.sha256(text.encode()).hexdigest()}"


def digest(document: Any) -> str:
    """A short stable digest of a JSON value (key order does not matter)."""
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


# --- time ---------------------------------------------------------------------------------


def _checked(ms: int) -> int:
    if ms < 0:
        raise ValueError("time is before 1970-01-01")
    if ms > _EPOCH_MS_LIMIT:
        raise ValueError("time is after 9999-12-31")
    return ms


def iso_ms(text: str) -> int:
    """Epoch ms of an ISO 8601 time; a time without zone is UTC (vendors log in UTC)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not an ISO 8601 time: {text[:64]!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return _checked(int(moment.timestamp() * 1000))
    except (OverflowError, OSError):
        raise ValueError(f"time out of range: {text[:64]!r}") from None


def number_ms(value: float, unit_per_second: int) -> int:
    if isinstance(value, int):  # integer arithmetic: a huge int must not overflow a float
        return _checked(value * 1000 // unit_per_second)
    if not math.isfinite(value):
        raise ValueError("time is not a finite number")
    return _checked(int(value * 1000 / unit_per_second))


def _time(value: Any, unit_per_second: int) -> int:
    if isinstance(value, bool):
        # ValueError, not TypeError: pydantic turns only ValueError into a field error.
        raise ValueError("expected a time, got a boolean")  # noqa: TRY004
    if isinstance(value, int | float):
        return number_ms(value, unit_per_second)
    if isinstance(value, str):
        try:
            return number_ms(float(value), unit_per_second)
        except ValueError:
            return iso_ms(value)
    raise ValueError("expected an ISO 8601 time or a number")


def _seconds(value: Any) -> Any:
    return None if value is None else _time(value, 1)


# ISO 8601 text, or a number of seconds (Splunk `_time` is "1700000000.123").
Time = Annotated[int, BeforeValidator(_seconds)]


# --- hosts, users ---------------------------------------------------------------------------


def is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def port_of(value: Any) -> int | None:
    text = scalar(value)
    if text is None or not text.isdigit():
        return None
    port = int(text)
    return port if 0 < port < 65536 else None


def endpoint(
    host: Any = None, *, ip: Any = None, hostname: Any = None, port: Any = None
) -> Endpoint | None:
    """An endpoint from whatever the vendor gave; `host` is an IP or a name, we tell which.

    A value in the IP slot that is not an IP address is kept as a hostname rather than
    dropped: vendors put names in `src`/`dest` fields, and the name still identifies it.
    """
    ip_text, name = scalar(ip), scalar(hostname)
    if ip_text is not None and not is_ip(ip_text):
        name, ip_text = name or ip_text, None
    host_text = scalar(host)
    if host_text is not None:
        if is_ip(host_text):
            ip_text = ip_text or host_text
        else:
            name = name or host_text
    if ip_text is None and name is None:
        return None
    return Endpoint(ip=ip_text, hostname=clip(name, MAX_UID) if name else None, port=port_of(port))


def split_host_port(text: str) -> tuple[str, str | None]:
    """`198.18.10.11:9100`, `[2001:db8::1]:9100`, `scada-e01:9100`, or a bare host."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, rest.removeprefix(":") or None
    if text.count(":") == 1:
        host, _, port = text.partition(":")
        return host, port or None
    return text, None  # a bare name, or a bare IPv6 address


def user(name: Any = None, uid_: Any = None) -> User | None:
    name_text, uid_text = scalar(name), scalar(uid_)
    if name_text is None and uid_text is None:
        return None
    return User(
        name=clip(name_text, MAX_UID) if name_text else None,
        uid=clip(uid_text, MAX_UID) if uid_text else None,
    )


def evidence(
    src: Endpoint | None = None, dst: Endpoint | None = None, who: User | None = None
) -> list[Evidence]:
    """One evidence, or none when it would say nothing."""
    if src is None and dst is None and who is None:
        return []
    return [Evidence(src_endpoint=src, dst_endpoint=dst, user=who)]


def lenient_time(value: Any, fallback: int, unit_per_second: int = 1) -> int:
    """Epoch ms of a number (in 1/unit_per_second s) or ISO text; else `fallback`.

    For vendors whose event time is an optional, free-form field of a search result:
    a finding without a usable time is still a finding, timed when it arrived.
    """
    text = scalar(value)
    if text is None:
        return fallback
    try:
        return _time(text, unit_per_second)
    except ValueError:
        return fallback
