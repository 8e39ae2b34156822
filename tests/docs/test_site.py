"""The built site: every page renders in Chromium, links resolve, search,
tutorial figures and the API reference are there."""

import json
import urllib.parse
import urllib.request

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.docs import built_site as site

NAV_PAGES = site.nav_pages()
TUTORIALS = [
    p for p in NAV_PAGES if p.startswith("/tutorials/") and p.count("/") > 2
]
API_PAGES = {
    "/api/layers/": ("kvision/layers/__init__.py", "kvision.layers"),
    "/api/models/": ("kvision/models/__init__.py", "kvision.models"),
    "/api/data/": ("kvision/data/__init__.py", "kvision.data"),
    "/api/training/": ("kvision/training/__init__.py", "kvision.training"),
    "/api/viz/": ("kvision/viz/__init__.py", "kvision.viz"),
    "/api/ops/": ("kvision/ops.py", "kvision.ops"),
}
# Kinds of external resources that would change how a page renders (a
# badge image or a link may point elsewhere; a script or a style may not).
RENDERING_RESOURCES = {"script", "stylesheet", "font"}


def test_the_site_has_the_expected_sections():
    for path in ("/", "/getting-started/", "/concepts/", "/tutorials/"):
        assert path in NAV_PAGES
    for path in API_PAGES:
        assert path in NAV_PAGES
    assert "/benchmarks/" in NAV_PAGES
    # Every built page is reachable from the navigation.
    built = {
        site.page_url_path(f)
        for f in site.html_files()
        if f.name == "index.html"
    }
    assert built == set(NAV_PAGES)


def test_every_notebook_has_a_tutorial_page():
    pages = {p.strip("/").split("/")[-1] for p in TUTORIALS}
    assert pages == set(site.notebook_sources())


@pytest.mark.parametrize("path", NAV_PAGES)
def test_page_loads_and_renders(page, base_url, path):
    url = urllib.parse.urljoin(base_url, path.lstrip("/"))
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200
    response = page.goto(url, wait_until="load")
    assert response.status == 200
    article = page.locator("article.md-content__inner")
    assert article.count() == 1
    assert page.locator("article h1").count() >= 1
    assert len(article.inner_text()) > 200, "page content missing"
    assert page.title().strip()
    assert page.errors == [], "JavaScript errors"
    assert page.failed_requests == [], "site resources failed to load"
    external = [
        (kind, u)
        for kind, u in page.external_requests
        if kind in RENDERING_RESOURCES
    ]
    assert external == [], "page needs the network to render"
    # Images of the site itself (not badges from elsewhere) have loaded.
    broken = page.evaluate(
        """base => [...document.querySelectorAll('article img')]
            .filter(i => i.src.startsWith(base) || i.src.startsWith('data:'))
            .filter(i => !(i.complete && i.naturalWidth > 0))
            .map(i => i.src.slice(0, 80))""",
        base_url,
    )
    assert broken == []
    # Maths is MathML, rendered by the browser itself.
    sizes = page.evaluate(
        """() => [...document.querySelectorAll('article math')]
            .map(m => m.getBoundingClientRect().width)"""
    )
    assert all(width > 0 for width in sizes)
    assert page.locator("article .arithmatex").count() == 0, "raw TeX left"


@pytest.mark.parametrize("path", TUTORIALS)
def test_tutorial_shows_its_figures(page, base_url, path):
    page.goto(urllib.parse.urljoin(base_url, path.lstrip("/")))
    figures = page.evaluate(
        """() => [...document.querySelectorAll(
                '.jupyter-wrapper .jp-OutputArea-output img')]
            .map(i => [i.getAttribute('src') || '',
                       i.complete && i.naturalWidth > 0])"""
    )
    assert figures, "no figure: was the notebook executed?"
    for src, loaded in figures:
        assert src.strip(), "empty image source"
        assert loaded, f"figure did not load: {src[:60]}"
    # Executed code cells carry outputs.
    assert page.locator(".jp-OutputArea-output").count() >= len(figures)


@pytest.mark.parametrize("path", sorted(API_PAGES))
def test_api_page_lists_every_public_name(path):
    module_file, module = API_PAGES[path]
    parsed = site.parse(site.url_path_to_file(path))
    anchors = {anchor.rsplit(".", 1)[-1] for anchor in parsed.ids}
    missing = [
        name for name in site.public_names(module_file) if name not in anchors
    ]
    assert missing == [], f"{module}: not documented on {path}"


def test_api_layers_page_shows_each_layer_in_the_browser(page, base_url):
    page.goto(urllib.parse.urljoin(base_url, "api/layers/"))
    for name in site.public_names("kvision/layers/__init__.py"):
        heading = page.locator(f'[id="kvision.layers.{name}"]')
        assert heading.count() == 1, name
        assert heading.is_visible(), name


def test_internal_links_resolve():
    broken = []
    targets = {}
    for file in site.html_files():
        page_path = site.page_url_path(file)
        for tag, url in site.parse(file).links:
            target = site.resolve(page_path, url)
            if target is None:
                continue
            path, fragment = target
            target_file = site.url_path_to_file(path)
            if not target_file.is_file():
                broken.append(f"{page_path}: <{tag}> {url}")
                continue
            if fragment and target_file.suffix == ".html":
                if target_file not in targets:
                    targets[target_file] = site.parse(target_file).ids
                fragment = urllib.parse.unquote(fragment)
                if fragment not in targets[target_file]:
                    broken.append(f"{page_path}: <{tag}> {url} (no anchor)")
    assert broken == []


def test_search_index_has_every_page():
    index_file = site.site_dir() / "search" / "search_index.json"
    index = json.loads(index_file.read_text(encoding="utf-8"))
    docs = index["docs"]
    assert len(docs) > len(NAV_PAGES)
    locations = {d["location"].split("#")[0] for d in docs}
    for path in NAV_PAGES:
        assert path.lstrip("/") in locations, path


def test_search_finds_a_layer_in_the_browser(page, base_url):
    page.goto(base_url)
    query = page.locator("input.md-search__input")
    results = page.locator(".md-search-result__item")
    # Typed key by key, as a reader does (Material reacts to key events; a
    # programmatic fill is not always seen). The search worker builds its
    # index after the page has loaded; if a query goes unanswered, retype.
    for _ in range(6):
        query.click()
        query.fill("")
        query.press_sequentially("LocalitySelfAttention")
        try:
            results.first.wait_for(state="attached", timeout=5_000)
            break
        except PlaywrightTimeout:
            continue
    assert results.count() >= 1, "search gave no result"
    listed = page.locator(".md-search-result__list").inner_text()
    assert "LocalitySelfAttention" in listed
    assert page.errors == []


def test_screenshots(page, base_url, screenshot_dir):
    page.goto(base_url)
    page.screenshot(path=screenshot_dir / "home.png")
    assert (screenshot_dir / "home.png").stat().st_size > 10_000
    if not TUTORIALS:
        pytest.skip("no tutorial page to take")
    tutorial = TUTORIALS[0]
    page.goto(urllib.parse.urljoin(base_url, tutorial.lstrip("/")))
    figure = page.locator(".jupyter-wrapper .jp-OutputArea-output img").first
    if figure.count():
        figure.scroll_into_view_if_needed()
    name = "tutorial-" + tutorial.strip("/").split("/")[-1] + ".png"
    page.screenshot(path=screenshot_dir / name)
    assert (screenshot_dir / name).stat().st_size > 10_000
