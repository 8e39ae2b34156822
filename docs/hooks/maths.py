"""MkDocs hook: maths rendered to MathML at build time, no MathJax.

``pymdownx.arithmatex`` (generic mode) wraps ``$...$`` / ``\\(...\\)`` and
``$$...$$`` / ``\\[...\\]`` in ``<span|div class="arithmatex">``; this hook
converts their TeX to MathML with ``latex2mathml``, which browsers render
natively. The site therefore loads no maths script from a CDN and renders
the same offline.

Notebook pages (mkdocs-jupyter) carry nbconvert's MathJax and Mermaid
``<script>`` tags, which would fetch from a CDN: they are removed, and the
``$...$`` maths of the notebooks' Markdown cells is converted the same way.
"""

import html
import logging
import re

from latex2mathml.converter import convert

log = logging.getLogger("mkdocs.hooks.maths")

ARITHMATEX = re.compile(
    r'<(span|div) class="arithmatex">\s*(\\\(|\\\[)(.*?)(\\\)|\\\])\s*</\1>',
    re.DOTALL,
)
# nbconvert's MathJax loader and configuration, and its Mermaid module.
REMOTE_SCRIPTS = re.compile(
    r"<script[^>]*(?:mathjax|MathJax|mermaid)[^>]*>.*?</script>"
    r"|<script[^>]*>(?:(?!</script>).)*?(?:MathJax|mermaid)"
    r"(?:(?!</script>).)*?</script>",
    re.DOTALL,
)
NOTEBOOK_MARKDOWN = re.compile(
    r'(<div class="jp-RenderedHTMLCommon jp-RenderedMarkdown[^"]*"[^>]*>)'
    r"(.*?)(</div>)",
    re.DOTALL,
)
CODE = re.compile(r"(<(code|pre)\b.*?</\2>)", re.DOTALL)
DOLLARS = re.compile(r"(?<![\\$])\$\$(.+?)\$\$|(?<![\\$])\$([^$\n]+?)\$")


def to_mathml(tex, display):
    """MathML for ``tex``; the TeX itself if it cannot be converted."""
    tex = html.unescape(tex).strip()
    try:
        mathml = convert(tex, display="block" if display else "inline")
    except Exception as error:  # latex2mathml raises many types
        log.warning("Cannot render maths %r: %s", tex, error)
        return html.escape(tex)
    # The TeX source, for copy-paste and screen readers' fallback.
    annotated = mathml.replace(
        "<math ", f'<math data-tex="{html.escape(tex, quote=True)}" ', 1
    )
    return f'<div class="kv-math">{annotated}</div>' if display else annotated


def _arithmatex(match):
    return to_mathml(match.group(3), display=match.group(1) == "div")


def _dollars(text):
    def replace(match):
        if match.group(1) is not None:
            return to_mathml(match.group(1), display=True)
        return to_mathml(match.group(2), display=False)

    parts = CODE.split(text)
    # CODE has two groups: every third item is the tag name, skip it.
    out = []
    for i, part in enumerate(parts):
        if i % 3 == 0:
            out.append(DOLLARS.sub(replace, part))
        elif i % 3 == 1:
            out.append(part)
    return "".join(out)


def on_page_content(html_text, page, config, files):
    html_text = ARITHMATEX.sub(_arithmatex, html_text)
    if page.file.src_uri.endswith(".ipynb"):
        html_text = REMOTE_SCRIPTS.sub("", html_text)
        html_text = NOTEBOOK_MARKDOWN.sub(
            lambda m: m.group(1) + _dollars(m.group(2)) + m.group(3),
            html_text,
        )
    return html_text
