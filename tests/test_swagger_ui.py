"""Swagger UI at ``/docs`` in a real browser (headless Chromium) against the real server, offline.

What a new user does with the docs: read the tags, "Try it out" on ``POST /predictions``,
then "Authorize" with an admin key and point the ``staging`` alias at a version. Chromium
resolves no host but 127.0.0.1, and every request the page made is checked to have gone to
the server: the docs need nothing from a CDN.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import yaml
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.wait import WebDriverWait

from coe_template.model.train import TrainedModel
from config.settings import Settings
from tests.conftest import ADMIN_KEY, MODEL, PROJECT_ROOT, seeded_registry
from tests.servers import gunicorn

BROWSER = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), "")
DRIVER = shutil.which("chromedriver") or ""
pytestmark = pytest.mark.skipif(
    not (BROWSER and DRIVER),
    reason="Chromium or chromedriver is not installed (apt-get install chromium chromium-driver; .ci/run does)",
)

SPEC = yaml.safe_load((PROJECT_ROOT / "openapi" / "spec.yaml").read_text(encoding="utf-8"))
#: Long enough for a cold Chromium on a busy CI machine; the waits end as soon as the page is ready.
WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, trained_model: TrainedModel) -> Iterator[str]:
    """One gunicorn worker on a store with versions 1 and 2, ``production`` on 1."""
    store = tmp_path_factory.mktemp("swagger-ui-store")
    seeded_registry(Settings(model_store=store).db_url, store, trained_model, versions=2).engine.dispose()
    env = {"COE_MODEL_STORE": str(store), "COE_ADMIN_KEYS": ADMIN_KEY}
    with gunicorn(env, store.parent / "swagger-ui-server.log", workers=1) as (base, _process):
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for argument in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,2000",
        # Offline: any host but the server's fails to resolve, as it would on a closed network.
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # The driver named explicitly: Selenium Manager would otherwise try to download one.
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


def wait(driver: webdriver.Chrome) -> WebDriverWait[webdriver.Chrome]:
    return WebDriverWait(driver, WAIT_SECONDS, ignored_exceptions=(StaleElementReferenceException,))


def open_docs(driver: webdriver.Chrome, server: str) -> None:
    driver.get(f"{server}/docs/")
    wait(driver).until(ec.presence_of_element_located((By.CSS_SELECTOR, ".opblock-tag")))


def open_operation(driver: webdriver.Chrome, method: str, path: str) -> WebElement:
    """Expand an operation, found as a user sees it (method and path), and press "Try it out"."""
    block = wait(driver).until(
        ec.presence_of_element_located(
            (
                By.XPATH,
                (
                    f"//div[contains(@class, 'opblock-{method}')]"
                    f"[.//*[contains(@class, 'opblock-summary-path') and @data-path='{path}']]"
                ),
            )
        )
    )
    block.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait(driver).until(lambda _: block.find_element(By.CSS_SELECTOR, ".try-out__btn")).click()
    wait(driver).until(lambda _: block.find_element(By.CSS_SELECTOR, "button.execute"))
    return block


def replace_text(field: WebElement, text: str) -> None:
    """Type over a field as a user does (React sees each key; ``clear()`` would bypass it)."""
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys(Keys.DELETE)
    field.send_keys(text)


def execute(driver: webdriver.Chrome, block: WebElement, status: str) -> dict[str, Any]:
    """Press "Execute", wait for the response ``status`` to be shown, and return the body shown."""
    for shown_before in block.find_elements(By.CSS_SELECTOR, ".live-responses-table"):
        block.find_element(By.CSS_SELECTOR, "button.btn-clear").click()  # so no earlier response is read
        wait(driver).until(ec.staleness_of(shown_before))
    block.find_element(By.CSS_SELECTOR, "button.execute").click()
    shown = wait(driver).until(
        lambda _: (
            block.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status").text
            or None
        )
    )
    assert shown == status, block.find_element(By.CSS_SELECTOR, ".live-responses-table").text
    body: dict[str, Any] = json.loads(
        block.find_element(
            By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description .highlight-code pre"
        ).text
    )
    return body


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the page asked for since the last call, from Chromium's network log."""
    messages = (json.loads(entry["message"])["message"] for entry in driver.get_log("performance"))
    return [
        message["params"]["request"]["url"]
        for message in messages
        if message["method"] == "Network.requestWillBeSent"
    ]


