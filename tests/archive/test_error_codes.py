"""Every error the archive raises on purpose carries a stable machine code beside its message."""

from __future__ import annotations

import importlib
import pkgutil
import re

import pytest

from archive.errors import Concealed, Conflict, CustodyError, NotFound, ObjectMissing, StorageError
from tests.conftest import ROOT

CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
PACKAGES = ("archive", "api", "retention", "cli", "workers")


def all_error_classes() -> list[type[CustodyError]]:
    for package in PACKAGES:
        for mod in pkgutil.walk_packages([str(ROOT / package)], prefix=f"{package}."):
            if ".migrations" not in mod.name:
                importlib.import_module(mod.name)
    seen: list[type[CustodyError]] = []
    todo = [CustodyError]
    while todo:
        cls = todo.pop()
        seen.append(cls)
        todo.extend(cls.__subclasses__())
    return seen


def test_every_error_class_states_its_own_code() -> None:
    classes = all_error_classes()
    assert len(classes) > 20
    undeclared = [f"{c.__module__}.{c.__qualname__}" for c in classes if "code" not in vars(c)]
    assert not undeclared, (
        'give each error class its own stable `code` (e.g. code = "legal.not_submitted"; '
        f"archive/errors.py explains): {undeclared}"
    )
    bad = [f"{c.__qualname__}: {c.code!r}" for c in classes if not CODE.match(c.code)]
    assert not bad, bad


def test_concealment_is_not_betrayed_by_the_code() -> None:
    assert Concealed.code == NotFound.code
    assert ObjectMissing.code == StorageError.code  # the API hides which object; so does the code


def test_a_raise_site_may_be_finer_than_its_class() -> None:
    plain = Conflict("offset mismatch")
    assert plain.error_code == "conflict" and str(plain) == "offset mismatch"
    fine = Conflict("offset mismatch", code="upload.offset_mismatch")
    assert fine.error_code == "upload.offset_mismatch" and str(fine) == "offset mismatch"


@pytest.mark.parametrize("cls", [NotFound, Concealed, StorageError])
def test_codes_survive_pickling(cls: type[CustodyError]) -> None:
    """Celery carries exceptions between processes by pickling them."""
    import pickle

    err = pickle.loads(pickle.dumps(cls("x", code="media.not_found")))  # noqa: S301 - our own bytes
    assert type(err) is cls and str(err) == "x" and err.error_code == "media.not_found"
