"""The app with per-subscriber execution: the unshared baseline of ``bench.fanout``.

    uvicorn bench.fanout_app:create_unshared_app --factory        # this tree's app
    PYTHONPATH=APP_ROOT:bench uvicorn fanout_app:create_unshared_app --factory   # APP_ROOT's

Exactly ``app.create_app`` (settings from the environment), except that the hub puts every
subscription in a group of its own (``Hub.share = False``, read at subscribe time), so each
event is executed and encoded once per subscriber. ``bench.fanout`` starts it the second way,
over the app of ``--app-root``: ``app.create_app`` and ``app.state.hub.share`` are the app's
stable interface.
"""

from __future__ import annotations

from starlette.applications import Starlette

from app import create_app


def create_unshared_app() -> Starlette:
    app = create_app()
    app.state.hub.share = False
    return app
