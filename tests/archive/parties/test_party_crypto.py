"""Identity numbers at rest: AES-GCM bound to the party, keys outside the database."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest
from pydantic import SecretStr

from archive.config import Settings
from archive.errors import IntegrityError
from archive.parties.crypto import IdCipher, cipher_from_settings, mask, normalise
from archive.parties.services import credit_code_valid, resident_id_valid


def test_round_trip_binding_and_tampering() -> None:
    c = IdCipher(os.urandom(32))
    token = c.encrypt("11010519491231002X", bound_to="party:a:id_number")
    assert "1101" not in token and token.startswith(f"v1:{c.key_id}:")
    assert c.decrypt(token, bound_to="party:a:id_number") == "11010519491231002X"
    # Moved to another party's row: refused, not decrypted.
    with pytest.raises(IntegrityError, match="party:b"):
        c.decrypt(token, bound_to="party:b:id_number")
    raw = bytearray(base64.b64decode(token.split(":", 2)[2]))
    raw[-1] ^= 1
    forged = token.rsplit(":", 1)[0] + ":" + base64.b64encode(bytes(raw)).decode()
    with pytest.raises(IntegrityError):
        c.decrypt(forged, bound_to="party:a:id_number")
    with pytest.raises(IntegrityError):
        IdCipher(os.urandom(32)).decrypt(token, bound_to="party:a:id_number")
    # Two encryptions differ (random nonce); the blind index is stable and keyed.
    assert c.encrypt("x", bound_to="p") != c.encrypt("x", bound_to="p")
    assert c.blind_index(" 110105-19491231002x ") == c.blind_index("11010519491231002X")
    assert IdCipher(os.urandom(32)).blind_index("11010519491231002X") != c.blind_index("11010519491231002X")


def test_key_from_file_0600_or_environment(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path)
    c1 = cipher_from_settings(s)
    path = tmp_path / "keys" / "party-id.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert cipher_from_settings(s).key == c1.key
    path.chmod(0o644)
    with pytest.raises(IntegrityError, match="chmod 600"):
        cipher_from_settings(s)
    key = os.urandom(32)
    from_env = cipher_from_settings(
        Settings(data_dir=tmp_path, party_key=SecretStr(base64.b64encode(key).decode()))
    )
    assert from_env.key == key
    with pytest.raises(IntegrityError, match="32 bytes"):
        cipher_from_settings(
            Settings(data_dir=tmp_path, party_key=SecretStr(base64.b64encode(b"short").decode()))
        )


def test_masks_and_check_characters() -> None:
    assert mask("11010519491231002X") == "**************002X"
    assert mask("E123") == "***3"
    assert normalise("\uff11\uff10 x") == "10X"
    assert resident_id_valid("11010519491231002X") and not resident_id_valid("110105194912310021")
    assert credit_code_valid("91110000600037341L") and not credit_code_valid("91110000600037341A")
