"""Reading the built site without a browser: pages, nav, links, anchors."""

import ast
import html.parser
import os
import pathlib
import posixpath
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]
LINK_ATTRIBUTES = {
    "a": "href",
    "link": "href",
    "script": "src",
    "img": "src",
    "source": "src",
    "iframe": "src",
}


def site_dir():
    path = pathlib.Path(os.environ.get("KVISION_DOCS_SITE", "site"))
    return path if path.is_absolute() else ROOT / path


class _Parser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []  # (tag, url)
        self.ids = set()
        self.nav = []  # hrefs of the primary navigation
        self._nav_depth = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name"):
            if attrs.get(key):
                self.ids.add(attrs[key])
        if tag == "nav":
            classes = attrs.get("class") or ""
            if self._nav_depth or "md-nav--primary" in classes:
                self._nav_depth += 1
        url = attrs.get(LINK_ATTRIBUTES.get(tag, ""))
        if url is not None:
            self.links.append((tag, url))
            if tag == "a" and self._nav_depth:
                self.nav.append(url)

    def handle_endtag(self, tag):
        if tag == "nav" and self._nav_depth:
            self._nav_depth -= 1


def parse(path):
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def url_path_to_file(url_path):
    """The file of the site a URL path (``/api/layers/``) is served from."""
    relative = urllib.parse.unquote(url_path).lstrip("/")
    path = site_dir() / relative
    if relative == "" or relative.endswith("/") or path.is_dir():
        path = path / "index.html"
    return path


def page_url_path(file):
    """``site/api/layers/index.html`` -> ``/api/layers/``."""
    relative = file.relative_to(site_dir()).as_posix()
    if relative.endswith("index.html"):
        relative = relative[: -len("index.html")]
    return "/" + relative


def resolve(page_path, url):
    """An internal URL's target ``(path, fragment)``; None if external."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme or parts.netloc:
        return None
    if not parts.path:
        return page_path, parts.fragment
    base = (
        page_path if page_path.endswith("/") else posixpath.dirname(page_path)
    )
    path = posixpath.normpath(posixpath.join(base, parts.path))
    if parts.path.endswith("/") and not path.endswith("/"):
        path += "/"
    return path, parts.fragment


def html_files():
    return sorted(site_dir().rglob("*.html"))


def nav_pages():
    """URL paths of every page in the site's navigation, in order."""
    home = site_dir() / "index.html"
    pages = []
    for url in parse(home).nav:
        target = resolve("/", url)
        if target is None:
            continue
        path = target[0]
        if path not in pages:
            pages.append(path)
    return pages


def public_names(module_file):
    """``__all__`` of a kvision module, or its public top-level names."""
    tree = ast.parse((ROOT / module_file).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "__all__" for t in node.targets
        ):
            return list(ast.literal_eval(node.value))
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.ClassDef))
        and not node.name.startswith("_")
    ]


def notebook_sources():
    return sorted(
        p.stem
        for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.py")
        if p.stem[:2].isdigit()
    )
