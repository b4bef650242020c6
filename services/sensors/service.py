"""The sensors service's nameko side: the alarm intake, the silent-device sweep, health.

Run: python -m services.nameko_run services.sensors.service"""
from __future__ import annotations

import logging

from nameko.timer import timer

from services.sensors import access
from services.sensors import operations as ops
from services.sensors.intake import AlarmIntake
from shared.access import rpc
from shared.config import settings
from shared.nameko_support import OutboxRelay

log = logging.getLogger(__name__)

SWEEP_SECONDS = settings().sensors_sweep_seconds


class SensorsService:
    name = "sensors"
    access = access.TABLE

    relay = OutboxRelay("sensors")
    intake = AlarmIntake()

    @rpc
    def health(self) -> dict:
        return ops.health()

    @timer(interval=SWEEP_SECONDS)
    def sweep_silent(self) -> None:
        opened = ops.sweep_silent()
        if opened:
            log.info("%d silent devices raised suspected cases", opened)
            self.relay()
