"""Screenshot an HTML file (e.g. what `textcls explain` writes) with Debian's chromium, as the app test does.

    python scripts/screenshot.py explanation.html docs/images/explain.png [--width 900]

Needs `playwright` (the dev extra) and `apt-get install chromium`; Playwright's own browser download
is not used.
"""

import argparse
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--width", type=int, default=900)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": args.width, "height": 400})
        page.goto(args.html.resolve().as_uri())
        args.png.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.png), full_page=True)
        browser.close()
    print(f"Wrote {args.png}")


if __name__ == "__main__":
    main()
