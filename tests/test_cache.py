"""camwidget.cache: the one bounded LRU behind every cache."""

import threading

from camwidget.cache import LRU


def test_least_recently_used_goes_first_and_cost_is_accounted():
    cache = LRU(10, cost=len)
    cache.put("a", "xxxx")
    cache.put("b", "xxxx")
    assert cache.get("a") == "xxxx"  # a is now the most recent
    cache.put("c", "xxxx")  # 12 > 10: b goes
    assert "b" not in cache and "a" in cache and "c" in cache and cache.used == 8
    assert cache.pop("a") == "xxxx" and cache.used == 4
    cache.put("c", "xx")  # replacing an entry replaces its cost
    assert cache.used == 2


def test_the_newest_entry_stays_even_over_budget():
    cache = LRU(3, cost=len)
    cache.put("big", "xxxxxxxx")
    assert cache.get("big") == "xxxxxxxx" and len(cache) == 1


def test_get_or_make_makes_once_under_threads():
    cache, made = LRU(4), []

    def make():
        made.append(1)
        return "value"

    threads = [threading.Thread(target=lambda: cache.get_or_make("k", make)) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert made == [1] and cache.get("k") == "value"
