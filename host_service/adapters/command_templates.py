"""This host's commands folder: a command request is checked against the host's own templates.

The backend checked the request against *its* copy already; a host runs only what its own folder holds,
so it checks again when a session is asked for, before any slot or download: the command exists here,
its params fit, its dataset rule holds and the dataset is among the files the backend sends, and its
program is installed here. Sample commands are written into an empty folder on the first start.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from host_service.errors import CommandNotFoundError, InvalidConfigError
from shared.contracts.host import StartSession
from shared.trainkit.errors import CommandNotFoundError as TemplateNotFoundError
from shared.trainkit.errors import TrainkitError
from shared.trainkit.workloads.command.arguments import (
    build_invocation,
    check_dataset,
    check_program,
    resolve_params,
)
from shared.trainkit.workloads.command.catalog import CommandCatalog, has_commands, write_sample_commands

logger = logging.getLogger(__name__)

_SYNC_HINT = "this host runs only the templates of its own commands folder (MODELYARD_HOST_COMMANDS_DIR)"


class CommandTemplates:
    """The RequestCheck of a host: requests other than commands pass unchecked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._catalog = CommandCatalog(root)

    def check(self, command: StartSession) -> None:
        spec = command.request.command
        if spec is None:
            return
        try:
            template, source = self._catalog.get(spec.name)
            values = resolve_params(template, spec.params)
            dataset = check_dataset(template, spec.dataset)
            invocation = build_invocation(
                template,
                source.parent.resolve(),
                values,
                output_dir=Path(tempfile.gettempdir()),
                dataset_path=None,
                run_name=command.operation_id,
            )
            check_program(invocation, template, source.name)
        except TemplateNotFoundError as exc:
            known = ", ".join(exc.details.get("known") or []) or "none"
            raise CommandNotFoundError(
                f"no command named {spec.name!r} in this host's commands folder (known here: {known}); "
                f"{_SYNC_HINT}: keep it in sync with the backend's",
                **exc.details,
            ) from exc
        except TrainkitError as exc:
            raise InvalidConfigError(f"on this host, {exc.message}", **exc.details) from exc
        if dataset is not None and dataset.as_posix() not in {ref.filename for ref in command.datasets}:
            raise InvalidConfigError(
                f"command.dataset {spec.dataset!r} is not among the files the backend sends with the request",
                field="command.dataset",
            )

    def write_samples(self) -> None:
        """Write the sample commands into the folder when it holds no template yet (a first start)."""
        if has_commands(self.root):
            return
        try:
            written = write_sample_commands(self.root)
        except OSError:
            logger.exception("could not write the sample commands into %s", self.root)
        else:
            logger.info("wrote %d sample command file(s) into %s", len(written), self.root)
