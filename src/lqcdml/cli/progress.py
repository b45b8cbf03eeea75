"""Progress display: a tqdm bar on a terminal, a line every few percent in logs."""

from __future__ import annotations

import sys
import time

__all__ = ["Progress", "LazyProgress"]


class Progress:
    """Reports ``done/total`` with acceptance and dH.

    Interactive (stderr is a terminal): a tqdm bar. Otherwise one line per
    ``step_percent`` of the run, so batch logs stay short.
    """

    def __init__(
        self,
        total: int,
        initial: int = 0,
        label: str = "",
        enabled: bool | None = None,
        step_percent: float = 5.0,
        unit: str = "cfg",
    ):
        self.total, self.label, self.unit = total, label, unit
        self.interactive = sys.stderr.isatty() if enabled is None else enabled
        self.step = max(1, int(total * step_percent / 100))
        self.next_line = initial + self.step
        self.t0 = time.perf_counter()
        self.initial = initial
        self._bar = None
        if self.interactive:
            from tqdm import tqdm

            self._bar = tqdm(total=total, initial=initial, desc=label, unit=unit, file=sys.stderr)

    def update(self, done: int, **values: float) -> None:
        if self._bar is not None:
            self._bar.update(done - self._bar.n)
            self._bar.set_postfix({k: f"{v:.3g}" for k, v in values.items()}, refresh=False)
            return
        if done >= self.next_line or done == self.total:
            self.next_line = done + self.step
            rate = (done - self.initial) / max(time.perf_counter() - self.t0, 1e-9)
            extra = " ".join(f"{k}={v:.3g}" for k, v in values.items())
            print(
                f"[{self.label}] {done}/{self.total} ({100 * done / self.total:.0f}%) {rate:.2f} {self.unit}/s {extra}",
                file=sys.stderr,
                flush=True,
            )

    def message(self, text: str) -> None:
        """A line in the log (above the bar on a terminal)."""
        if self._bar is not None:
            self._bar.write(f"[{self.label}] {text}", file=sys.stderr)
        else:
            print(f"[{self.label}] {text}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


class LazyProgress:
    """A ``Progress`` made when the work ``begin``s (a driver knows where it resumes only
    after it opened its store or checkpoint); messages before that go to the log."""

    def __init__(self, label: str, enabled: bool | None, unit: str = "cfg"):
        self.label, self.enabled, self.unit = label, enabled, unit
        self.bar: Progress | None = None

    def begin(self, done: int, total: int) -> None:
        self.bar = Progress(total=total, initial=done, label=self.label, enabled=self.enabled, unit=self.unit)

    def message(self, text: str) -> None:
        if self.bar is None:
            print(f"[{self.label}] {text}", file=sys.stderr, flush=True)
        else:
            self.bar.message(text)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
