"""ModelAliasService: set, move, remove and resolve the aliases of model versions."""

from __future__ import annotations

import logging

from backend.domain.aliases import AliasChange, ModelAlias, check_alias, version_ref
from backend.domain.ports import AliasRepository, Clock, ModelStore
from backend.errors import AliasNotFoundError, InvalidRequestError

logger = logging.getLogger(__name__)


class ModelAliasService:
    def __init__(self, repo: AliasRepository, models: ModelStore, clock: Clock) -> None:
        self._repo = repo
        self._models = models
        self._clock = clock

    def set_alias(self, strategy: str, name: str, alias: str, version: int, *, by: str | None) -> AliasChange:
        """Point ``alias`` at an existing ``version`` (422 naming the versions there are if it is absent)."""
        check_alias(alias)
        self._require_version(strategy, name, version)
        change = self._repo.set(strategy, name, alias, version, by=by, at=self._clock.now())
        logger.info(
            "alias %s of %s/%s %s: %s -> v%d%s",
            alias,
            strategy,
            name,
            change.action.value,
            f"v{change.from_version}" if change.from_version is not None else "new",
            version,
            f" by token {by}" if by else "",
        )
        return change

    def remove_alias(self, strategy: str, name: str, alias: str, *, by: str | None) -> AliasChange:
        check_alias(alias)
        change = self._repo.remove(strategy, name, alias, by=by, at=self._clock.now())
        if change is None:
            raise self._not_found(strategy, name, alias)
        return change

    def forget_version(self, strategy: str, name: str, version: int, *, by: str | None) -> list[str]:
        """A deleted version's aliases go with it (recorded as removals)."""
        return self._repo.remove_version(strategy, name, version, by=by, at=self._clock.now())

    def resolve(self, strategy: str, name: str, ref: str) -> int:
        """The version ``ref`` names: a number as is, an alias by its current target."""
        number = version_ref(ref)
        if number is not None:
            return number
        check_alias(ref)
        found = self._repo.get(strategy, name, ref)
        if found is None:
            raise self._not_found(strategy, name, ref)
        return found.version

    def of_model(self, strategy: str, name: str) -> list[ModelAlias]:
        return self._repo.of_model(strategy, name)

    def by_model(self) -> dict[tuple[str, str], dict[str, int]]:
        """Every alias, grouped by model: {(strategy, name): {alias: version}}."""
        grouped: dict[tuple[str, str], dict[str, int]] = {}
        for a in self._repo.all():
            grouped.setdefault((a.strategy, a.name), {})[a.alias] = a.version
        return grouped

    def history(self, strategy: str, name: str) -> list[AliasChange]:
        return self._repo.history(strategy, name)

    def _require_version(self, strategy: str, name: str, version: int) -> None:
        versions = sorted(int(v["version"]) for v in self._models.list_versions(strategy, name))
        if version not in versions:
            raise InvalidRequestError(
                f"version: {strategy}/{name} has no version {version}; give one of {versions}",
                strategy=strategy,
                name=name,
                version=version,
                field="version",
            )

    def _not_found(self, strategy: str, name: str, alias: str) -> AliasNotFoundError:
        known = [a.alias for a in self._repo.of_model(strategy, name)]
        return AliasNotFoundError(
            f"{strategy}/{name} has no alias {alias!r}; its aliases are {known or 'none'} "
            f"(set one with PUT /api/v1/models/{strategy}/{name}/aliases/{{alias}})",
            strategy=strategy,
            name=name,
            alias=alias,
        )
