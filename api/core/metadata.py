"""Field metadata the limits and the fan-out read where a field is defined."""

from __future__ import annotations

# At most MAX_EXPENSIVE_FIELDS of these in one document (password hashing, trades and settlements
# each cost far more than a read).
EXPENSIVE = {"expensive": True}
