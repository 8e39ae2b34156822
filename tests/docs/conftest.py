"""Browser and link checks of the built documentation site.

They need a built site served over HTTP, so they only run when
``KVISION_DOCS_URL`` is set — ``bash scripts/check-docs.sh`` builds the site,
serves it and sets it. The per-backend test runs do not collect them (no
Playwright import, no site needed).

Environment:
    KVISION_DOCS_URL: base URL of the served site, e.g.
        ``http://127.0.0.1:8000/``.
    KVISION_DOCS_SITE: the built site folder (default ``site``).
    KVISION_DOCS_SCREENSHOTS: where screenshots go (default
        ``outputs/docs-screenshots``).
    KVISION_CHROMIUM: the Chromium binary (default: ``chromium`` on PATH).
"""

import os
import pathlib
import shutil

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

if not os.environ.get("KVISION_DOCS_URL"):
    collect_ignore_glob = ["test_*.py"]

# The flags a headless Chromium needs here (see shared/ENVIRONMENT.md): no
# sandbox as root, no GPU, and no background connections to Google's hosts,
# which a closed network refuses. Playwright adds --headless and a fresh
# temporary --user-data-dir itself.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def base_url():
    url = os.environ["KVISION_DOCS_URL"]
    return url if url.endswith("/") else url + "/"


@pytest.fixture(scope="session")
def screenshot_dir():
    path = pathlib.Path(
        os.environ.get("KVISION_DOCS_SCREENSHOTS", "outputs/docs-screenshots")
    )
    path = path if path.is_absolute() else ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = os.environ.get("KVISION_CHROMIUM") or shutil.which("chromium")
    if not executable:
        pytest.fail(
            "No Chromium: install Debian's `chromium` (apt-get install -y "
            "chromium) or set KVISION_CHROMIUM."
        )
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh page that may load only the served site (and data: URLs).

    Requests to any other host are aborted at once and recorded, so the
    checks never wait on, or depend on, the network.
    """
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.external_requests = []
    page.errors = []
    page.failed_requests = []

    def route(route):
        url = route.request.url
        if url.startswith(base_url) or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            page.external_requests.append((route.request.resource_type, url))
            route.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    page.on(
        "requestfailed",
        lambda request: (
            request.url.startswith(base_url)
            and page.failed_requests.append(request.url)
        ),
    )
    yield page
    context.close()
