"""MkDocs hook: Sphinx cross-reference roles in docstrings, made links.

kvision's docstrings are Google style, with the odd Sphinx role
(``:class:`LocalitySelfAttention```, ``:func:`kvision.ops.patchify```).
Markdown renders those as ``:class:<code>X</code>``. This hook drops the
role (also from the search index) and, when ``X`` names an object
documented in the API reference, links it to that object's anchor
(mkdocstrings gives each one an ``id`` equal to its full path, e.g.
``kvision.layers.DropPath``).
"""

import html
import re

ROLE = re.compile(
    r":(?:class|func|meth|attr|mod|data|obj|exc):<code>~?([^<]+)</code>"
)
XREF = re.compile(r'<code class="kv-xref" data-ref="([^"]+)">([^<]*)</code>')
ANCHOR = re.compile(r'<h[2-6] id="(kvision\.[A-Za-z0-9_.]+)"')
API_PREFIX = "api/"

_anchors = {}  # full and short names -> (page url, anchor id)


def _mark(match):
    name = html.unescape(match.group(1)).strip()
    short = name.rsplit(".", 1)[-1]
    return (
        f'<code class="kv-xref" data-ref="{html.escape(name, quote=True)}">'
        f"{html.escape(short)}</code>"
    )


def on_page_content(html_text, page, config, files):
    if page.file.src_uri.startswith(API_PREFIX):
        for anchor in ANCHOR.findall(html_text):
            entry = (page.url, anchor)
            _anchors.setdefault(anchor, entry)
            _anchors.setdefault(anchor.rsplit(".", 1)[-1], entry)
    return ROLE.sub(_mark, html_text)


def _relative(from_url, to_url):
    return "../" * from_url.count("/") + to_url


def on_post_page(output, page, config):
    """Runs once every page's content exists, so every anchor is known."""

    def link(match):
        name = html.unescape(match.group(1))
        for key in (name, name.rsplit(".", 1)[-1]):
            if key in _anchors:
                url, anchor = _anchors[key]
                href = _relative(page.url, url) + "#" + anchor
                return f'<a href="{href}">{match.group(0)}</a>'
        return match.group(0)

    return XREF.sub(link, output)
