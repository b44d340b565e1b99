"""Result claims: the database's word on which backend stores an operation's model, so every
operation gets at most one model version however many backends ingest its result (a host's callback
to one, a pull by another, a restart in between).

Pure: the claim is a row keyed by the operation id (a primary key, so two inserts cannot both win);
the adapter implements the port in :mod:`backend.domain.ports`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StoredVersion:
    strategy: str
    name: str
    version: int


@dataclass(frozen=True)
class ResultClaim:
    """The answer to "may I store this operation's model?".

    ``won``: yes, store it and record the version; ``fresh`` when it was won by the first claim of the
    operation (no ingest before it got as far as storing: there is no version of it to look for). Else
    ``stored`` names the version another ingest recorded, or (``stored`` None) ``holder`` is the live
    backend storing it right now."""

    won: bool
    holder: str | None = None
    stored: StoredVersion | None = None
    fresh: bool = False
