"""XSS corpus for comment rendering: nothing a commenter writes may become live markup.

Every payload goes through ``render_markdown``; the HTML that comes out is parsed with
``html.parser.HTMLParser`` and checked against the allow-list (tags, attributes, link schemes,
``rel``), plus a raw check that no dangerous tag appears unescaped. One test drives a handful of
payloads end to end through ``postComment`` over HTTP.

Smuggled schemes that markdown-it percent-encodes into relative-looking URLs
("java%09script:", "//evil.example") are dropped because the sanitiser denies relative URLs.
"""

from __future__ import annotations

import html
import re
import unicodedata
from html.parser import HTMLParser
from typing import Any

import pytest
from markdown_it import MarkdownIt

from accounts.ratelimit import MemoryRateLimiter
from comments import render
from comments.render import render_markdown
from settings import Settings
from tests.conftest import FakeClock, _client_for, new_database, prepare_database

B64_SCRIPT = "PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="  # <script>alert(1)</script>
B64_SVG = "PHN2ZyBvbmxvYWQ9YWxlcnQoMSk+"  # <svg onload=alert(1)>

PAYLOADS: list[tuple[str, str]] = [
    # --- script tags
    ("script-plain", "<script>alert(1)</script>"),
    ("script-mixed-case", "<ScRiPt>alert(1)</sCrIpT>"),
    ("script-nested-broken", "<scr<script>ipt>alert(1)</scr</script>ipt>"),
    ("script-attrs", '<script type="text/javascript" src="https://evil.example/x.js"></script>'),
    ("script-self-closing", '<script src="//evil.example/x.js"/>'),
    ("script-no-close", "<script>alert(1)"),
    ("script-space-before-gt", "<script >alert(1)</script >"),
    ("script-newline-in-tag", "<script\n>alert(1)</script\n>"),
    ("script-slash-attr", "<script/src=//evil.example/x.js></script>"),
    ("script-in-paragraph", "hello <script>alert(1)</script> world"),
    ("script-as-html-block", "<div>\n<script>alert(1)</script>\n</div>"),
    ("script-in-emphasis", "**<script>alert(1)</script>**"),
    ("script-in-link-text", "[<script>alert(1)</script>](https://example.com)"),
    ("script-in-heading", "# <script>alert(1)</script>"),
    ("script-in-list", "- <script>alert(1)</script>\n- b"),
    ("script-in-blockquote", "> <script>alert(1)</script>"),
    # --- javascript: and friends in markdown links
    ("js-link", "[x](javascript:alert(1))"),
    ("js-link-angle", "[x](<javascript:alert(1)>)"),
    ("js-link-mixed-case", "[x](JaVaScRiPt:alert(1))"),
    ("js-link-upper", "[x](JAVASCRIPT:alert(1))"),
    ("js-link-leading-space", "[x]( javascript:alert(1))"),
    ("js-link-leading-tab", "[x](\tjavascript:alert(1))"),
    ("js-link-leading-ctrl", "[x](\x01javascript:alert(1))"),
    ("js-link-leading-ctrl-angle", "[x](<\x0ejavascript:alert(1)>)"),
    ("js-link-tab-in-scheme", "[x](java\tscript:alert(1))"),
    ("js-link-tab-in-scheme-angle", "[x](<java\tscript:alert(1)>)"),
    ("js-link-newline-in-scheme-angle", "[x](<java\nscript:alert(1)>)"),
    ("js-link-cr-in-scheme", "[x](java\rscript:alert(1))"),
    ("js-link-entity-dec", "[x](&#106;avascript:alert(1))"),
    ("js-link-entity-dec-padded", "[x](&#0000106;avascript:alert(1))"),
    ("js-link-entity-hex", "[x](&#x6A;avascript:alert(1))"),
    ("js-link-entity-colon", "[x](javascript&colon;alert(1))"),
    ("js-link-entity-colon-hex", "[x](javascript&#x3a;alert(1))"),
    ("js-link-entity-tab", "[x](java&#x09;script:alert(1))"),
    ("js-link-entity-newline", "[x](java&NewLine;script:alert(1))"),
    (
        "js-link-all-entities",
        "[x](&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;alert(1))",
    ),
    ("js-link-percent-colon", "[x](javascript%3Aalert(1))"),
    ("js-link-percent-all", "[x](%6A%61%76%61%73%63%72%69%70%74%3Aalert(1))"),
    ("js-link-backslash-escape", "[x](javascript\\:alert(1))"),
    ("js-link-fullwidth-colon", "[x](javascript：alert(1))"),
    ("js-link-zero-width", "[x](java\u200bscript:alert(1))"),
    ("js-link-nbsp-prefix", "[x](\u00a0javascript:alert(1))"),
    ("js-link-in-title-pos", '[x](https://example.com "javascript:alert(1)")'),
    ("js-link-nested-image", "[![x](https://example.com/a.png)](javascript:alert(1))"),
    ("js-link-nested-image-js", "[![x](javascript:alert(1))](javascript:alert(2))"),
    ("js-autolink", "<javascript:alert(1)>"),
    ("js-autolink-mixed-case", "<JaVaScRiPt:alert(1)>"),
    ("js-autolink-entity", "<&#106;avascript:alert(1)>"),
    ("js-reference-link", "[x][a]\n\n[a]: javascript:alert(1)"),
    ("js-reference-link-angle", "[x][a]\n\n[a]: <javascript:alert(1)>"),
    ("js-reference-collapsed", "[a][]\n\n[a]: javascript:alert(1)"),
    ("js-reference-shortcut", "[a]\n\n[a]: JaVaScRiPt:alert(1)"),
    ("js-reference-entity", "[a]\n\n[a]: &#106;avascript:alert(1)"),
    ("js-reference-title", '[a]\n\n[a]: https://example.com "onmouseover=alert(1)"'),
    ("vbscript-link", "[x](vbscript:msgbox(1))"),
    ("vbscript-autolink", "<vbscript:msgbox(1)>"),
    ("livescript-link", "[x](livescript:alert(1))"),
    ("mocha-link", "[x](mocha:alert(1))"),
    ("file-link", "[x](file:///etc/passwd)"),
    ("data-html-link", "[x](data:text/html,<script>alert(1)</script>)"),
    ("data-html-b64-link", f"[x](data:text/html;base64,{B64_SCRIPT})"),
    ("data-html-b64-autolink", f"<data:text/html;base64,{B64_SCRIPT}>"),
    ("data-png-link", "[x](data:image/png;base64,iVBORw0KGgo=)"),
    ("data-svg-link", f"[x](data:image/svg+xml;base64,{B64_SVG})"),
    ("data-mixed-case", f"[x](DaTa:text/html;base64,{B64_SCRIPT})"),
    ("protocol-relative-link", "[x](//evil.example/)"),
    # --- images (disabled)
    ("image-js", "![x](javascript:alert(1))"),
    ("image-data-svg", f"![x](data:image/svg+xml;base64,{B64_SVG})"),
    ("image-data-png", "![x](data:image/png;base64,iVBORw0KGgo=)"),
    ("image-https", "![x](https://example.com/a.png)"),
    ("image-title-onerror", '![x](https://example.com/a.png "onerror=alert(1)")'),
    ("image-reference", "![x][a]\n\n[a]: javascript:alert(1)"),
    # --- event handlers and attribute injection
    ("img-onerror", "<img src=x onerror=alert(1)>"),
    ("img-onerror-quoted", '<img src="x" onerror="alert(1)">'),
    ("img-onerror-slash", "<img/src=x/onerror=alert(1)>"),
    ("body-onload", "<body onload=alert(1)>"),
    ("a-onmouseover", '<a href="https://example.com" onmouseover="alert(1)">x</a>'),
    ("a-href-js-html", '<a href="javascript:alert(1)">x</a>'),
    ("div-style", '<div style="background:url(javascript:alert(1))">x</div>'),
    ("p-onclick", '<p onclick="alert(1)">x</p>'),
    ("details-ontoggle", "<details open ontoggle=alert(1)>"),
    ("input-onfocus", "<input autofocus onfocus=alert(1)>"),
    ("video-onerror", "<video><source onerror=alert(1)></video>"),
    ("title-onmouseover", '[x](http://a "onmouseover=alert(1)")'),
    ("title-quote-breakout", '[x](https://example.com "a\\" onmouseover=\\"alert(1))'),
    ("title-single-quote-breakout", "[x](https://example.com 'a\" onmouseover=\"alert(1)')"),
    ("title-paren-breakout", '[x](https://example.com (a" onmouseover="alert(1)))'),
    ("href-quote-breakout", '[x](https://example.com/"onmouseover="alert(1))'),
    ("href-quote-breakout-angle", '[x](<https://example.com/" onmouseover="alert(1)>)'),
    ("href-single-quote-breakout", "[x](https://example.com/'onmouseover='alert(1))"),
    ("href-gt-breakout", "[x](<https://example.com/><img src=x onerror=alert(1)>)"),
    ("autolink-quote-breakout", '<https://example.com/"onmouseover="alert(1)>'),
    ("autolink-gt-breakout", "<https://example.com/<img src=x onerror=alert(1)>>"),
    ("email-autolink-quote", '<a"onmouseover="alert(1)"@example.com>'),
    ("link-text-html", "[<img src=x onerror=alert(1)>](https://example.com)"),
    # --- SVG and MathML
    ("svg-onload", "<svg onload=alert(1)>"),
    ("svg-script", "<svg><script>alert(1)</script></svg>"),
    (
        "svg-xlink",
        '<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">x</text></a></svg>',
    ),
    ("svg-animate", "<svg><animate onbegin=alert(1) attributeName=x dur=1s>"),
    (
        "svg-set-href",
        '<svg><a><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a></svg>',
    ),
    ("math-href", '<math><mtext><a href="javascript:alert(1)">x</a></mtext></math>'),
    ("math-mglyph-style", "<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"),
    ("math-maction", '<math href="javascript:alert(1)">x</math>'),
    # --- frames, objects, documents
    ("iframe-js", '<iframe src="javascript:alert(1)"></iframe>'),
    ("iframe-srcdoc", '<iframe srcdoc="&lt;script&gt;alert(1)&lt;/script&gt;"></iframe>'),
    ("object-data", '<object data="javascript:alert(1)"></object>'),
    ("embed-src", f'<embed src="data:text/html;base64,{B64_SCRIPT}">'),
    ("base-href", '<base href="https://evil.example/">'),
    ("meta-refresh", '<meta http-equiv="refresh" content="0;url=javascript:alert(1)">'),
    ("form-action", '<form action="javascript:alert(1)"><button>x</button></form>'),
    ("button-formaction", '<button formaction="javascript:alert(1)">x</button>'),
    ("link-stylesheet", '<link rel="stylesheet" href="javascript:alert(1)">'),
    ("link-import", '<link rel="import" href="https://evil.example/x.html">'),
    # --- CSS
    ("style-tag-expression", "<style>body{width:expression(alert(1))}</style>"),
    ("style-tag-import", "<style>@import 'javascript:alert(1)';</style>"),
    ("style-attr-expression", '<p style="width:expression(alert(1))">x</p>'),
    ("style-attr-url", "<p style=\"background-image:url('javascript:alert(1)')\">x</p>"),
    ("style-attr-behavior", '<p style="behavior:url(x.htc)">x</p>'),
    # --- comments / CDATA / parser confusion
    ("html-comment", "<!-- <script>alert(1)</script> -->"),
    ("html-comment-breakout", "<!--><script>alert(1)</script> -->"),
    ("html-comment-conditional", "<!--[if IE]><script>alert(1)</script><![endif]-->"),
    ("cdata", "<![CDATA[<script>alert(1)</script>]]>"),
    ("cdata-in-svg", "<svg><![CDATA[><img src=x onerror=alert(1)>]]></svg>"),
    ("processing-instruction", '<?xml-stylesheet href="javascript:alert(1)"?>'),
    ("doctype", "<!DOCTYPE html><script>alert(1)</script>"),
    ("noscript-breakout", '<noscript><p title="</noscript><img src=x onerror=alert(1)>">'),
    ("textarea-breakout", "<textarea></textarea><script>alert(1)</script>"),
    ("title-tag-breakout", "<title></title><script>alert(1)</script>"),
    ("template", "<template><script>alert(1)</script></template>"),
    # --- entity and encoding tricks
    ("entity-lt-gt", "&lt;script&gt;alert(1)&lt;/script&gt;"),
    ("entity-double", "&amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;"),
    ("entity-decimal", "&#60;script&#62;alert(1)&#60;/script&#62;"),
    ("entity-hex", "&#x3c;script&#x3e;alert(1)&#x3c;/script&#x3e;"),
    ("entity-no-semicolon", "&#60script&#62alert(1)&#60/script&#62"),
    ("entity-img", "&lt;img src=x onerror=alert(1)&gt;"),
    ("null-in-tag", "<scr\x00ipt>alert(1)</scr\x00ipt>"),
    ("null-before-tag", "\x00<script>alert(1)</script>"),
    ("null-in-js-link", "[x](java\x00script:alert(1))"),
    ("null-entity", "[x](java&#0;script:alert(1))"),
    ("unicode-escape-text", "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"),
    ("unicode-escape-link", "[x](\\u006Aavascript:alert(1))"),
    ("fullwidth-brackets", "＜script＞alert(1)＜/script＞"),
    ("small-less-than", "\ufe64script\ufe65alert(1)\ufe64/script\ufe65"),
    ("backslash-escaped-lt", "\\<script>alert(1)\\</script>"),
    ("utf7", "+ADw-script+AD4-alert(1)+ADw-/script+AD4-"),
    ("overlong-utf8-text", "\u00c0\u00bcscript\u00c0\u00bealert(1)"),
    # --- markdown constructs that contain HTML (must be escaped)
    ("code-inline-script", "`<script>alert(1)</script>`"),
    ("code-inline-double-backtick", "`` <img src=x onerror=alert(1)> ``"),
    ("code-fenced-script", "```\n<script>alert(1)</script>\n```"),
    ("code-fenced-info-breakout", '```"><script>alert(1)</script>\nx\n```'),
    ("code-fenced-info-js", "```javascript:alert(1)\nx\n```"),
    ("code-indented-script", "    <script>alert(1)</script>"),
    ("heading-setext-script", "<script>alert(1)</script>\n==="),
    ("link-text-code", "[`<script>`](https://example.com)"),
    ("emphasis-breakout", "*<svg/onload=alert(1)>*"),
    ("table-pipe-script", "| a |\n|---|\n| <script>alert(1)</script> |"),
]


