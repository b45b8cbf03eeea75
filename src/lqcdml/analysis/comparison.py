"""One line of a comparison table (ours beside a published or exact value) and how its
numbers are written."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .summary import Row

__all__ = ["Comparison", "value_error", "flagged"]


@dataclass(frozen=True)
class Comparison:
    """One line of the table: ours and the published value; ``None`` where there is none.
    The pull is ``(ours - published) / sqrt(err_ours^2 + err_published^2)`` where both have errors."""

    quantity: str
    ours: float | None
    ours_error: float | None
    published: float | None
    published_error: float | None
    source: str
    published_text: str = ""  # what the paper says where it is not one number

    @property
    def pull(self) -> float | None:
        if self.ours is None or self.ours_error is None or self.published is None or self.published_error is None:
            return None
        sigma = math.hypot(self.ours_error, self.published_error)
        return (self.ours - self.published) / sigma if sigma > 0 else None


def value_error(value: float | None, error: float | None, as_quoted: bool = False) -> str:
    """``0.70199(30)``: the error's two leading digits in parentheses; ``value`` alone without
    error. ``as_quoted``: as few digits as the error has (a published ``0.7025(1)`` stays so)."""
    if value is None:
        return "not measured"
    if error is None or not math.isfinite(error) or error <= 0:
        return f"{value:.6g}"
    scale = math.floor(math.log10(abs(value) if value else error))
    if scale < -3 or scale > 5:  # 1.49(26)e-33
        return f"{value_error(value / 10**scale, error / 10**scale, as_quoted)}e{scale}"
    digits = max(0, 1 - math.floor(math.log10(error)))
    if as_quoted:  # one digit if the error has one (0.0001), two if it has two (8.5e-6)
        digits = next(
            (
                d
                for d in range(max(0, -math.floor(math.log10(error))), digits + 1)
                if abs(error * 10**d - round(error * 10**d)) < 1e-6
            ),
            digits,
        )
    scaled = round(error * 10**digits)
    if digits == 0:
        return f"{value:.0f}({scaled})"
    return f"{value:.{digits}f}({scaled})"


def flagged(quantity: str, r: Row | None) -> str:
    """``quantity``, marked where the error is the replica spread's (``Row.comparison_error``)."""
    return (
        f"{quantity} (error from the replica spread: the replicas disagree)" if r and r.replicas_disagree else quantity
    )
