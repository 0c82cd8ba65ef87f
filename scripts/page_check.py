#!/usr/bin/env python3
"""Opens Archway's operator page in a real headless Chromium (Selenium, chromium-driver from
Debian) and reports what a person would see, as JSON on stdout:

  sections      each section's visible text, by id
  moved         whether a download's progress bar advanced between two refreshes of the page
  copied        what the first "Copy rule" button put on the clipboard (or null)
  suggestion    the text of the rule next to it
  console       the browser console's errors (SEVERE entries)
  screenshots   the files written: one per section and the whole page

Usage: page_check.py URL OUT_DIR [--watch-download SECONDS]
"""
import json
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By


def main():
    url, out = sys.argv[1], sys.argv[2]
    watch = float(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--watch-download" else 0
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1280,1600", "--no-first-run", "--disable-extensions"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    report = {"sections": {}, "moved": None, "copied": None, "suggestion": None, "console": [], "screenshots": []}
    try:
        origin = url.split("/_archway")[0]
        driver.execute_cdp_cmd("Browser.grantPermissions", {
            "origin": origin, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]})
        driver.get(url)
        deadline = time.monotonic() + 20
        while driver.execute_script("return document.readyState") != "complete" and time.monotonic() < deadline:
            time.sleep(0.1)

        if watch:
            # A download in flight: its bar must advance as the page refreshes itself.
            first = None
            deadline = time.monotonic() + watch
            while time.monotonic() < deadline:
                try:
                    rows = driver.find_elements(By.CSS_SELECTOR, "tr.download")
                    row = (int(rows[0].get_attribute("data-written")), rows[0].get_attribute("data-digest")) if rows else None
                except StaleElementReferenceException:
                    continue
                if row:
                    written, digest = row
                    if first is None:
                        try:
                            driver.find_element(By.ID, "overview").screenshot(f"{out}/overview-download.png")
                        except StaleElementReferenceException:
                            continue
                        first = (digest, written)
                        report["screenshots"].append(f"{out}/overview-download.png")
                    elif digest == first[0] and written > first[1]:
                        report["moved"] = {"digest": digest, "from": first[1], "to": written}
                        break
                time.sleep(0.25)
            if report["moved"] is None:
                report["moved"] = False

        names = driver.execute_script("return Array.from(document.querySelectorAll('main > section'), s => s.id);")
        for name in names:
            path = f"{out}/{name}.png"
            for _ in range(20):
                try:
                    section = driver.find_element(By.ID, name)
                    report["sections"][name] = section.text
                    driver.execute_script("arguments[0].scrollIntoView()", section)
                    section.screenshot(path)
                    break
                except StaleElementReferenceException:
                    time.sleep(0.1)
            report["screenshots"].append(path)

        # Read in one script, which runs between two of the page's swaps: elements found one call
        # at a time can go stale in between.
        first = driver.execute_script(
            "var b = document.querySelector('button.copy');"
            "return b ? [b.dataset.copy, document.getElementById(b.dataset.copy).textContent] : null;")
        if first:
            target, report["suggestion"] = first
            # The page swaps its sections in place every 2 s: a button found before a swap is
            # gone after it, so it is found again until a click lands.
            for _ in range(20):
                try:
                    button = driver.find_element(By.CSS_SELECTOR, f"button.copy[data-copy='{target}']")
                    driver.execute_script("arguments[0].scrollIntoView()", button)
                    button.click()
                    break
                except StaleElementReferenceException:
                    time.sleep(0.1)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                # Found and read in one script: a swap between two calls leaves the element stale.
                copied = driver.execute_script(
                    "var b = document.querySelector(arguments[0]); return b ? b.getAttribute('data-copied') : null;",
                    f"button.copy[data-copy='{target}']")
                if copied == "true":
                    break
                time.sleep(0.1)
            report["copied"] = driver.execute_async_script(
                "var done = arguments[arguments.length - 1];"
                "navigator.clipboard.readText().then(done, function (e) { done(null); });")

        driver.execute_script("window.scrollTo(0, 0)")
        driver.save_screenshot(f"{out}/page.png")
        report["screenshots"].append(f"{out}/page.png")
        report["console"] = [entry for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
    finally:
        driver.quit()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
