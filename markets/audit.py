"""``python -m markets.audit``: check that money is conserved to the cent, and print totals.

Checks: every ledger transaction sums to zero; every account's balance equals the sum of its
entries; all balances together sum to zero; no user's wallet is negative; every market maker
of a settled market holds nothing; positions hold no negative shares. Exit status 1 on any
failure.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field

from tortoise import Tortoise

from db.config import tortoise_config
from db.sql import fetch_dicts
from settings import load_settings


@dataclass
class AuditReport:
    """What the audit found."""

    totals: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.problems


async def audit() -> AuditReport:
    """Run every check against the default connection."""
    report = AuditReport()
    unbalanced = await fetch_dicts(
        "SELECT transaction_id, SUM(amount_cents) AS s FROM ledger_entries "
        "GROUP BY transaction_id HAVING SUM(amount_cents) <> 0"
    )
    for row in unbalanced:
        report.problems.append(f"transaction {row['transaction_id']} sums to {row['s']}")
    drift = await fetch_dicts(
        "SELECT a.id, a.kind, a.balance_cents, COALESCE(SUM(e.amount_cents), 0) AS entries "
        "FROM ledger_accounts a LEFT JOIN ledger_entries e ON e.account_id = a.id "
        "GROUP BY a.id, a.kind, a.balance_cents "
        "HAVING a.balance_cents <> COALESCE(SUM(e.amount_cents), 0)"
    )
    for row in drift:
        report.problems.append(
            f"{row['kind']} account {row['id']} holds {row['balance_cents']} "
            f"but its entries sum to {row['entries']}"
        )
    kinds = await fetch_dicts(
        "SELECT kind, COALESCE(SUM(balance_cents), 0) AS total, COUNT(*) AS n "
        "FROM ledger_accounts GROUP BY kind"
    )
    total = 0
    for row in kinds:
        report.totals[f"{str(row['kind']).lower()}_cents"] = int(row["total"])
        report.totals[f"{str(row['kind']).lower()}_accounts"] = int(row["n"])
        total += int(row["total"])
    report.totals["sum_cents"] = total
    if total != 0:
        report.problems.append(f"all balances sum to {total}, not 0")
    negative = await fetch_dicts(
        "SELECT id, balance_cents FROM ledger_accounts WHERE kind = 'USER' AND balance_cents < 0"
    )
    for row in negative:
        report.problems.append(f"wallet {row['id']} is negative: {row['balance_cents']}")
    settled = await fetch_dicts(
        "SELECT a.id, a.balance_cents, m.id AS market_id FROM ledger_accounts a "
        "JOIN markets m ON m.id = a.market_id "
        "WHERE a.kind = 'MARKET' AND m.state <> 'OPEN' AND a.balance_cents <> 0"
    )
    for row in settled:
        report.problems.append(
            f"settled market {row['market_id']}'s maker still holds {row['balance_cents']}"
        )
    short = await fetch_dicts("SELECT id FROM positions WHERE shares_units < 0")
    for row in short:
        report.problems.append(f"position {row['id']} holds negative shares")
    counts = await fetch_dicts(
        "SELECT (SELECT COUNT(*) FROM ledger_transactions) AS transactions, "
        "(SELECT COUNT(*) FROM ledger_entries) AS entries, (SELECT COUNT(*) FROM trades) AS trades"
    )
    report.totals.update({k: int(v) for k, v in counts[0].items()})
    return report


def _money(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


async def _main() -> int:
    settings = load_settings()
    await Tortoise.init(config=tortoise_config(settings))
    try:
        report = await audit()
    finally:
        await Tortoise.close_connections()
    for name, value in sorted(report.totals.items()):
        shown = _money(value) if name.endswith("_cents") else str(value)
        print(f"{name.removesuffix('_cents'):<20} {shown:>20}")
    if report.ok:
        print("OK: every transaction balances, every account matches its entries, sum is 0.00")
        return 0
    for problem in report.problems:
        print(f"PROBLEM: {problem}")
    return 1


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
