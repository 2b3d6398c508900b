"""The HTML report for reviewers: self-contained, bounded in size, interactive in a real browser."""

import copy
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from audit.images import save_png
from audit.report import render_all


@pytest.mark.slow
def test_a_1000_class_report_stays_under_10_mb(shortcut_run, tmp_path):
    """Thumbnails are capped; the full-size PNGs are linked files beside the report."""
    result = json.loads((shortcut_run[1] / "audit.json").read_text())
    big = copy.deepcopy(result)
    rng = np.random.default_rng(0)
    (tmp_path / "images" / "classes").mkdir(parents=True)
    shutil.copytree(shortcut_run[1] / "images" / "concepts", tmp_path / "images" / "concepts")
    shutil.copytree(shortcut_run[1] / "images" / "layers", tmp_path / "images" / "layers")
    if (shortcut_run[1] / "images" / "causal").exists():  # the finding card's before/after pastes
        shutil.copytree(shortcut_run[1] / "images" / "causal", tmp_path / "images" / "causal")
    template = result["visualization"]["classes"][0]
    for rel in template.get("raw_images") or []:  # the raw-mode image shown beside each class
        save_png(tmp_path / rel, rng.random((64, 64, 3)))
    big["visualization"]["classes"], big["checks"] = [], []
    for i in range(1000):
        paths = [f"images/classes/{i:04d}_r{r}.png" for r in range(8)]
        for rel in paths[:4 if i < 100 else 1]:  # only what the page can embed needs to exist
            save_png(tmp_path / rel, rng.random((64, 64, 3)))  # noise: the worst case for compression
        big["visualization"]["classes"].append({**template, "name": f"class_{i}", "index": i, "images": paths})
    # 10 concepts and 100 findings: the worst case the report has to carry
    concepts = [{**result["concepts"]["bank"][0], "name": f"concept_{k}"} for k in range(10)]
    big["concepts"]["bank"] = concepts
    big["checks"] = [{**result["checks"][0], "class_name": f"class_{i}", "concept": f"concept_{k}",
                      "level": "fail" if i < 100 and k == 0 else "pass"} for i in range(1000) for k in range(10)]
    big["findings"] = [c for c in big["checks"] if c["level"] == "fail"]
    (tmp_path / "audit.json").write_text(json.dumps(big))
    render_all(tmp_path)
    html = (tmp_path / "index.html").read_text()
    assert len(html.encode()) < 10 * 2**20
    assert 'href="images/classes/0999_r7.png"' in html  # not embedded, linked
    assert 'src=""' not in html
    assert ('id="size-warning"' in html) == (len(html.encode()) > 5 * 2**20)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _ensure_chromium() -> str | None:
    """Debian's chromium, installed here when missing; None (with the reason) when it cannot be."""
    if shutil.which("chromium"):
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "chromium is not installed and this user cannot apt-get install it"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
        if proc.returncode != 0:
            return f"`{' '.join(cmd)}` failed: {proc.stderr.strip()[-200:]}"
    return None


@pytest.fixture(scope="module")
def browser():
    reason = _ensure_chromium()
    if reason:
        pytest.skip(reason)
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def _open(browser, path):
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    return page, requests, errors


def _visible_rows(page):
    return page.eval_on_selector_all("#checks-table tbody tr",
                                     "rows => rows.filter(r => !r.hidden).map(r => [r.cells[0].textContent, "
                                     "r.cells[1].textContent, r.cells[2].textContent, r.cells[3].textContent, r.cells[4].textContent])")


@pytest.mark.slow
def test_report_in_a_real_browser(browser, shortcut_run):
    out = shortcut_run[1]
    page, requests, errors = _open(browser, out / "index.html")
    # offline: the only request is the file itself
    assert [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert errors == []
    findings = json.loads((out / "audit.json").read_text())["findings"]
    assert page.locator("#findings .finding").count() == len(findings) >= 1
    # passed checks are behind a toggle: the rows shown are the findings, the fail first
    rows = _visible_rows(page)
    assert len(rows) == len(findings) and ["dumbbell", "arm", "fail"] in [r[:3] for r in rows]
    assert sorted(r[2] for r in rows) == sorted(f["level"] for f in findings)
    arm = next(r for r in rows if r[:2] == ["dumbbell", "arm"])
    assert arm[3].startswith("moves +") and " pts (" in arm[3]  # the statistic that decided it, in points
    page.check("#show-passed")
    rows = _visible_rows(page)
    assert len(rows) == 18
    # sorting by cue d, twice: ascending then descending
    header = page.locator("#checks-table thead th", has_text="cue d")
    header.click()
    values = [float(r[4]) for r in _visible_rows(page)]
    assert values == sorted(values)
    header.click()
    values = [float(r[4]) for r in _visible_rows(page)]
    assert values == sorted(values, reverse=True) and values[0] == pytest.approx(1.69, abs=0.01)
    # filtering by concept
    page.fill("#check-filter", "watermark")
    assert {r[1] for r in _visible_rows(page)} == {"watermark"} and len(_visible_rows(page)) == 6
    page.fill("#check-filter", "no such thing")
    assert _visible_rows(page) == [] and page.is_visible("#checks-empty")
    page.fill("#check-filter", "")
    page.screenshot(path=str(out / "screenshot.png"), full_page=True)
    assert (out / "screenshot.png").stat().st_size > 10_000
    page.close()


@pytest.mark.slow
def test_dream_and_diff_pages_load_cleanly(browser, shortcut_run, control_run, tmp_path):
    from conftest import run_cli

    assert run_cli("diff", control_run[1] / "audit.json", shortcut_run[1] / "audit.json",
                   "--out", tmp_path).returncode == 0
    page, requests, errors = _open(browser, tmp_path / "diff.html")
    assert errors == [] and [u for u in requests if not u.startswith(("file:", "data:"))] == []
    assert "arm" in page.inner_text("main")
    page.close()


def test_finding_cards_show_a_tiny_probability_that_moved():
    # a confident real network: the pasted concept doubles a class probability of 1e-4
    from audit.report.html import _probability

    assert _probability(1.2e-4) == "1.2e-04" and _probability(2.6e-4) == "2.6e-04"
    assert _probability(0.4567) == "0.457" and _probability(None) == "n/a"
