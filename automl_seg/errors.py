"""Errors that reach the user as one clear line (the CLI prints them, exits non-zero)."""


class UserError(Exception):
    """A problem the user can fix: the message names the problem and what to do."""

    exit_code = 2


class DataError(UserError):
    """A dataset, dataset.json or case that cannot be used."""


class ConfigError(UserError):
    """A config file or flag with an invalid value."""


class PluginError(UserError):
    """A plugin that cannot be loaded or registers something invalid."""


class RegistryError(UserError):
    """A registry reference or record that cannot be used."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, a batch scheduler ending a job), raised in the main thread by the CLI so that
    the run unwinds exactly as on Ctrl-C: checkpoints kept, nothing half-registered, a tune trial
    failed with its reason."""


class RunStopped(Exception):
    """Raised by an observer (e.g. Optuna's pruner) to end a run early; the engine lets it through."""


class ExportError(UserError):
    """An export that fails, or whose artefact does not compute what the model computes."""