def _params() -> list[Any]:
    params = []
    for case_id, payload in PAYLOADS:
        params.append(pytest.param(payload, id=case_id))
    return params


PARAMS = _params()

ALLOWED_TAGS = {
    "p",
    "br",
    "strong",
    "em",
    "code",
    "pre",
    "blockquote",
    "ul",
    "ol",
    "li",
    "a",
    "hr",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {"a": {"href", "title", "rel"}, "ol": {"start"}}
ALLOWED_HREF_PREFIXES = ("http://", "https://", "mailto:")
LINK_REL = "nofollow ugc noopener"
DANGEROUS_TOKENS = ("<script", "javascript:", "vbscript:", "livescript:", "data:text/html")
# None of these may appear as real markup; as text they are escaped to "&lt;script" etc.
UNESCAPED_TAGS = (
    "<script",
    "<iframe",
    "<svg",
    "<img",
    "<style",
    "<object",
    "<embed",
    "<base",
    "<meta",
    "<link",
    "<form",
    "<math",
)


class TagCollector(HTMLParser):
    """Records every start tag with its attributes, and anything that is not tags or text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.other: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, attrs))

    def handle_comment(self, data: str) -> None:
        self.other.append(f"comment: {data!r}")

    def handle_decl(self, decl: str) -> None:
        self.other.append(f"declaration: {decl!r}")

    def handle_pi(self, data: str) -> None:
        self.other.append(f"processing instruction: {data!r}")

    def unknown_decl(self, data: str) -> None:
        self.other.append(f"unknown declaration: {data!r}")


def collect(rendered: str) -> TagCollector:
    collector = TagCollector()
    collector.feed(rendered)
    collector.close()
    return collector


def normalise_href(value: str) -> str:
    """Conservatively: decode entities (again), drop every whitespace/control/format char,
    lowercase. Whatever scheme a browser could see is at the start of the result."""
    value = html.unescape(value)
    kept = (ch for ch in value if not ch.isspace() and unicodedata.category(ch) not in {"Cc", "Cf"})
    return "".join(kept).lower()


def assert_structure(rendered: str) -> None:
    """Only allowed tags and attributes; links http(s)/mailto only, each with our ``rel``."""
    collector = collect(rendered)
    assert collector.other == [], rendered
    for tag, attrs in collector.tags:
        assert tag in ALLOWED_TAGS, f"tag <{tag}> in {rendered!r}"
        names = [name for name, _ in attrs]
        assert len(names) == len(set(names)), f"duplicate attribute on <{tag}> in {rendered!r}"
        for name, value in attrs:
            assert not name.startswith("on"), f"handler {name}={value!r} in {rendered!r}"
            assert name in ALLOWED_ATTRIBUTES.get(tag, set()), (
                f"attribute {name}={value!r} on <{tag}> in {rendered!r}"
            )
        if tag == "a":
            found = dict(attrs)
            assert found.get("rel") == LINK_REL, rendered
            if "href" in found:
                href = normalise_href(found["href"] or "")
                assert href.startswith(ALLOWED_HREF_PREFIXES), f"href {href!r} in {rendered!r}"
        if tag == "ol" and attrs:
            assert re.fullmatch(r"\d+", dict(attrs).get("start") or ""), rendered


def assert_no_dangerous_markup(rendered: str) -> None:
    """No dangerous tag unescaped in the raw output; no dangerous token in any tag name,
    attribute name or href (titles are inert text and may quote anything)."""
    lowered = rendered.lower()
    for tag in UNESCAPED_TAGS:
        assert tag not in lowered, f"unescaped {tag} in {rendered!r}"
    for tag, attrs in collect(rendered).tags:
        live = [tag] + [name for name, _ in attrs]
        live += [normalise_href(value or "") for name, value in attrs if name == "href"]
        for token in DANGEROUS_TOKENS:
            for part in live:
                assert token not in part.lower(), f"{token} in {part!r} of {rendered!r}"


def assert_safe(rendered: str) -> None:
    assert_structure(rendered)
    assert_no_dangerous_markup(rendered)


def test_corpus_is_large_and_ids_are_unique() -> None:
    ids = [case_id for case_id, _ in PAYLOADS]
    assert len(ids) >= 80
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("<script>alert(1)</script>", id="script"),
        pytest.param("<p>x<img src=x onerror=alert(1)></p>", id="img-onerror"),
        pytest.param('<p onclick="alert(1)">x</p>', id="handler"),
        pytest.param('<p style="color:red">x</p>', id="style-attr"),
        pytest.param('<a href="https://example.com">x</a>', id="missing-rel"),
        pytest.param('<a href="https://example.com" rel="noopener">x</a>', id="wrong-rel"),
        pytest.param('<a href="javascript:alert(1)" rel="nofollow ugc noopener">x</a>', id="js"),
        pytest.param(
            '<a href=" JaVa&#x09;Script&colon;alert(1)" rel="nofollow ugc noopener">x</a>',
            id="js-obfuscated",
        ),
        pytest.param(
            '<a href="&amp;#106;avascript:alert(1)" rel="nofollow ugc noopener">x</a>',
            id="js-double-encoded",
        ),
        pytest.param('<a href="/relative" rel="nofollow ugc noopener">x</a>', id="relative"),
        pytest.param('<ol start="1" type="a"><li>x</li></ol>', id="extra-attribute"),
        pytest.param("<!-- x --><p>x</p>", id="comment"),
        pytest.param("<p>x</p><svg></svg>", id="svg"),
    ],
)
def test_checker_rejects_known_bad_html(bad: str) -> None:
    with pytest.raises(AssertionError):
        assert_safe(bad)


@pytest.mark.parametrize("payload", PARAMS)
def test_payload_does_not_survive(payload: str) -> None:
    assert_safe(render_markdown(payload))


@pytest.mark.parametrize("payload", PARAMS)
def test_sanitiser_alone_holds_with_raw_html_on(
    payload: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Defence in depth: even if markdown-it let raw HTML through, nh3 must still hold."""
    permissive = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    monkeypatch.setattr(render, "_md", permissive.disable("image"))
    assert_safe(render_markdown(payload))


SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")


@pytest.mark.parametrize("payload", [pytest.param(p, id=i) for i, p in PAYLOADS])
def test_no_href_has_an_executable_scheme(payload: str) -> None:
    """What a browser would do with each href (WHATWG URL parsing: strip leading/trailing C0
    controls and spaces, drop tabs and newlines, then read the scheme): either it is
    http(s)/mailto or there is no scheme at all (a relative URL, which cannot run script)."""
    for tag, attrs in collect(render_markdown(payload)).tags:
        for name, value in attrs:
            if name != "href" or value is None:
                continue
            url = value.strip("".join(map(chr, range(0x21))))
            url = re.sub(r"[\t\n\r]", "", url)
            match = SCHEME.match(url)
            if match:
                assert match.group(1).lower() in {"http", "https", "mailto"}, (tag, value)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param("`<script>alert(1)</script>`", id="inline"),
        pytest.param("```\n<script>alert(1)</script>\n```", id="fenced"),
        pytest.param("    <script>alert(1)</script>", id="indented"),
    ],
)
def test_script_in_code_comes_out_escaped(payload: str) -> None:
    rendered = render_markdown(payload)
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;" in rendered
    assert_safe(rendered)


