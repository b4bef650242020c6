"""One log format for every process."""
import logging

from shared.config import settings


def setup_logging() -> None:
    logging.basicConfig(level=settings().log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
