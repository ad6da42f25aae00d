"""Errors of accounts and the device registry."""

from archive.errors import InvalidInput, NotFound


class InvalidSerial(InvalidInput):
    code = "device.invalid_serial"
    http_status = 422


class InvalidRegistration(InvalidInput):
    code = "device.invalid_registration"
    http_status = 422


class UnknownDevice(NotFound):
    code = "device.not_found"
