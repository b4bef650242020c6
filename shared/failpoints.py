"""Named places where a test may make this process die on purpose (GRIDBUS_FAILPOINT=name).

Used by fault tests to kill a process at the exact moment that matters, as kill -9 would."""
import os

from shared.config import settings


def hit(name: str) -> None:
    if settings().failpoint == name:
        os._exit(137)
