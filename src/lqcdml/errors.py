"""The one error type of the package: anything a user or the machine can cause.

Every error ``lqcdml`` reports as one line derives from ``LqcdmlError``; its
``exit_code`` is the command's exit status (2: bad input, a missing, foreign or
incompatible file; 3: a solver that did not converge; 4: damaged data).
"""

from __future__ import annotations

__all__ = ["LqcdmlError"]


class LqcdmlError(Exception):
    """An error with a one-line message naming what is wrong and what is allowed."""

    exit_code: int = 2
