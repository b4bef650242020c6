"""Named places where a test may make this process die on purpose (GRIDBUS_FAILPOINT=name).

Used by fault tests to kill a process at the exact moment that matters, as kill -9 would."""
import os


def hit(name: str) -> None:
    if os.environ.get("GRIDBUS_FAILPOINT") == name:
        os._exit(137)
