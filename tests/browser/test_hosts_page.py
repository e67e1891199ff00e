"""A person in headless Chromium: log in, open Hosts, see this host online, and
watch a second host appear and go without reloading the page."""

import os

import pytest

from tests.conftest import need_binary
from tests.processes import BerthServer, Worker

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    server = BerthServer(tmp_path_factory.mktemp("browser-server"), host_name="browser-host")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = need_binary("chromium", "chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="Playwright for Python is not installed")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


def log_in(page, server):
    page.goto(f"{server.url}/hosts/")
    assert "/login/" in page.url
    page.fill("#id_username", "admin")
    page.fill("#id_password", server.admin_password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.url}/hosts/")


def test_hosts_page_shows_this_host_and_a_second_host_live(page, server, tmp_path):
    log_in(page, server)
    row = page.locator(f'#hosts tr[data-host="{server.host_name}"]')
    row.wait_for()
    assert row.get_attribute("data-state") == "online"
    page.locator('#live-state[data-state="live"]').wait_for(timeout=10_000)
    page.evaluate("window.__berthNoReload = true")

    second = Worker(server.broker_url, "browser-second", tmp_path)
    try:
        page.locator('#hosts tr[data-host="browser-second"][data-state="online"]').wait_for(timeout=30_000)
        assert page.evaluate("window.__berthNoReload") is True, "the page reloaded"
        assert "online" in page.locator('#hosts tr[data-host="browser-second"] .badge').inner_text()
    finally:
        second.stop()
    page.locator('#hosts tr[data-host="browser-second"][data-state="offline"]').wait_for(timeout=30_000)
    assert page.evaluate("window.__berthNoReload") is True
    os.makedirs(server.workdir / "shots", exist_ok=True)
    page.screenshot(path=str(server.workdir / "shots" / "hosts.png"))


def test_logout_ends_the_session(page, server):
    log_in(page, server)
    page.click("#logout")
    page.wait_for_url(f"{server.url}/login/")
    page.goto(f"{server.url}/hosts/")
    assert "/login/" in page.url