def test_the_docs_load_offline_and_show_the_tags(server: str, browser: webdriver.Chrome) -> None:
    browser.get_log("performance")  # start from an empty log
    open_docs(browser, server)
    wait(browser).until(lambda driver: driver.find_elements(By.CSS_SELECTOR, ".opblock"))
    shown = [tag.get_attribute("data-tag") for tag in browser.find_elements(By.CSS_SELECTOR, ".opblock-tag")]
    assert shown == [tag["name"] for tag in SPEC["tags"]]
    assert browser.find_element(By.CSS_SELECTOR, ".info .title").text.startswith(SPEC["info"]["title"])

    urls = requested_urls(browser)
    assert f"{server}/openapi.json" in urls
    assert f"{server}/docs/swagger-ui-bundle.js" in urls
    assert [url for url in urls if not url.startswith(f"{server}/") and not url.startswith("data:")] == []


def test_try_it_out_on_predictions_shows_the_predicted_tags(server: str, browser: webdriver.Chrome) -> None:
    open_docs(browser, server)
    block = open_operation(browser, "post", "/predictions")
    example = json.loads(
        block.find_element(By.CSS_SELECTOR, "textarea.body-param__text").get_attribute("value") or ""
    )

    body = execute(browser, block, "200")

    # The page shows what the server answers to the same body: tags, probabilities and model.
    expected = httpx.post(f"{server}/predictions", json=example, timeout=10).json()["data"]
    predictions = body["data"]["predictions"]
    assert [p["input_text"] for p in predictions] == [t["text"] for t in example["texts"]]
    assert [p["predicted_tag"] for p in predictions] == [p["predicted_tag"] for p in expected["predictions"]]
    # Each answer's predictions have ids of their own (the ledger's): everything else is the same.
    for answered in (body["data"], expected):
        for prediction in answered["predictions"]:
            assert uuid.UUID(prediction.pop("prediction_id")).version == 7
    assert body["data"] == expected
    # Swagger UI sends the spec's default of the optional query parameter, as a generated client would not.
    assert (body["method"], body["status-code"], body["url"]) == (
        "POST",
        200,
        f"{server}/predictions?explain=false",
    )


def test_authorize_then_put_the_staging_alias(server: str, browser: webdriver.Chrome) -> None:
    aliases = f"{server}/models/{MODEL}/aliases"
    assert httpx.get(aliases, timeout=10).json()["data"]["aliases"] == {"production": 1}
    open_docs(browser, server)
    block = open_operation(browser, "put", "/models/{model-name}/aliases/{alias}")
    replace_text(block.find_element(By.CSS_SELECTOR, 'tr[data-param-name="model-name"] input'), MODEL)
    replace_text(block.find_element(By.CSS_SELECTOR, 'tr[data-param-name="alias"] input'), "staging")
    replace_text(block.find_element(By.CSS_SELECTOR, "textarea.body-param__text"), '{"version": 2}')

    # Without a key the server refuses, and the page says so.
    refused = execute(browser, block, "401")
    direct = httpx.put(f"{aliases}/staging", json={"version": 2}, timeout=10).json()
    assert {**refused, "request_id": None} == {**direct, "request_id": None}
    assert (refused["title"], refused["status"]) == ("Unauthorized", 401)

    authorize(browser, ADMIN_KEY)
    moved = execute(browser, block, "200")
    assert moved["data"] == {"alias": "staging", "version": 2}
    assert (moved["method"], moved["status-code"]) == ("PUT", 200)
    assert block.find_element(By.CSS_SELECTOR, ".request-url pre").text == f"{aliases}/staging"
    assert httpx.get(aliases, timeout=10).json()["data"]["aliases"] == {"production": 1, "staging": 2}


def authorize(driver: webdriver.Chrome, key: str) -> None:
    """ "Authorize" → the bearer scheme's value → "Authorize" → "Close", as a user does."""
    driver.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    bearer = "//div[contains(@class, 'auth-container')][.//h4[contains(., 'bearerAuth')]]"
    wait(driver).until(ec.element_to_be_clickable((By.XPATH, f"{bearer}//input"))).send_keys(key)
    driver.find_element(By.XPATH, f"{bearer}//button[normalize-space()='Authorize']").click()
    wait(driver).until(
        ec.presence_of_element_located((By.XPATH, f"{bearer}//button[normalize-space()='Logout']"))
    )
    driver.find_element(By.CSS_SELECTOR, ".modal-ux .close-modal").click()
    wait(driver).until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
