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


RENDERED = sorted((ROOT / "docs" / "notebooks").glob("*.ipynb"))


def test_rendered_notebooks_are_the_notebooks_as_they_ran():
    """docs/notebooks/ (python docs/execute_notebooks.py) holds every notebook of notebooks/ with the same cells,
    every code cell run, no error, no widget state (a static page has no kernel), and the explorer's still
    picture wherever a cell shows an explorer."""
    import nbformat

    sources = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert [p.name for p in RENDERED] == [p.name for p in sources]
    for source, rendered in zip(sources, RENDERED):
        want, have = nbformat.read(source, as_version=4), nbformat.read(rendered, as_version=4)
        stale = f"{rendered.name} is stale: rerun python docs/execute_notebooks.py"
        assert [(c.cell_type, c.source) for c in have.cells] == [(c.cell_type, c.source) for c in want.cells], stale
        assert "widgets" not in have.metadata, rendered.name
        code = [c for c in have.cells if c.cell_type == "code"]
        assert all(c.execution_count for c in code), f"{rendered.name}: a cell did not run"
        assert not [o for c in code for o in c.outputs if o.output_type == "error"], rendered.name
        explorers = [
            o for c in code for o in c.outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
        ]
        assert explorers and all("image/png" in o.data for o in explorers), rendered.name


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
    for notebook in RENDERED:  # each notebook rendered with its outputs: pictures inline, the explorer's still too
        page = (site / "notebooks" / notebook.stem / "index.html").read_text()
        assert re.search(r'jp-OutputArea-output[^>]*>\s*<img [^>]*src="data:image/png;base64,', page), notebook.name
    for asset in ("katex.min.js", "katex.min.css", "contrib/auto-render.min.js", "fonts/KaTeX_Main-Regular.woff2"):
        assert (site / "javascripts" / "katex" / asset).is_file(), asset
    remote = [
        (page.relative_to(site), tag[:120])
        for page in site.rglob("*.html")
        for tag in re.findall(r"<(?:script|link)\b[^>]*>", page.read_text())
        if re.search(r'\b(?:src|href)="(?:https?:)?//', tag) and (tag.startswith("<script") or "stylesheet" in tag)
    ]
    assert not remote, remote[:5]  # no script or stylesheet from a CDN: the site works offline


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
    """Home, explorer and API pages in Chromium: every response below 400 and every <img> decoded (naturalWidth > 0);
    a rendered notebook's output pictures decoded; the methods page's formulas typeset."""
    pytest.importorskip("mkdocstrings")
    from browser_harness import chromium_page

    site = built_site(str(tmp_path / "site"))
    with serve(site) as base, chromium_page() as page:
        failures: list[str] = []
        page.on("response", lambda r: failures.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        # a request the next page's navigation cancelled (Chromium's own favicon fetch, fired after "load") is
        # aborted, not broken: a missing file answers 404 above
        page.on(
            "requestfailed",
            lambda r: (
                failures.append(f"failed {r.url}: {r.failure}")
                if r.url.startswith(base) and "ERR_ABORTED" not in (r.failure or "")
                else None
            ),
        )
        counted = {}
        for path in ("/", "/explorer/", "/api/"):
            response = page.goto(base + path, wait_until="load")
            assert response is not None and response.status == 200, path
            broken = page.eval_on_selector_all(
                "img", "images => images.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
            )
            assert not broken, (path, broken)
            counted[path] = page.eval_on_selector_all("img", "images => images.length")
        assert counted["/"] >= 1 and counted["/explorer/"] >= 6, counted  # a picture of each view
        page.goto(base + "/notebooks/03_where_does_it_look/", wait_until="load")
        outputs = page.eval_on_selector_all(
            ".jp-OutputArea-output img", "images => images.map(i => i.complete && i.naturalWidth > 0)"
        )
        assert len(outputs) >= 3 and all(outputs), outputs  # the notebook's figures and the explorer's stills
        page.goto(base + "/methods/", wait_until="load")
        page.wait_for_selector(".katex", timeout=10_000)  # the formulas typeset, by KaTeX served from the site
        assert page.eval_on_selector_all(".katex-error", "errors => errors.length") == 0
        assert not failures, failures


def test_every_public_name_documents_its_parameters_and_returns_in_one_style():
    """The API reference is generated from the docstrings (Google style, mkdocs.yml): each function or class
    that `import camwidget` offers says its parameters under Args: (a class: or Attributes:), and each
    function what it returns under Returns:."""
    import inspect

    import camwidget as cw
    import camwidget.metrics

    missing = []
    for module in (cw, camwidget.metrics):
        for name in module.__all__:
            obj = getattr(module, name)
            if (
                not (inspect.isfunction(obj) or inspect.isclass(obj))
                or inspect.isclass(obj)
                and issubclass(obj, BaseException)
            ):
                continue
            doc = inspect.getdoc(obj) or ""
            try:
                has_params = any(p != "self" for p in inspect.signature(obj).parameters)
            except ValueError:  # a TypedDict (its keys are its parameters)
                has_params = bool(getattr(obj, "__annotations__", None))
            sections = ("\nArgs:\n", "\nAttributes:\n") if inspect.isclass(obj) else ("\nArgs:\n",)
            if has_params and not any(section in doc for section in sections):
                missing.append(f"{module.__name__}.{name}: Args")
            if inspect.isfunction(obj) and "\nReturns:\n" not in doc:
                missing.append(f"{module.__name__}.{name}: Returns")
    assert not missing, missing
