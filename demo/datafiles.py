"""Reading the demo data files under ``demo/data/`` into :class:`~demo.specs.DemoData`.

* ``users.toml``, ``authors.toml``, ``categories.toml``, ``tags.toml``, ``markets.toml``: one
  record per row, in id order.
* ``desks.toml``: one table per desk; each of its pools is one string of passages separated
  by blank lines.
* ``comments.toml``: the pools generated comments are composed from, and the showcase
  article's hand-written thread.
* ``articles/NN-slug.md``: TOML front matter between ``+++`` lines (the fields of
  :class:`~demo.specs.ArticleSpec` but its paragraphs), then the article's own paragraphs:
  the lead, the details and any more (a planned body has 3 to 8 paragraphs in all). The
  slug is the title's, so the file name shows the article's URL. Files are read in NN
  order, which is the order of the planner's random draws: a new article takes the next
  number, or every article after it changes.

Prose is wrapped freely: the line breaks inside a paragraph are only wrapping, and are read as
spaces. Comment bodies are Markdown and are kept exactly as written.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from db.models import Role
from demo.specs import (
    ArticleSpec,
    AuthorRow,
    CategoryRow,
    CommentPools,
    DemoData,
    Desk,
    MarketSpec,
    TagRow,
    ThreadRow,
    UserSpec,
    slugify,
)

DATA_DIR = Path(__file__).resolve().parent / "data"

_ARTICLE_FILE = re.compile(r"(\d+)-([a-z0-9-]+)\.md")


class DemoDataError(ValueError):
    """A data file is missing, malformed, or has a record with wrong or unknown fields."""


def flat(text: str) -> str:
    """A wrapped text block as one line."""
    return " ".join(text.split())


def paragraphs(text: str) -> tuple[str, ...]:
    """The blank-line separated paragraphs of a text block, each on one line."""
    return tuple(flat(block) for block in re.split(r"\n\s*\n", text) if block.strip())


def _toml(path: Path, text: str | None = None) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8") if text is None else text)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DemoDataError(f"{path}: {exc}") from exc


def _record(
    raw: Any,
    where: str,
    required: Mapping[str, type],
    optional: Mapping[str, type] | None = None,
) -> dict[str, Any]:
    """``raw`` checked to be a table with exactly these fields, each of its type.

    A list type means a list of strings. Checked here so that a typo in a data file is an
    error naming the file and the record, not a KeyError deep in the planner.
    """
    optional = optional or {}
    if not isinstance(raw, dict):
        raise DemoDataError(f"{where}: expected a table, got {type(raw).__name__}")
    missing = sorted(required.keys() - raw.keys())
    unknown = sorted(raw.keys() - required.keys() - optional.keys())
    if missing or unknown:
        raise DemoDataError(f"{where}: missing fields {missing}, unknown fields {unknown}")
    for name, value in raw.items():
        kind = required.get(name) or optional[name]
        # bool is an int to isinstance: a count must not be `true`
        wrong = not isinstance(value, kind) or (kind is int and isinstance(value, bool))
        if kind is list and not wrong:
            wrong = not all(isinstance(item, str) for item in value)
        if wrong:
            raise DemoDataError(f"{where}: {name} must be {kind.__name__}, got {value!r}")
    return raw


def _list(document: dict[str, Any], key: str, path: Path | str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise DemoDataError(f"{path}: expected an array {key!r}")
    return value


def _strings(document: dict[str, Any], key: str, path: Path | str) -> tuple[str, ...]:
    return tuple(_record({key: document.get(key)}, str(path), {key: list})[key])


def read_users(path: Path) -> tuple[UserSpec, ...]:
    """``users.toml``: the demo accounts."""
    fields = {"username": str, "display_name": str, "role": str, "joined_days_ago": int}
    users = []
    for i, raw in enumerate(_list(_toml(path), "users", path)):
        row = _record(raw, f"{path}: users[{i}]", fields)
        if row["role"] not in Role.__members__:
            raise DemoDataError(f"{path}: users[{i}]: unknown role {row['role']!r}")
        users.append(
            UserSpec(
                row["username"], row["display_name"], Role(row["role"]), row["joined_days_ago"]
            )
        )
    return tuple(users)


def read_authors(path: Path) -> tuple[AuthorRow, ...]:
    """``authors.toml``: the bylines."""
    fields = {"slug": str, "name": str, "bio": str}
    rows = [
        _record(raw, f"{path}: authors[{i}]", fields, {"user": str})
        for i, raw in enumerate(_list(_toml(path), "authors", path))
    ]
    return tuple((r["slug"], r["name"], r["bio"], r.get("user")) for r in rows)


def read_categories(path: Path) -> tuple[CategoryRow, ...]:
    """``categories.toml``: the category tree, parents first."""
    rows = [
        _record(raw, f"{path}: categories[{i}]", {"slug": str, "name": str}, {"parent": str})
        for i, raw in enumerate(_list(_toml(path), "categories", path))
    ]
    return tuple((r["slug"], r["name"], r.get("parent")) for r in rows)


def read_tags(path: Path) -> tuple[TagRow, ...]:
    """``tags.toml``: the tags."""
    rows = [
        _record(raw, f"{path}: tags[{i}]", {"slug": str, "name": str})
        for i, raw in enumerate(_list(_toml(path), "tags", path))
    ]
    return tuple((r["slug"], r["name"]) for r in rows)


def read_desks(path: Path) -> dict[str, Desk]:
    """``desks.toml``: the text pools article bodies are completed from, by desk."""
    fields = {"context": str, "reaction": str, "outlook": str}
    desks = {}
    for name, raw in _toml(path).items():
        row = _record(raw, f"{path}: [{name}]", fields)
        desks[name] = Desk(*(paragraphs(row[section]) for section in fields))
    return desks


def read_comments(path: Path) -> tuple[CommentPools, tuple[ThreadRow, ...]]:
    """``comments.toml``: the generated comments' pools and the showcase thread."""
    document = _toml(path)
    by_desk = document.get("by_desk")
    if not isinstance(by_desk, dict):
        raise DemoDataError(f"{path}: expected a table [by_desk]")
    pools = CommentPools(
        general=_strings(document, "general", path),
        by_desk={desk: _strings(by_desk, desk, f"{path}: [by_desk]") for desk in by_desk},
        tails=_strings(document, "tails", path),
        reply_openers=_strings(document, "reply_openers", path),
        reply_points=_strings(document, "reply_points", path),
    )
    thread = []
    for i, raw in enumerate(_list(document, "showcase_thread", path)):
        where = f"{path}: showcase_thread[{i}]"
        row = _record(raw, where, {"author": str, "body": str}, {"parent": int, "deleted": bool})
        parent = row.get("parent")
        if parent is not None and not 0 <= parent < i:
            raise DemoDataError(f"{where}: parent must be an earlier comment's index")
        thread.append((row["author"], parent, row["body"], row.get("deleted", False)))
    return pools, tuple(thread)


