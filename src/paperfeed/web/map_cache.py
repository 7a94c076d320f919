"""The map's points, kept for a minute per layout, user and set of likes.

Building them reads every mapped paper and its topic labels: about 0.15 ms a paper, so
15 s per request at 100,000 papers, for a page that asks twice (its picture and its
data) and is reloaded as people explore. A new layout (``paperfeed map``) or a new like
is a new key and shows at once; a topic added or relabelled shows within ``ttl`` seconds.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence

from paperfeed.recommend.map_image import MapPoint, map_points
from paperfeed.store import Store
from paperfeed.store.recommend import MapLayout

TTL_SECONDS = 60.0
ENTRIES = 16

_Key = tuple[str, int, int | None, frozenset[int]]


class MapCache:
    def __init__(self, *, ttl: float = TTL_SECONDS, entries: int = ENTRIES) -> None:
        self.ttl = ttl
        self.entries = entries
        self._points: OrderedDict[_Key, tuple[float, list[MapPoint]]] = OrderedDict()
        self._lock = threading.Lock()

    def points(
        self,
        store: Store,
        layout: MapLayout,
        *,
        liked: Sequence[int] = (),
        user_id: int | None = None,
    ) -> list[MapPoint]:
        key = (
            str(layout.metadata.get("computed_at", "")),
            len(layout.keys),
            user_id,
            frozenset(int(k) for k in liked),
        )
        now = time.monotonic()
        with self._lock:
            found = self._points.get(key)
            if found is not None and now - found[0] < self.ttl:
                self._points.move_to_end(key)
                return found[1]
        points = map_points(store, layout, liked=liked, user_id=user_id)
        with self._lock:
            self._points[key] = (now, points)
            self._points.move_to_end(key)
            while len(self._points) > self.entries:
                self._points.popitem(last=False)
        return points
