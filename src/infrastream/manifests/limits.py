"""The documented limits of a manifest: one home for the numbers.

Manifests come from repositories and API clients nobody vets, and the engine keeps their
values for a long time (approval expiries, soak times, timeouts, in dates it computes again at
every pass). So the loader and the models refuse, each with a located diagnostic, what the
engine could not hold or what would make validation itself the attack:

- nesting deeper than `MAX_DEPTH` levels (`too-deep`; real manifests are 6 levels deep, and
  deeper data would exhaust the recursion of the parser and the validators);
- a scalar longer than `MAX_SCALAR_LENGTH` characters, an integer outside 64 bits, or a
  document of more than `MAX_VALUES` values once its aliases are expanded (`too-large`: the
  last one stops the "billion laughs", whose few lines expand to 10^9 values);
- a duration longer than `MAX_DURATION` (`invalid-duration`) and an approval count above
  `MAX_APPROVALS` (`invalid-count`).

The README's "Validation codes" section states the same numbers (a test keeps them together).
"""

from __future__ import annotations

from typing import Final

MAX_DEPTH: Final = 64
"""Levels of mappings and lists in one document (the document itself is level 1), an alias
counting the levels of the value it repeats."""

MAX_SCALAR_LENGTH: Final = 65_536
"""Characters of one scalar: a key, a string or the text of a number."""

MAX_VALUES: Final = 100_000
"""Values of one document, counting an alias as the values it repeats."""

MIN_INTEGER: Final = -(2**63)
MAX_INTEGER: Final = 2**63 - 1
"""Integers are 64-bit, as the database and JSON clients hold them."""

MAX_DURATION_TEXT: Final = "365d"
MAX_DURATION: Final = 365 * 86_400
"""Seconds of the longest duration (expiresAfter, soak duration, timeouts): 365 days."""

MAX_APPROVALS: Final = 100
"""The largest `count` of an approval rule: distinct people who must sign off."""

SHOWN_CHARACTERS: Final = 80
"""How much of a value a diagnostic quotes before it cuts it with `…`."""


def shown(text: str, width: int = SHOWN_CHARACTERS) -> str:
    """`text` as a diagnostic quotes it: at most `width` characters, then `…`."""
    if len(text) <= width:
        return text
    return text[:width] + "…"
