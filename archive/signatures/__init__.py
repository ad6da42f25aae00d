"""Signed text records (电子认证、电子签章): authors' Ed25519 signatures, the archive's countersignature."""
