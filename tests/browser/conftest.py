"""A real browser for the staff console: the distribution's headless Chromium, driven by
Selenium through the distribution's chromedriver (.ci/run installs both). Without them the
browser tests are skipped, with the reason.

Pages are waited for with WebDriverWait and a generous deadline, never a fixed sleep.
"""

import base64
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
# Generous: the machine is shared, and a send goes through SQS, a worker and the sandbox.
DEADLINE = 90
# The README's screenshots are written only when asked for (UPDATE_SCREENSHOTS=1 make test): an
# ordinary run writes them under var/, so the tracked pictures change only on purpose.
SCREENSHOTS = (Path(settings.BASE_DIR) / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") == "1"
               else Path(settings.BASE_DIR) / "var" / "screenshots")


def _missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (Path(path).exists() or shutil.which(path)):
            return f"{path} not found: apt-get install chromium chromium-driver (.ci/run does)"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: pip install -r requirements-dev.txt"
    return None


class Browser:
    """A Chrome session on the live server, with the waits the tests need."""

    def __init__(self, driver, base_url: str):
        self.driver = driver
        self.base_url = base_url

    def open(self, path: str) -> None:
        self.driver.get(self.base_url + path)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return self.find(css).text

    def wait(self, condition: Callable[[], object], what: str, timeout: float = DEADLINE):
        """Wait until `condition()` is truthy (exceptions count as not yet); its value."""
        from selenium.common.exceptions import TimeoutException, WebDriverException
        from selenium.webdriver.support.ui import WebDriverWait

        def check(_driver):
            try:
                return condition()
            except WebDriverException:
                return False

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(check)
        except TimeoutException:
            raise AssertionError(f"waited {timeout} s for {what}; the page: {self.driver.current_url}\n"
                                 f"{self.find('main').text[:2000]}") from None

    def wait_text(self, css: str, predicate: Callable[[str], bool], what: str, timeout: float = DEADLINE) -> str:
        return self.wait(lambda: (lambda t: t if predicate(t) else None)(self.text(css)), what, timeout)

    def screenshot(self, name: str) -> Path:
        """The whole page, below the fold too, as docs/screenshots/<name>.png (the README shows them)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.driver.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        width, height = self.driver.execute_script(
            "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]")
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": min(height, 4000), "scale": 1}})
        path = SCREENSHOTS / f"{name}.png"
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    def log_in(self, username: str, password: str, login_path: str = "/app/login/") -> None:
        """Through the staff console's login page, or the admin's ("/admin/login/"): the same
        field ids, a submit button (the admin's is an <input>)."""
        self.open(login_path)
        self.find("#id_username").send_keys(username)
        self.find("#id_password").send_keys(password)
        self.find("form [type=submit]").click()
        self.wait(lambda: login_path not in self.driver.current_url, "the login to go through")


@pytest.fixture
def browser(live_server) -> Iterator[Browser]:
    reason = _missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1000", "--lang=ko-KR", "--force-device-scale-factor=1"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        yield Browser(driver, live_server.url)
    finally:
        driver.quit()