def test_normal_comment_renders_exactly() -> None:
    body = (
        "Hello **bold** and *em*.\n\n"
        "- one\n- two\n\n"
        "> quoted\n\n"
        'Use `x < y` and see [docs](https://example.com/a?b=1&c=2 "Docs").'
    )
    rendered = render_markdown(body)
    assert rendered == (
        "<p>Hello <strong>bold</strong> and <em>em</em>.</p>\n"
        "<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n"
        "<blockquote>\n<p>quoted</p>\n</blockquote>\n"
        '<p>Use <code>x &lt; y</code> and see <a href="https://example.com/a?b=1&amp;c=2" '
        'title="Docs" rel="nofollow ugc noopener">docs</a>.</p>'
    )
    assert_safe(rendered)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            "Write to [alice](mailto:alice@example.com?subject=Hi%20there).",
            '<p>Write to <a href="mailto:alice@example.com?subject=Hi%20there" '
            'rel="nofollow ugc noopener">alice</a>.</p>',
            id="mailto-link",
        ),
        pytest.param(
            "Or <alice@example.com>.",
            '<p>Or <a href="mailto:alice@example.com" rel="nofollow ugc noopener">'
            "alice@example.com</a>.</p>",
            id="email-autolink",
        ),
        pytest.param(
            "[x](MAILTO:alice@example.com)",
            '<p><a href="MAILTO:alice@example.com" rel="nofollow ugc noopener">x</a></p>',
            id="mailto-upper-case",
        ),
        pytest.param(
            "<https://example.com/path?a=1&b=2#frag>",
            '<p><a href="https://example.com/path?a=1&amp;b=2#frag" rel="nofollow ugc noopener">'
            "https://example.com/path?a=1&amp;b=2#frag</a></p>",
            id="https-autolink",
        ),
        pytest.param(
            "[x](HTTPS://EXAMPLE.COM/)",
            '<p><a href="HTTPS://EXAMPLE.COM/" rel="nofollow ugc noopener">x</a></p>',
            id="https-upper-case",
        ),
        pytest.param(
            "[x](http://example.com/?q=javascript:alert(1))",
            '<p><a href="http://example.com/?q=javascript:alert(1)" rel="nofollow ugc noopener">'
            "x</a></p>",
            id="http-query-mentions-javascript",
        ),
        pytest.param(
            "3. three\n4. four",
            '<ol start="3">\n<li>three</li>\n<li>four</li>\n</ol>',
            id="ordered-list-start",
        ),
    ],
)
def test_allowed_links_and_lists_are_kept(body: str, expected: str) -> None:
    rendered = render_markdown(body)
    assert rendered == expected
    assert_structure(rendered)


