"""One error taxonomy for the training library.

Every error trainkit raises derives from :class:`TrainkitError`. Errors are grouped by what the
caller can do about them: fix the input (config/data), give up on this run (divergence), or nothing
at all because the user asked for it (cancelled). Each carries a stable ``code`` so services can map
it to a wire error without string matching, and ``details`` naming the field/file/row at fault.
"""

from __future__ import annotations

from shared.contracts.errors import CodedError


class TrainkitError(CodedError):
    """Root of every error raised by trainkit; ``message``/``details`` come from the shared wire base."""

    code = "trainkit_error"


class ConfigError(TrainkitError):
    """A configuration value is invalid; ``details['field']`` names it."""

    code = "invalid_config"


class DataError(TrainkitError):
    """Input data is missing, malformed or insufficient; details name the file, column or row."""

    code = "invalid_data"


class DataNotFoundError(DataError):
    """The requested dataset does not exist."""

    code = "data_not_found"


class TrainingDivergedError(TrainkitError):
    """The loss became NaN or infinite; details carry ``epoch`` and ``batch``."""

    code = "training_diverged"


class TrainingCancelledError(TrainkitError):
    """Training stopped because its cancel token was set. The one exception type for cancellation."""

    code = "cancelled"


class CheckpointError(TrainkitError):
    """A checkpoint cannot be written or is unreadable, foreign, tampered with or of another version."""

    code = "invalid_checkpoint"


class ExportError(TrainkitError):
    """A stored model cannot be exported to another format (a command's files, a plugin's class)."""

    code = "model_not_exportable"


class ExportUnavailableError(TrainkitError):
    """The optional packages an export needs are not installed (the ``onnx`` extra)."""

    code = "export_unavailable"


class StorageError(TrainkitError):
    """The model store could not complete an operation."""

    code = "storage_error"


class ModelNotFoundError(StorageError):
    """No such model or version in the store."""

    code = "model_not_found"


class CommandNotFoundError(ConfigError):
    """No command template of that name in the commands folder; details list the known ones."""

    code = "command_not_found"


class CommandRunError(TrainkitError):
    """A command training's program ended badly; details carry ``exit_code`` and the output's ``tail``."""

    code = "command_failed"


class CommandKilledError(CommandRunError):
    """The program was killed by a signal that modelyard did not send (OOM killer, a user's kill)."""

    code = "command_killed"


class TimeLimitError(CommandRunError):
    """The program ran past its template's ``max_runtime_s`` and was stopped."""

    code = "time_limit"
