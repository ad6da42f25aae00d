"""SHA-256 whose state can be saved and restored, at hashlib's speed.

``hashlib.sha256`` objects cannot be pickled or exported, so a verification killed half way through
a 64 GB original would have to start again. OpenSSL's low-level ``SHA256_Init``/``SHA256_Update``/
``SHA256_Final`` work on a ``SHA256_CTX``, a plain C struct declared in the public header
``openssl/sha.h`` (eight state words, the bit count, the partial block): its bytes *are* the state.
The same libcrypto that backs hashlib does the hashing (SHA-NI where the CPU has it); ctypes releases
the GIL for each call. Those functions are deprecated in OpenSSL 3 in favour of EVP (whose state is
opaque) but still exported by every 3.x release; where they are missing, :func:`available` is False
and callers hash with hashlib without checkpoints (a crash then restarts the hash).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
from functools import lru_cache
from typing import Any


class _Ctx(ctypes.Structure):
    # openssl/sha.h: typedef struct SHA256state_st { SHA_LONG h[8]; SHA_LONG Nl, Nh;
    # SHA_LONG data[SHA_LBLOCK]; unsigned int num, md_len; } SHA256_CTX;
    _fields_ = [
        ("h", ctypes.c_uint32 * 8),
        ("Nl", ctypes.c_uint32),
        ("Nh", ctypes.c_uint32),
        ("data", ctypes.c_uint32 * 16),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    ]


STATE_BYTES = ctypes.sizeof(_Ctx)


@lru_cache(maxsize=1)
def _lib() -> Any:
    name = ctypes.util.find_library("crypto")
    if not name:
        return None
    try:
        lib = ctypes.CDLL(name)
        for fn in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
            getattr(lib, fn)
    except (OSError, AttributeError):
        return None
    lib.SHA256_Init.argtypes = [ctypes.POINTER(_Ctx)]
    lib.SHA256_Init.restype = ctypes.c_int
    lib.SHA256_Update.argtypes = [ctypes.POINTER(_Ctx), ctypes.c_void_p, ctypes.c_size_t]
    lib.SHA256_Update.restype = ctypes.c_int
    lib.SHA256_Final.argtypes = [ctypes.c_char_p, ctypes.POINTER(_Ctx)]
    lib.SHA256_Final.restype = ctypes.c_int
    # Known-answer check: a libcrypto whose struct differs from the header above must not be used.
    probe = ResumableSha256.__new__(ResumableSha256)
    probe._ctx = _Ctx()
    lib.SHA256_Init(ctypes.byref(probe._ctx))
    probe._lib = lib
    probe.size = 0
    probe.update(b"abc" * 50)
    again = ResumableSha256.__new__(ResumableSha256)
    again._ctx = _Ctx.from_buffer_copy(probe.state())
    again._lib = lib
    again.size = probe.size
    again.update(b"xyz")
    if again.hexdigest() != hashlib.sha256(b"abc" * 50 + b"xyz").hexdigest():
        return None
    return lib


def available() -> bool:
    return _lib() is not None


class ResumableSha256:
    """``update`` bytes; ``state()`` is a 112-byte snapshot that ``ResumableSha256(state, size)``
    continues from, in this or another process."""

    def __init__(self, state: bytes | None = None, size: int = 0) -> None:
        lib = _lib()
        if lib is None:
            raise RuntimeError("libcrypto's SHA256_* functions are not available")
        self._lib = lib
        if state is None:
            self._ctx = _Ctx()
            lib.SHA256_Init(ctypes.byref(self._ctx))
            if size:
                raise ValueError("a fresh hash covers 0 bytes")
        else:
            if len(state) != STATE_BYTES:
                raise ValueError(f"SHA-256 state must be {STATE_BYTES} bytes")
            self._ctx = _Ctx.from_buffer_copy(state)
            bits = (self._ctx.Nh << 32) | self._ctx.Nl
            if bits != size * 8:
                raise ValueError("the state does not cover the stated number of bytes")
        self.size = size

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        if not view.contiguous:
            raise ValueError("data must be contiguous")
        n = view.nbytes
        if not n:
            return
        if isinstance(data, bytes):
            ptr = ctypes.cast(ctypes.c_char_p(data), ctypes.c_void_p)
            self._lib.SHA256_Update(ctypes.byref(self._ctx), ptr, n)
        else:
            buf = (ctypes.c_char * n).from_buffer(view.cast("B")) if not view.readonly else None
            if buf is None:
                self._lib.SHA256_Update(ctypes.byref(self._ctx), ctypes.c_char_p(view.tobytes()), n)
            else:
                self._lib.SHA256_Update(ctypes.byref(self._ctx), ctypes.addressof(buf), n)
        self.size += n

    def state(self) -> bytes:
        return bytes(self._ctx)

    def hexdigest(self) -> str:
        ctx = _Ctx.from_buffer_copy(bytes(self._ctx))
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctypes.byref(ctx))
        return out.raw.hex()
