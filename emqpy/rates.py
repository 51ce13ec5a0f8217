"""The rate of a counter as EMQX's metrics worker (emqx_metrics_worker) reports it for rules,
authenticators and authorization sources: sampled every 10 seconds; `current` is the increase
since the previous sample per second, `max` the highest `current` since the meter was made,
`last5m` the mean of the samples of the last 5 minutes (of the ones there are, until there
are 30). Shown rounded to 2 decimals."""
from __future__ import annotations

from collections import deque

SAMPLING = 10.0  # seconds between samples
SAMPLES_5M = 30  # samples in 5 minutes


class RateMeter:
    __slots__ = ("current", "max", "last5m", "_last", "_samples")

    def __init__(self, count: int = 0):
        self.current = self.max = self.last5m = 0.0
        self._last = count  # the counter at the previous sample
        self._samples: deque[float] = deque(maxlen=SAMPLES_5M)

    def sample(self, count: int, period: float = SAMPLING) -> None:
        """Take a sample of the counter (every `period` seconds)."""
        rate = max(0, count - self._last) / period
        self._last = count
        self.current = rate
        if rate > self.max:
            self.max = rate
        self._samples.append(rate)
        self.last5m = sum(self._samples) / len(self._samples)

    def view(self) -> dict[str, float]:
        """EMQX's `rate`, `rate_max` and `rate_last5m` keys."""
        return {"rate": round(self.current, 2), "rate_max": round(self.max, 2),
                "rate_last5m": round(self.last5m, 2)}
