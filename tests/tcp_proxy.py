"""A counting TCP proxy in front of the real S3 server: the endpoint the docks see.

It forwards bytes unchanged (presigned URLs are signed for the proxy's host, which the S3 server
checks against the Host header it receives), counts the bytes clients send, and can be taken down
and brought back on the same port to play an S3 outage or cut every open connection.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time


class CountingProxy:
    def __init__(self, target: str, port: int = 0, rate: float | None = None) -> None:
        host, _, p = target.partition(":")
        self.target = (host, int(p))
        self.port = port
        self.sent = 0  # bytes received from clients and forwarded upstream
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._conns: set[socket.socket] = set()
        self.up = False
        # Bytes per second a client may send (all connections together): slows a dock down so a
        # test can interrupt it in the middle of a file, without any timing in the assertions.
        self.rate = rate
        self._budget_at = time.monotonic()

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> CountingProxy:
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        self.port = ls.getsockname()[1]
        ls.listen(64)
        self._listener = ls
        self.up = True
        threading.Thread(target=self._accept, args=(ls,), daemon=True).start()
        return self

    def _accept(self, ls: socket.socket) -> None:
        while True:
            try:
                client, _ = ls.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, count: bool) -> None:
        try:
            while True:
                data = src.recv(256 * 1024)
                if not data:
                    break
                if count:
                    with self._lock:
                        self.sent += len(data)
                        if self.rate:
                            self._budget_at = max(self._budget_at, time.monotonic()) + len(data) / self.rate
                            wait = self._budget_at - time.monotonic()
                        else:
                            wait = 0.0
                    if wait > 0:
                        time.sleep(wait)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            with self._lock:
                self._conns.discard(src)
                self._conns.discard(dst)

    def cut(self) -> None:
        """Drop every open connection (the listener stays)."""
        with self._lock:
            conns = list(self._conns)
        for s in conns:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def drain(self) -> None:
        """Drop every open connection and wait until no pump is left (a killed client's bytes that
        were still buffered are then counted before the caller resets ``sent``)."""
        self.cut()
        deadline = time.monotonic() + 10
        while self._conns and time.monotonic() < deadline:
            time.sleep(0.01)

    def stop(self) -> None:
        """Refuse new connections and drop open ones: storage is down."""
        self.up = False
        if self._listener is not None:
            # shutdown first: close alone leaves a thread blocked in accept() holding the socket, and
            # the port goes on accepting connections (Linux)
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        self.cut()
