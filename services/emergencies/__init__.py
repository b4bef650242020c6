"""The emergencies service: urgent incidents alert the nearest available officers, widening until one accepts."""