# The nastiest payloads (no NUL: the API refuses those), posted as a real client would.
E2E_IDS = [
    "script-nested-broken",
    "js-link-entity-dec",
    "js-reference-link",
    "data-html-b64-link",
    "title-quote-breakout",
    "href-quote-breakout",
    "href-gt-breakout",
    "svg-xlink",
    "math-mglyph-style",
    "noscript-breakout",
    "code-fenced-info-breakout",
]

POST_COMMENT = """
mutation($input: PostCommentInput!) {
  postComment(input: $input) {
    comment { body bodyHtml }
    errors { code message }
  }
}
"""


@pytest.fixture(scope="module")
async def posting(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Settings, str, str]:
    """A demo database, alice's session token and an article to comment on: one per backend
    rather than one per payload (loading the demo data takes seconds). Each payload adds its own
    comment and looks only at that one."""
    url = await new_database(request, backend, tmp_path_factory.mktemp(backend))
    settings = await prepare_database(url, demo=True)
    async for gql in _client_for(settings):
        alice = await gql.log_in("alice")
        articles = await alice.data("{ articles(first: 1) { nodes { id } } }")
    assert alice.token is not None
    return settings, alice.token, articles["articles"]["nodes"][0]["id"]


@pytest.mark.parametrize("case_id", E2E_IDS)
async def test_payloads_posted_over_http_come_back_safe(
    posting: tuple[Settings, str, str], case_id: str
) -> None:
    settings, token, article_id = posting
    payload = dict(PAYLOADS)[case_id]
    # An app of its own for each payload: its own comment rate limit.
    async for gql in _client_for(settings, MemoryRateLimiter(clock=FakeClock())):
        data = await gql.as_user(token).data(
            POST_COMMENT, {"input": {"articleId": article_id, "body": payload}}
        )
    result = data["postComment"]
    assert result["errors"] == [], (case_id, result)
    comment = result["comment"]
    assert comment["body"] == payload.strip(), case_id
    assert comment["bodyHtml"] == render_markdown(payload.strip()), case_id
    assert_safe(comment["bodyHtml"])
