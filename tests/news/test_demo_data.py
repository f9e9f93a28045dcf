"""The demo data looks like a real site and keeps every counter exact."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from accounts.passwords import verify_password
from db import models
from demo.datafiles import DATA_DIR, DemoDataError, read_demo_data
from demo.plan import build_plan
from demo.specs import CENTRAL_ASIA_SLUG
from markets.audit import audit
from settings import Settings

ROOT = Path(__file__).resolve().parents[2]


async def test_demo_data_matches_the_contract(demo_settings: Settings) -> None:
    from tortoise import Tortoise

    from db.config import tortoise_config
    from demo.seed import load_demo_data

    await Tortoise.init(config=tortoise_config(demo_settings))
    try:
        assert await load_demo_data() is False, "demo data goes only into an empty database"
        assert await models.Article.all().count() >= 45
        assert await models.Author.all().count() >= 8
        assert await models.Market.all().count() >= 10
        assert await models.MarketArticle.all().count() >= 10
        depths = {c.depth for c in await models.Category.all()}
        assert depths == {0, 1, 2}

        users = {u.username: u for u in await models.User.all()}
        for name, role in [
            ("alice", "READER"),
            ("bob", "READER"),
            ("editor", "AUTHOR"),
            ("admin", "ADMIN"),
        ]:
            assert users[name].role == role
            assert verify_password(users[name].password_hash, "demo-password")
            assert not verify_password(users[name].password_hash, "wrong")

        wallets = await models.LedgerAccount.filter(kind="USER")
        assert len(wallets) == len(users)
        markets = await models.Market.all()
        issuer = await models.LedgerAccount.get(kind="ISSUER")
        assert issuer.balance_cents == -100000 * len(users) - sum(
            m.liquidity_cents for m in markets
        )
        report = await audit()
        assert report.problems == []
        assert report.totals["sum_cents"] == 0
        # Markets were traded through the engine, so charts have history.
        traded = [m for m in markets if m.volume_cents > 0]
        assert len(traded) >= 8
        for market in traded:
            points = await models.PricePoint.filter(market_id=market.id).count()
            trades = await models.Trade.filter(market_id=market.id).count()
            assert points == trades + 1

        comments = await models.Comment.all()
        by_id = {c.id: c for c in comments}

        def depth(c: models.Comment) -> int:
            d = 1
            while c.parent_id is not None:
                c = by_id[c.parent_id]
                d += 1
            return d

        assert max(depth(c) for c in comments) == 3
        for article in await models.Article.all():
            mine = [c for c in comments if c.article_id == article.id]
            assert article.comment_count == sum(1 for c in mine if not c.deleted)
            assert sorted(c.sequence for c in mine) == list(range(1, len(mine) + 1))
            assert article.comment_seq == len(mine)
            assert article.word_count == len(article.body.split())
        replies = Counter(
            c.parent_id for c in comments if c.parent_id is not None and not c.deleted
        )
        for comment in comments:
            assert comment.reply_count == replies.get(comment.id, 0)
            parent_id = comment.parent_id
            if parent_id is not None:
                parent = by_id[parent_id]
                assert parent.article_id == comment.article_id
                assert parent.sequence < comment.sequence
    finally:
        await Tortoise.close_connections()


def test_the_seed_command_refuses_production(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AGORA_ENV": "production",
        "DATABASE_URL": f"sqlite://{tmp_path}/prod.sqlite3",
        "PYTHONPATH": str(ROOT),
    }
    result = subprocess.run(
        [sys.executable, "-m", "demo"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "production" in (result.stdout + result.stderr).lower()


def test_the_data_files_plan_the_same_rows_every_time() -> None:
    first, second = build_plan(read_demo_data()), build_plan(read_demo_data())
    assert first == second
    showcase = next(a for a in first if a.slug == CENTRAL_ASIA_SLUG)
    assert len(showcase.comments) == len(read_demo_data().showcase_thread)


def test_a_mistake_in_a_data_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shutil.copytree(DATA_DIR, data)
    article = sorted((data / "articles").glob("*.md"))[0]
    text = article.read_text(encoding="utf-8")
    article.write_text(text.replace("\ncategory = ", "\ncategroy = ", 1), encoding="utf-8")
    with pytest.raises(DemoDataError, match=rf"{article.name}.*categroy"):
        read_demo_data(data)

    article.write_text(text.replace("\n+++\n", "\n", 1), encoding="utf-8")
    with pytest.raises(DemoDataError, match="no closing"):
        read_demo_data(data)

    renamed = article.with_name(article.name.replace("-", "-x", 1))
    article.write_text(text, encoding="utf-8")
    article.rename(renamed)
    with pytest.raises(DemoDataError, match="file name must be"):
        read_demo_data(data)
