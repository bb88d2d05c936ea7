"""A TCP proxy in front of Redis that loses one reply on purpose.

Stopping Redis during traffic sometimes lets a command be applied while
its reply never arrives; this proxy makes that happen on cue, for one
chosen command: the client sees its connection drop, Redis has done the
work.  Which command is chosen by a marker, bytes that only it carries (a
query parameter of a task travels inside the task's message):

``drop_reply_to(marker, then_refuse=False)``: the first command the
client sends that contains the marker goes to Redis; Redis's reply to it is
not passed on, and the client's connection is closed instead.  With
``then_refuse``, the proxy then closes every new connection at once (as if
Redis had died after applying the command) until ``accept_again()``.

``drop_reply_with(marker)``: the first reply that contains the marker (a
message a consumer reserved, say) is not passed on, and the connection is
closed instead.

``close_after_reply_to(marker)``: the reply to the first command that
contains the marker is passed on; then the connection is closed and every
new one too, until ``accept_again()`` (Redis died right after answering).

``cut_off()``: every connection is closed at once, and every new one too,
until ``accept_again()`` (the server out of reach; the proxy passes plain
TCP, so it may stand in front of PostgreSQL as well).

Everything else passes through untouched.
"""
from __future__ import annotations

import socket
import threading

__all__ = ['ReplyDroppingProxy']


class ReplyDroppingProxy:

    def __init__(self, redis_port: int):
        self.redis_port = redis_port
        self.listener = socket.create_server(('127.0.0.1', 0))
        self.port = self.listener.getsockname()[1]
        self._lock = threading.Lock()
        self._after_request: bytes | None = None
        self._in_reply: bytes | None = None
        self._then_refuse = False
        self._pass_reply = False
        #: Close new connections at once.
        self.refusing = False
        #: How many replies were dropped.
        self.dropped = 0
        self._closed = False
        self._connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True,
                         name='proxy accept').start()

    @property
    def url(self) -> str:
        return f'redis://127.0.0.1:{self.port}/0'

    def drop_reply_to(self, marker: bytes, then_refuse: bool = False) -> None:
        with self._lock:
            self._after_request = marker
            self._then_refuse = then_refuse

    def accept_again(self) -> None:
        self.refusing = False

    def close_after_reply_to(self, marker: bytes) -> None:
        with self._lock:
            self._after_request = marker
            self._then_refuse = True
            self._pass_reply = True

    def cut_off(self) -> None:
        with self._lock:
            self.refusing = True
            for connection in self._connections:
                _close(connection)

    def drop_reply_with(self, marker: bytes) -> None:
        with self._lock:
            self._in_reply = marker

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        with self._lock:
            for connection in self._connections:
                _close(connection)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing:
                _close(client)
                continue
            try:
                server = socket.create_connection(
                    ('127.0.0.1', self.redis_port))
            except OSError:
                _close(client)  # Redis is down: so is the proxy
                continue
            pair = _Pair(self, client, server)
            with self._lock:
                self._connections += [client, server]
            threading.Thread(target=pair.upstream, daemon=True,
                             name='proxy up').start()
            threading.Thread(target=pair.downstream, daemon=True,
                             name='proxy down').start()

    # Called by _Pair, under no lock of its own.

    def _request_marked(self, data: bytes) -> bool:
        with self._lock:
            if self._after_request and self._after_request in data:
                self._after_request = None
                return True
        return False

    def _reply_marked(self, data: bytes) -> bool:
        with self._lock:
            if self._in_reply and self._in_reply in data:
                self._in_reply = None
                self.dropped += 1
                return True
        return False

    def _count_drop(self) -> bool:
        """Count a closed connection; whether the reply is passed on."""
        with self._lock:
            self.dropped += 1
            if self._then_refuse:
                self.refusing = True
            passed, self._pass_reply = self._pass_reply, False
            return passed


class _Pair:
    """One client connection and its connection to Redis."""

    #: Enough for the markers and messages of the fault tests: a chunk is
    #: searched together with the end of the previous one.
    OVERLAP = 256

    def __init__(self, proxy: ReplyDroppingProxy, client, server):
        self.proxy = proxy
        self.client = client
        self.server = server
        self.drop_next_reply = threading.Event()

    def upstream(self) -> None:
        tail = b''
        while True:
            data = _recv(self.client)
            if not data:
                break
            if self.proxy._request_marked(tail + data):
                self.drop_next_reply.set()
            tail = (tail + data)[-self.OVERLAP:]
            if not _send(self.server, data):
                break
        self._close()

    def downstream(self) -> None:
        tail = b''
        while True:
            data = _recv(self.server)
            if not data:
                break
            if self.drop_next_reply.is_set():
                # Redis answered the marked command: it is applied.
                if self.proxy._count_drop():
                    _send(self.client, data)
                break
            if self.proxy._reply_marked(tail + data):
                break
            tail = (tail + data)[-self.OVERLAP:]
            if not _send(self.client, data):
                break
        self._close()

    def _close(self) -> None:
        _close(self.client)
        _close(self.server)


def _recv(sock: socket.socket) -> bytes:
    try:
        return sock.recv(65536)
    except OSError:
        return b''


def _send(sock: socket.socket, data: bytes) -> bool:
    try:
        sock.sendall(data)
    except OSError:
        return False
    return True


def _close(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
