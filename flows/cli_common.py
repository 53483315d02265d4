"""What every `emoforge` command shares: the consoles it prints to and the one-line user error."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True)
out = Console()


class UserError(Exception):
    """A mistake on the command line: reported in one line, no traceback."""


def notice(message: str) -> None:
    err.print(f"emoforge: {message}", markup=False, highlight=False, soft_wrap=True)


def load_config_checked(config_file, overrides: list[str]):
    """The configuration, checked before any work (flows/config_check.py): a problem is one line and
    exit 2; a retired key's warning is one line on stderr."""
    import warnings

    from flows.config_check import load_checked_config
    from schemas.config import ConfigError
    from schemas.config_legacy import ConfigDeprecationWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConfigDeprecationWarning)
        try:
            config = load_checked_config(config_file, overrides)
        except ConfigError as exc:
            raise UserError(str(exc)) from None
    for w in caught:
        if issubclass(w.category, ConfigDeprecationWarning):
            notice(f"warning: {w.message}")
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return config
