"""The leaderboard page in a real browser (headless Debian chromium driven by playwright): its rows are the
records' configurations, sorting and filtering work, nothing logs an error, record text stays text.

Needs `apt-get install chromium` and `pip install playwright` (never `playwright install`: it downloads a
browser; this test drives the system chromium). Skips with the reason when either is missing.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import shutil

import pytest

from bench.report import write_leaderboard
from tests.test_leaderboard import EVIL, config, scenario

CHROMIUM = shutil.which(os.environ.get("BENCH_CHROMIUM", "")) or shutil.which("chromium") or shutil.which(
    "chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]

pytestmark = [
    pytest.mark.skipif(importlib.util.find_spec("playwright") is None,
                       reason="playwright not installed (pip install playwright; no `playwright install` needed)"),
    pytest.mark.skipif(CHROMIUM is None, reason="no chromium executable (apt-get install chromium)"),
]
KEYS = ["machine", "backbone", "task", "runtime", "precision", "sparsity", "device"]


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("leaderboard")
    records = scenario() + config(EVIL, "torch", "fp32", "dense", seconds=0.03)
    paths = write_leaderboard(records, out)
    return paths, records


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, site):
    """A fresh page per test; `page.problems` collects console errors, page errors and any network request."""
    paths, _ = site
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.problems = []
    page.on("console", lambda m: page.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.problems.append(str(e)))
    page.on("request", lambda r: None if r.url.startswith(("file:", "data:")) else page.problems.append(r.url))
    page.goto(paths.html.as_uri())
    yield page
    page.close()


def visible_rows(page) -> list[dict]:
    heads = page.eval_on_selector_all("#board thead th", "ths => ths.map(th => th.innerText.trim())")
    cells = page.eval_on_selector_all(
        "#board tbody tr:not([hidden])", "trs => trs.map(tr => Array.from(tr.cells, td => td.innerText))")
    return [dict(zip(heads, row, strict=True)) for row in cells]


def test_rows_equal_the_records_configurations(page, site):
    paths, records = site
    csv_rows = list(csv.DictReader(paths.csv.read_text(encoding="utf-8").splitlines()))
    shown = visible_rows(page)
    assert len(shown) == len(csv_rows) == 11
    assert {tuple(r[k] for k in KEYS) for r in shown} == {tuple(r[k] for k in KEYS) for r in csv_rows}
    configs = {(r.environment["machine"], r.cell.backbone, r.cell.runtime, r.cell.precision, r.cell.sparsity)
               for r in records}
    assert {(r["machine"], r["backbone"], r["runtime"], r["precision"], r["sparsity"]) for r in shown} == configs
    assert page.inner_text("#count") == "11 of 11 rows"


def test_clicking_a_header_sorts_numbers_and_again_reverses(page):
    page.click("#board thead th:has-text('best_seq_per_s') button")
    values = [float(r["best_seq_per_s"].replace(",", "")) for r in visible_rows(page) if r["best_seq_per_s"]]
    assert values == sorted(values) and len(values) == 11
    page.click("#board thead th:has-text('best_seq_per_s') button")
    values = [float(r["best_seq_per_s"].replace(",", "")) for r in visible_rows(page) if r["best_seq_per_s"]]
    assert values == sorted(values, reverse=True)
    assert page.get_attribute("#board thead th:has-text('best_seq_per_s')", "aria-sort") == "descending"
    page.click("#board thead th:has-text('accuracy') >> nth=0 >> button")
    acc = [r["accuracy"] for r in visible_rows(page)]
    filled = [float(a) for a in acc if a]
    assert filled == sorted(filled) and acc[len(filled):] == [""] * (len(acc) - len(filled))  # empty last


def test_filters_narrow_the_rows(page):
    page.select_option("select[data-col='1']", "minilm-l6-h384")
    page.select_option("select[data-col='2']", "sst2")
    rows = visible_rows(page)
    assert {(r["backbone"], r["task"]) for r in rows} == {("minilm-l6-h384", "sst2")} and len(rows) == 3
    assert page.inner_text("#count") == "3 of 11 rows"
    page.select_option("select[data-col='2']", "__none__")  # rows without a task
    assert {r["task"] for r in visible_rows(page)} == {""}
    page.select_option("select[data-col='1']", "")
    page.select_option("select[data-col='2']", "")
    page.fill("#search", "int8")
    assert all("int8" in r["precision"] for r in visible_rows(page))
    page.fill("#search", "")
    assert page.inner_text("#count") == "11 of 11 rows"


def test_record_text_is_rendered_as_text_not_markup(page):
    assert page.evaluate("window.__xss") is None
    assert EVIL in [r["backbone"] for r in visible_rows(page)]
    assert page.locator("script").count() == 1


def test_no_console_errors_and_no_network(page):
    assert page.problems == []


def test_screenshot_is_produced(page, site):
    paths, _ = site
    shot = paths.html.with_name("leaderboard.png")
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
