"""A bounded load generator: prediction requests to model servers, for their metrics.

Each URL gets its own threads posting 8x8 images to ``/predict`` at a steady rate
until the load is stopped, its time is up or its request budget is spent, whichever
comes first; every request has a timeout. The answers are counted by status (0 for
no answer), so a caller can say what the servers were sent and how they answered.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Sequence
from types import TracebackType

# Two images in the dataset's 0..16 scale (any 64 values are a valid body).
IMAGES = (
    [0, 0, 5, 13, 9, 1, 0, 0] * 8,
    [0, 0, 0, 12, 13, 5, 0, 0] * 8,
)
REQUEST_TIMEOUT = 5.0


def post_image(url: str, image: Sequence[int], timeout: float = REQUEST_TIMEOUT) -> int:
    """POST one image to ``url``/predict; the status code, 0 when nothing answered."""
    request = urllib.request.Request(  # noqa: S310 - http(s) URLs of the caller's servers
        url.rstrip("/") + "/predict",
        data=json.dumps({"pixels": list(image)}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310
            answer.read()
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        exc.read()
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


class Load:
    """``rate`` requests a second to each URL, for at most ``seconds`` and ``budget`` each.

    A context manager: the threads start on entry and are stopped and joined on exit
    (joining is bounded too: a request in flight ends within its timeout).
    """

    def __init__(
        self,
        urls: Sequence[str],
        *,
        rate: float,
        seconds: float,
        budget: int,
        threads: int = 2,
    ) -> None:
        self.urls = list(urls)
        self.rate = rate
        self.seconds = seconds
        self.budget = budget
        self.threads = threads
        self.answers: dict[str, Counter[int]] = {url: Counter() for url in self.urls}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def _work(self, url: str, index: int) -> None:
        deadline = time.monotonic() + self.seconds
        interval = self.threads / self.rate
        for count in range(self.budget // self.threads):
            if self._stop.is_set() or time.monotonic() >= deadline:
                return
            status = post_image(url, IMAGES[(count + index) % len(IMAGES)])
            with self._lock:
                self.answers[url][status] += 1
            self._stop.wait(interval)

    def start(self) -> Load:
        for url in self.urls:
            for index in range(self.threads):
                worker = threading.Thread(
                    target=self._work, args=(url, index), name=f"load {url}", daemon=True
                )
                worker.start()
                self._workers.append(worker)
        return self

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join(timeout=REQUEST_TIMEOUT + 1)

    def sent(self, url: str) -> int:
        with self._lock:
            return sum(self.answers[url].values())

    def __enter__(self) -> Load:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = ["IMAGES", "Load", "post_image"]
