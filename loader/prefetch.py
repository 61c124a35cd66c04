"""Reading batches ahead in one background thread while the caller works on the current one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["Prefetcher"]

_END = object()


class _Failure:
    """An exception raised in the thread, carried to the consumer to be raised there."""

    def __init__(self, error: BaseException):
        self.error = error


class Prefetcher:
    """Runs ``load`` over ``plan`` in one background thread, ``depth`` items ahead.

    Args:
        load: makes an item (a batch) from a plan entry's payload.
        plan: ``(number, payload)`` pairs, in serving order.
        depth: items made ahead of the consumer (> 0); bounds the memory held in the queue.

    Iterating yields ``(number, load(payload))`` in plan order; an exception in the thread is
    raised in the consumer. ``close()`` stops the thread; call it when a pass ends or is left.

    Notes:
        One thread: file reads and array copies release the GIL, so it overlaps the caller's
        training step, while a second reader thread was slower on two cores (the zip and header
        parsing hold the GIL).
    """

    def __init__(self, load: Callable[[Any], Any], plan: Iterable[tuple[int, Any]], depth: int):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(load, plan), name="loader-prefetch", daemon=True
        )
        self._thread.start()

    def _run(self, load: Callable[[Any], Any], plan: Iterable[tuple[int, Any]]) -> None:
        try:
            for number, payload in plan:
                if self._stop.is_set():
                    return
                self._queue.put((number, load(payload)))
            self._queue.put(_END)
        except BaseException as error:  # handed to the consumer, raised there
            self._queue.put(_Failure(error))

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item

    def close(self) -> None:
        """Stop the thread and drop what it read ahead."""
        self._stop.set()
        while True:  # unblock a producer waiting to put
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout=30)
