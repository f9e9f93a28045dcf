"""The mark of a field whose value depends on who is asking: ``metadata=VIEWER``.

The websocket server executes a subscription once for all its subscribers unless its document
selects a field so marked, and such a shared execution can't read the viewer (it raises): a
field that reads ``info.context.viewer`` without the mark fails in the tests (an error in the
payload, logged) rather than handing one user's answer to everyone. A field with other metadata
too merges the dicts: ``metadata={**VIEWER, "max_items": 100}``.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from realtime.sharing import VIEWER_DEPENDENT

# Read-only: one mapping shared by every marked field.
VIEWER: MappingProxyType[str, Any] = MappingProxyType({VIEWER_DEPENDENT: True})
