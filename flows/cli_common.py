"""What every `emoforge` command shares: the consoles it prints to and the one-line user error."""

from __future__ import annotations

from rich.console import Console

err = Console(stderr=True)
out = Console()


class UserError(Exception):
    """A mistake on the command line: reported in one line, no traceback."""


def notice(message: str) -> None:
    err.print(f"emoforge: {message}", markup=False, highlight=False, soft_wrap=True)
