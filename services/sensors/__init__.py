"""The sensors service: devices registered with their alarm codes, alarms over MQTT collapsed into suspected cases that a person confirms."""
