"""The README and the documentation site: short, with the two commands first, built strictly, rendered in Chromium."""

import contextlib
import functools
import http.server
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TWO_COMMANDS = (
    'pip install -e ".[lab]" && jupyter lab notebooks/01_vgg16_gradcam.ipynb',
    'pip install -e ".[dev]" && sh tests/install_peers.sh && pytest',
)


def test_readme_fits_on_two_screens():
    """At most about 10 KB: everything else lives in the docs pages."""
    assert len(README.encode()) <= 10_240, len(README.encode())


def test_readme_first_code_block_holds_the_two_commands():
    """The first code block is the demo command and the test command, exactly as they were."""
    first = re.search(r"```bash\n(.*?)```", README, flags=re.S)
    assert first is not None and README.index("```") == first.start()
    lines = [line for line in first.group(1).splitlines() if line and not line.startswith("#")]
    assert lines == list(TWO_COMMANDS)


def test_readme_links_resolve_to_files():
    """Every relative link of the README (docs pages, pictures, LICENSE) names a file in the repository."""
    relative = [t for t in re.findall(r"\]\(([^)#\s]+)\)", README) if not t.startswith(("http://", "https://"))]
    assert relative, "the README links no docs page"
    missing = [t for t in relative if not (ROOT / t).is_file()]
    assert not missing, missing


def test_every_readme_feature_page_is_in_the_docs_nav():
    """Each docs page the README links to is in mkdocs.yml's nav, so the site shows it."""
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = set(re.findall(r"\]\(docs/([\w-]+\.md)\)", README))
    assert {"getting-started.md", "explorer.md", "safety.md", "api.md"} <= pages
    assert all(f": {page}" in nav for page in pages), pages


def test_api_reference_names_every_public_name():
    """The API page generates a section for each public name of `import camwidget as cw`."""
    api = (ROOT / "docs" / "api.md").read_text()
    for name in (
        "compute_cam",
        "spatial_layers",
        "default_layer",
        "Explainer",
        "CAMExplorer",
        "explain_many",
        "Gallery",
        "metrics",
        "targets",
        "demo",
        "overlay",
    ):
        assert f"::: camwidget.{name}\n" in api, name
    assert "METHODS" in api


def build_site(out: Path) -> subprocess.CompletedProcess:
    """Build the docs site as CI does (strict: a broken link, anchor or reference fails it)."""
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


@functools.cache
def built_site(out: str) -> Path:
    done = build_site(Path(out))
    assert done.returncode == 0, done.stderr[-4000:]
    return Path(out)


@pytest.mark.slow
def test_docs_build_strictly(tmp_path):
    """`mkdocs build --strict` succeeds, and the pages the nav names were written with their content."""
    pytest.importorskip("mkdocstrings")
    site = built_site(str(tmp_path / "site"))
    for page in ("index.html", "explorer/index.html", "api/index.html", "safety/index.html", "changelog/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "index.html").read_text()
    assert 'id="camwidget.compute_cam"' in api and 'id="camwidget.CAMExplorer"' in api
    assert "Keep a Changelog" in (site / "changelog" / "index.html").read_text()


def test_strict_build_fails_on_a_broken_link(tmp_path):
    """The link check has teeth: a page linking to a missing page fails the strict build."""
    pytest.importorskip("mkdocs")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n[gone](missing.md)\n")
    (tmp_path / "mkdocs.yml").write_text("site_name: t\nvalidation:\n  links:\n    not_found: warn\n")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode != 0 and "missing.md" in done.stderr


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve a folder over http on a free local port, yielding its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.browser
def test_site_pages_render_without_broken_images_or_404(tmp_path):
    """Home, explorer and API pages in Chromium: every response below 400 and every <img> decoded (naturalWidth > 0)."""
    pytest.importorskip("mkdocstrings")
    from browser_harness import chromium_page

    site = built_site(str(tmp_path / "site"))
    with serve(site) as base, chromium_page() as page:
        failures: list[str] = []
        page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.on("requestfailed", lambda r: failures.append(f"failed {r.url}") if r.url.startswith(base) else None)
        counted = {}
        for path in ("/", "/explorer/", "/api/"):
            response = page.goto(base + path, wait_until="load")
            assert response is not None and response.status == 200, path
            broken = page.eval_on_selector_all(
                "img", "images => images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
            )
            assert not broken, (path, broken)
            counted[path] = page.eval_on_selector_all("img", "images => images.length")
        assert counted["/"] >= 1 and counted["/explorer/"] >= 2, counted
        assert not failures, failures
