"""Small renderings shared by the admin CLI and the status page."""

from __future__ import annotations


def format_age(seconds: int | None) -> str:
    """Render a number of seconds as ``3d 4h``, ``2h 5m``, ``7m 3s`` or ``-``."""
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [(days, "d"), (hours, "h"), (minutes, "m"), (secs, "s")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or "0s"
