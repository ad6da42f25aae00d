"""Issue 10, finding 8: the signing key can live in a PKCS#11 token (SoftHSM2 here, an HSM in
production) instead of a file; the file backend stays the embedded default."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pkcs11
import pytest
from pkcs11 import Attribute, KeyType, ObjectClass
from pydantic import SecretStr

from archive.config import Settings
from archive.errors import SignatureInvalid
from archive.signing import Keyring, Signature
from archive.signing_pkcs11 import HsmError

ROOT = Path(__file__).resolve().parents[2]
MODULE = "/usr/lib/softhsm/libsofthsm2.so"  # Debian's softhsm2 (deploy/install.sh installs it)
TOKEN = "custody-test"
PIN = "custody-user-pin-0412"
DOC = {"media": "m-1", "sha256": "ab" * 32, "n": 1}


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A SoftHSM2 token of our own (its own token folder), as the agency's HSM would be."""
    d = tmp_path_factory.mktemp("softhsm")
    (d / "tokens").mkdir()
    conf = d / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {d / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the module when this process loads it
    subprocess.run(
        [
            "softhsm2-util",
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--so-pin",
            "so-pin-55667788",
            "--pin",
            PIN,
        ],
        check=True,
        capture_output=True,
    )
    yield {
        "SOFTHSM2_CONF": str(conf),
        "CUSTODY_SIGNING_BACKEND": "pkcs11",
        "CUSTODY_PKCS11_MODULE": MODULE,
        "CUSTODY_PKCS11_TOKEN_LABEL": TOKEN,
        "CUSTODY_PKCS11_PIN": PIN,
    }
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


def hsm_settings(data_dir: Path, pin: str = PIN) -> Settings:
    return Settings(
        data_dir=data_dir,
        signing_backend="pkcs11",
        pkcs11_module=MODULE,
        pkcs11_token_label=TOKEN,
        pkcs11_pin=SecretStr(pin),
    )


def test_file_backend_is_the_default(tmp_path: Path) -> None:
    ring = Keyring.from_settings(Settings(data_dir=tmp_path))
    assert ring.hsm is None
    key_id = ring.current_key_id()
    assert (tmp_path / "keys" / f"{key_id}.pem").exists()


def test_signing_happens_in_the_token_and_verifies_without_it(
    softhsm: dict[str, str], tmp_path: Path
) -> None:
    ring = Keyring.from_settings(hsm_settings(tmp_path))
    key_id = ring.current_key_id()
    keys = tmp_path / "keys"
    # no private key on disk: only the public half, for verifiers
    assert not (keys / f"{key_id}.pem").exists()
    assert (keys / f"{key_id}.pub.pem").exists()
    sig = ring.sign(DOC)
    assert sig.key_id == key_id
    ring.verify(DOC, sig)
    # a verifier without the token (file backend on the same folder) checks it too
    Keyring(keys).verify(DOC, sig)
    with pytest.raises(SignatureInvalid):
        Keyring(keys).verify({**DOC, "n": 2}, sig)

    # the private key is sensitive and cannot be exported from the token
    token = pkcs11.lib(MODULE).get_token(token_label=TOKEN)
    with token.open(user_pin=PIN) as session:
        private = list(
            session.get_objects(
                {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.KEY_TYPE: KeyType.EC_EDWARDS}
            )
        )
        assert private
        for key in private:
            assert key[Attribute.SENSITIVE] is True
            assert key[Attribute.EXTRACTABLE] is False

    # rotation: a new key in the token; old signatures keep verifying
    new_id = ring.rotate()
    assert new_id != key_id
    new_sig = ring.sign(DOC)
    assert new_sig.key_id == new_id
    ring.verify(DOC, sig)
    assert {k.key_id for k in ring.public_keys()} >= {key_id, new_id}


def test_moving_from_file_keys_to_the_token_keeps_old_signatures(
    softhsm: dict[str, str], tmp_path: Path
) -> None:
    file_ring = Keyring(tmp_path / "keys")
    old_sig = file_ring.sign(DOC)
    hsm_ring = Keyring.from_settings(hsm_settings(tmp_path))
    new_id = hsm_ring.current_key_id()
    assert new_id != old_sig.key_id  # the file key stops signing...
    hsm_ring.verify(DOC, old_sig)  # ...and keeps verifying
    assert hsm_ring.sign(DOC).key_id == new_id
    assert {k.key_id for k in hsm_ring.public_keys()} == {old_sig.key_id, new_id}


def test_a_wrong_pin_is_refused(softhsm: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(HsmError, match="PinIncorrect"):
        Keyring.from_settings(hsm_settings(tmp_path, pin="not-the-pin")).sign(DOC)
    with pytest.raises(SignatureInvalid, match="unknown signing key"):
        Keyring(tmp_path / "keys").verify(DOC, Signature("0" * 16, "AAAA"))


def test_cli_checkpoint_signed_in_the_token_verifies(softhsm: dict[str, str], env: dict[str, str]) -> None:
    """The whole path: `custody keys rotate` makes the key in the token, `custody checkpoint` signs
    the custody log there, `custody verify` checks it."""
    run_env = {**os.environ, **env, **softhsm}

    def custody(*args: str) -> str:
        out = subprocess.run(
            [sys.executable, "-m", "cli.main", "--lang", "en", *args],
            env=run_env,
            cwd=ROOT,
            capture_output=True,
            text=True,
        )
        assert out.returncode == 0, out.stdout + out.stderr
        return out.stdout

    custody("keys", "rotate")
    line = custody("checkpoint")
    key_id = line.splitlines()[0].rsplit("key ", 1)[1].strip()
    keys = Path(env["CUSTODY_DATA_DIR"]) / "keys"
    assert (keys / f"{key_id}.pub.pem").exists() and not (keys / f"{key_id}.pem").exists()
    assert "OK: no discrepancies" in custody("verify")