def read_markets(path: Path) -> tuple[MarketSpec, ...]:
    """``markets.toml``: the prediction markets."""
    fields = {
        "slug": str,
        "question": str,
        "outcomes": list,
        "tags": list,
        "articles": list,
        "created_hours_ago": int,
        "closes_at": datetime,
        "liquidity_cents": int,
        "description": str,
        "resolution_criteria": str,
    }
    markets = []
    for i, raw in enumerate(_list(_toml(path), "markets", path)):
        row = _record(raw, f"{path}: markets[{i}]", fields, {"created_by": str})
        if row["closes_at"].tzinfo is None:
            raise DemoDataError(f"{path}: markets[{i}]: closes_at needs a time zone (Z)")
        markets.append(
            MarketSpec(
                slug=row["slug"],
                question=row["question"],
                outcomes=tuple(row["outcomes"]),
                tags=tuple(row["tags"]),
                articles=tuple(row["articles"]),
                created_hours_ago=row["created_hours_ago"],
                closes_at=row["closes_at"],
                liquidity_cents=row["liquidity_cents"],
                created_by=row.get("created_by"),
                description=flat(row["description"]),
                resolution_criteria=flat(row["resolution_criteria"]),
            )
        )
    return tuple(markets)


def split_front_matter(path: Path) -> tuple[dict[str, Any], str]:
    """A Markdown file's TOML front matter (between ``+++`` lines) and the text after it."""
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if not lines or lines[0].rstrip() != "+++":
        raise DemoDataError(f"{path}: must start with a +++ line (TOML front matter)")
    for end, line in enumerate(lines[1:], start=1):
        if line.rstrip() == "+++":
            return _toml(path, "".join(lines[1:end])), "".join(lines[end + 1 :])
    raise DemoDataError(f"{path}: the front matter has no closing +++ line")


def read_article(path: Path) -> ArticleSpec:
    """One ``articles/NN-slug.md`` file."""
    required = {
        "title": str,
        "category": str,
        "author": str,
        "tags": list,
        "desks": list,
        "days_ago": int,
        "excerpt": str,
    }
    optional = {"featured": bool, "words": int, "comments": int}
    front, body = split_front_matter(path)
    row = _record(front, f"{path}: front matter", required, optional)
    own = paragraphs(body)
    if len(own) < 2:
        raise DemoDataError(f"{path}: needs a lead and a details paragraph after the +++ line")
    match = _ARTICLE_FILE.fullmatch(path.name)
    if match is None or match[2] != slugify(row["title"]):
        raise DemoDataError(f"{path}: the file name must be NN-{slugify(row['title'])}.md")
    return ArticleSpec(
        title=row["title"],
        category=row["category"],
        author=row["author"],
        tags=tuple(row["tags"]),
        desks=tuple(row["desks"]),
        days_ago=row["days_ago"],
        excerpt=flat(row["excerpt"]),
        lead=own[0],
        details=own[1],
        extra=own[2:],
        featured=row.get("featured", False),
        words=row.get("words"),
        comments=row.get("comments"),
    )


def article_files(directory: Path) -> list[Path]:
    """``directory``'s article files in NN order (the order of the planner's draws)."""
    numbered: dict[int, Path] = {}
    for path in directory.glob("*.md"):
        match = _ARTICLE_FILE.fullmatch(path.name)
        if match is None:
            raise DemoDataError(f"{path}: an article file is named NN-slug.md")
        number = int(match[1])
        if number in numbered:
            raise DemoDataError(f"{path}: number {number} is also {numbered[number].name}")
        numbered[number] = path
    return [numbered[n] for n in sorted(numbered)]


def read_demo_data(directory: Path = DATA_DIR) -> DemoData:
    """Every data file under ``directory`` (by default the package's own ``data/``)."""
    comment_pools, showcase_thread = read_comments(directory / "comments.toml")
    return DemoData(
        users=read_users(directory / "users.toml"),
        authors=read_authors(directory / "authors.toml"),
        categories=read_categories(directory / "categories.toml"),
        tags=read_tags(directory / "tags.toml"),
        desks=read_desks(directory / "desks.toml"),
        articles=tuple(read_article(p) for p in article_files(directory / "articles")),
        markets=read_markets(directory / "markets.toml"),
        comment_pools=comment_pools,
        showcase_thread=showcase_thread,
    )
