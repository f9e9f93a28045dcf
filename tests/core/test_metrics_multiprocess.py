"""prometheus-client's multi-process mode, with real processes (it reads
``PROMETHEUS_MULTIPROC_DIR`` when it is imported, so each worker here is a subprocess): /metrics
sums every worker's counters, and a dead worker's live gauges drop out once the supervisor marks
it dead (``metrics.mark_process_dead``) while its counters stay counted."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]

# One worker's life: it counts, then exits without cleaning up (as a killed worker would).
WORKER = """
import os, sys
import metrics
metrics.TRADES.labels("buy").inc(int(sys.argv[1]))
metrics.WEBSOCKETS_OPEN.inc(int(sys.argv[2]))
metrics.SUBSCRIPTIONS_ACTIVE.labels("commentAdded").inc()
metrics.BROKER_LAG.labels("odds").observe(0.002)
print(os.getpid())
"""

# A worker answering a scrape through the app's own route.
SCRAPE = """
import asyncio, sys
import httpx
from asgi_lifespan import LifespanManager
from app import create_app
from settings import Settings

async def main():
    app = create_app(Settings(database_url=f"sqlite://{sys.argv[1]}", env="test"))
    async with LifespanManager(app), httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver"
    ) as http:
        response = await http.get("/metrics")
        assert response.status_code == 200, response.text
        sys.stdout.write(response.text)

asyncio.run(main())
"""

DEAD = "import sys, metrics; metrics.mark_process_dead(int(sys.argv[1]))"


def run(code: str, folder: Path, *args: str) -> str:
    """Run ``code`` in a new process writing its metrics to ``folder``; its output."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(folder)}
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of ``text`` by name and labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_sum_the_workers_and_drop_a_dead_ones_live_gauges(tmp_path: Path) -> None:
    folder = tmp_path / "prometheus"
    folder.mkdir()
    database = tmp_path / "scrape.sqlite3"
    first = int(run(WORKER, folder, "3", "1"))
    second = int(run(WORKER, folder, "4", "2"))
    assert first != second

    values = samples(run(SCRAPE, folder, str(database)))
    assert values[("agora_trades_total", (("side", "buy"),))] == 7
    assert values[("agora_websockets_open", ())] == 3
    assert values[("agora_subscriptions_active", (("field", "commentAdded"),))] == 2
    assert values[("agora_broker_lag_seconds_count", (("kind", "odds"),))] == 2
    # The scraping worker's own series are there too (it opened no socket).
    assert ("agora_broker_published_total", (("kind", "comments"),)) in values

    run(DEAD, folder, str(first))
    values = samples(run(SCRAPE, folder, str(database)))
    # Live gauges: the dead worker's share is gone. Counters and histograms keep what it did.
    assert values[("agora_websockets_open", ())] == 2
    assert values[("agora_subscriptions_active", (("field", "commentAdded"),))] == 1
    assert values[("agora_trades_total", (("side", "buy"),))] == 7
    assert values[("agora_broker_lag_seconds_count", (("kind", "odds"),))] == 2
