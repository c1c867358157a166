"""Channels: Apprise URLs from `notify_urls`, each with the tags the notify policy names.

Tags are written the way Apprise's own text configuration writes them, before the URL:
`duty,ops=json://host/path`. (Apprise 1.13 does not read a `?tag=` in a URL; a `tag=`
query argument is taken out here and read as tags too, so both spellings work.) A
channel without tags gets every event the policy routes to any tag.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import apprise

TAGS_PREFIX = re.compile(r"^(?P<tags>[\w.,\s-]+)=(?P<url>[a-z][a-z0-9+.-]*://.*)$", re.I)


class ChannelError(ValueError):
    """A notify_urls entry Apprise cannot use (the message names its position only: a URL
    may carry a token)."""


@dataclass(frozen=True)
class Channel:
    name: str  # scheme://host[:port]: a metrics label and log field that holds no secret
    url: str
    tags: frozenset[str]

    def wants(self, tags: list[str]) -> bool:
        return bool(tags) and (not self.tags or bool(self.tags & set(tags)))

    async def send(self, title: str, body: str) -> bool:
        """True when Apprise delivered it (Apprise logs why not, and never raises)."""
        sender = apprise.Apprise()
        sender.add(self.url)
        return bool(await sender.async_notify(title=title, body=body))


def channels_of(urls: list[str]) -> list[Channel]:
    channels: list[Channel] = []
    names: set[str] = set()
    for position, entry in enumerate(urls):
        tags, url = _split(entry.strip())
        if apprise.Apprise.instantiate(url) is None:
            raise ChannelError(f"notify_urls[{position}] is not a URL Apprise can use")
        name = _name(url)
        if name in names:
            name = f"{name}#{position}"
        names.add(name)
        channels.append(Channel(name=name, url=url, tags=frozenset(tags)))
    return channels


def _split(entry: str) -> tuple[set[str], str]:
    tags: set[str] = set()
    match = TAGS_PREFIX.match(entry)
    if match:
        tags |= _words(match["tags"])
        entry = match["url"]
    parts = urlsplit(entry)
    query = parse_qsl(parts.query, keep_blank_values=True)
    tags |= {t for k, v in query if k == "tag" for t in _words(v)}
    kept = urlencode([(k, v) for k, v in query if k != "tag"])
    return tags, urlunsplit(parts._replace(query=kept))


def _words(text: str) -> set[str]:
    return {t.strip() for t in re.split(r"[,\s]+", text) if t.strip()}


def _name(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"
