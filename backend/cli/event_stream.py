"""Server-Sent Events: turning the lines of a ``text/event-stream`` body into events.

The subset of the WHATWG rules the backend's stream uses: ``event:`` and ``data:`` fields (several
``data:`` lines join with newlines), a blank line ends an event, lines starting with ``:`` are comments
(the server's heartbeats), unknown fields (``id:``, ``retry:``) are ignored.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class ServerSentEvent:
    kind: str
    data: str


def read_events(lines: Iterable[str]) -> Iterator[ServerSentEvent]:
    """Each complete event in ``lines`` (line endings already stripped); an event without data is
    skipped, as is a last event the stream cut off before its blank line."""
    kind = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield ServerSentEvent(kind or "message", "\n".join(data))
            kind, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            kind = value
        elif field == "data":
            data.append(value)
