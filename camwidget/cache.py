"""A bounded, thread-safe least-recently-used cache: every cache in camwidget is one of these."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """Least recently used entries are dropped once the total cost passes `budget` (cost: 1 per entry by
    default, or e.g. bytes). The newest entry is always kept, even when it alone is over budget."""

    def __init__(self, budget: float, cost: Callable[[V], float] = lambda v: 1.0) -> None:
        self._items: OrderedDict[K, V] = OrderedDict()
        self._budget, self._cost, self._used = budget, cost, 0.0
        self._lock = threading.RLock()

    def get(self, key: K) -> V | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: K, value: V) -> None:
        with self._lock:
            if key in self._items:
                self._used -= self._cost(self._items.pop(key))
            self._items[key] = value
            self._used += self._cost(value)
            while self._used > self._budget and len(self._items) > 1:
                _, dropped = self._items.popitem(last=False)
                self._used -= self._cost(dropped)

    def pop(self, key: K) -> V | None:
        with self._lock:
            if key not in self._items:
                return None
            value = self._items.pop(key)
            self._used -= self._cost(value)
            return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The cached value, or `make()`'s, kept. `make` runs under the cache's lock: one maker at a time."""
        with self._lock:
            value = self.get(key)
            if value is None:
                value = make()
                self.put(key, value)
            return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._used = 0.0

    @property
    def used(self) -> float:
        return self._used

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, key: object) -> bool:
        return key in self._items


def give_back_freed_memory() -> None:
    """Return the memory that TensorFlow's passes freed to the operating system: glibc keeps freed blocks in
    its arenas, where they still count as the process's memory (RSS), until malloc_trim. Nothing elsewhere."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl): nothing to do
        pass
