"""The explorer in real browsers: JupyterLab, Notebook 7 and Voila, driven in Debian's Chromium.

    pytest tests/test_browser.py                 # the tests
    python tests/test_browser.py --benchmark     # time from a control change to the repainted image

Screenshots of the final states land in artifacts/browser/ (ignored by git).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
import browser_harness as h  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser")
    root = home / "work"
    root.mkdir()
    h.write_notebook(root / "explorer.ipynb")
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (70, 50, 3), dtype=np.uint8)).save(root / "mine.png")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return home, root


@pytest.fixture(scope="module")
def server(workspace):
    home, root = workspace
    with h.jupyter_server(root, home) as running:
        yield running


@pytest.fixture
def page():
    with h.chromium_page() as browser_page:
        yield browser_page


def open_and_run(page, server, path: str) -> None:
    page.goto(server.page_url(path))
    page.wait_for_selector(".jp-Notebook", timeout=120_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    h.run_all_cells(page)
    h.wait_for_explorer(page)


class Change:
    """Do one thing in the page and check the overlay was repainted with different pixels."""

    def __init__(self, page) -> None:
        self.page = page
        self.pixels = h.overlay_pixels(page)

    def __call__(self, action, what: str) -> np.ndarray:
        src = h.overlay_src(self.page)
        action()
        h.wait_for_repaint(self.page, src)
        pixels = h.overlay_pixels(self.page)
        assert h.pixels_hash(pixels) != h.pixels_hash(self.pixels), f"{what}: the overlay did not change"
        assert not h.is_blank(pixels), f"{what}: the overlay is blank"
        self.pixels = pixels
        return pixels


def test_jupyterlab_every_control(page, server, workspace):
    _, root = workspace
    open_and_run(page, server, "lab/tree/explorer.ipynb")
    status = h.status_text(page)
    assert "at conv_b (16×16)" in status and "Grad-CAM:" in status
    change = Change(page)

    change(lambda: h.select(page, "layer", index=0), "layer")
    assert "at conv_a (32×32)" in h.status_text(page)

    label = page.locator(".camwidget-class select option").nth(3).inner_text().replace("\xa0", " ")
    change(lambda: h.select(page, "class", index=3), "class")
    assert f"explaining {label.split(' · ')[0]}" in h.status_text(page)

    change(lambda: h.select(page, "method", label="Grad-CAM++"), "method")
    assert "Grad-CAM++:" in h.status_text(page)

    change(lambda: h.select(page, "colormap", label="viridis"), "colormap")
    change(lambda: h.drag_alpha(page, -45), "alpha")
    assert page.locator(".camwidget-alpha .widget-readout").first.inner_text() != "0.50"

    before = h.status_text(page)
    change(lambda: h.select(page, "image", index=1), "second image")
    assert h.overlay_pixels(page).shape[:2] != (120, 160) or h.status_text(page) != before

    def upload() -> None:
        with page.expect_file_chooser() as chooser:
            page.locator(".camwidget-upload").first.click()
        chooser.value.set_files(str(root / "mine.png"))

    change(upload, "upload")
    page.wait_for_function("() => [...document.querySelectorAll('.camwidget-image option')].some(o => o.textContent.includes('mine.png'))")
    assert "mine.png" in page.locator(".camwidget-image option:checked").first.inner_text()
    assert "(50×70)" in page.locator(".camwidget-image option:checked").first.inner_text().replace("\xa0", " ")

    page.locator(".camwidget-overlay").first.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "jupyterlab.png"))
    final = np.asarray(Image.open(ARTIFACTS / "jupyterlab.png").convert("RGB"))
    assert not h.is_blank(final)
    assert not h.is_blank(h.overlay_pixels(page))


def test_notebook7_shows_a_working_explorer(page, server):
    open_and_run(page, server, "tree/explorer.ipynb")  # Notebook 7 opens the notebook from its file tree
    assert "/notebooks/explorer.ipynb" in page.url
    assert "Prediction:" in h.status_text(page)
    Change(page)(lambda: h.select(page, "colormap", label="inferno"), "colormap in Notebook 7")
    page.screenshot(path=str(ARTIFACTS / "notebook7.png"))


def test_voila_renders_the_explorer(page, workspace):
    home, root = workspace
    with h.voila_server(root / "explorer.ipynb", home) as voila:
        page.goto(voila.url)
        h.wait_for_explorer(page)
        assert "Prediction:" in h.status_text(page)
        Change(page)(lambda: h.select(page, "colormap", label="turbo"), "colormap in Voila")
        page.screenshot(path=str(ARTIFACTS / "voila.png"))


@pytest.mark.network  # the widget renderer comes from the npm registry
def test_exported_html_shows_the_last_overlay(page, workspace):
    """Executed with widget state saved, exported by nbconvert, opened in Chromium: the overlay shown is
    the last one the kernel drew (after an opacity and colormap change), byte for byte."""
    import nbformat
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    home, root = workspace
    path = h.write_notebook(root / "exported.ipynb", extra_cells=(
        "explorer.alpha = 0.8\nexplorer.colormap = 'magma'",
        "import base64; print('LAST', base64.b64encode(explorer.controls['overlay'].value).decode())",
    ))  # fmt: skip
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(root)}}).execute()
    last = nb.cells[-1].outputs[0]["text"].split("LAST ", 1)[1].strip()
    html_path = root / "exported.html"
    html_path.write_text(HTMLExporter().from_notebook_node(nb)[0])

    h.serve_cdn_locally(page, h.widget_renderer_js())
    page.goto(html_path.as_uri())
    h.wait_for_explorer(page)
    assert h.overlay_png_base64(page) == last
    assert not h.is_blank(h.overlay_pixels(page))
    page.screenshot(path=str(ARTIFACTS / "exported_html.png"))


# -- benchmark mode -------------------------------------------------------------------------------------------


def benchmark(rounds: int = 20) -> None:
    """Median time from a control change in the browser to the repainted overlay, for alpha, class, layer."""
    import tempfile

    home = Path(tempfile.mkdtemp())
    root = home / "work"
    root.mkdir()
    # caches of one entry, so that every class and layer change computes instead of hitting a cache
    h.write_notebook(root / "explorer.ipynb", extra_cells=(
        "explorer.session.limit_caches(views=1, capture_bytes=1)\nexplorer.session.warm_ups_enabled = False",
    ))  # fmt: skip

    def timed(page, action, by_status: bool = False) -> float:
        src, status = h.overlay_src(page), h.status_text(page)
        start = time.perf_counter()
        action()
        try:
            if by_status:
                h.wait_for_status_change(page, status)
            else:
                h.wait_for_repaint(page, src)
        except Exception:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "benchmark_failure.png"))
            raise
        return time.perf_counter() - start

    with h.jupyter_server(root, home) as running, h.chromium_page() as page:
        open_and_run(page, running, "lab/tree/explorer.ipynb")
        page.wait_for_timeout(1500)
        results = {}
        moves = [-12, 12] * (rounds // 2)  # one mouse move: one new value, back and forth
        results["alpha (one slider move)"] = [timed(page, lambda dx=dx: h.drag_alpha(page, dx, steps=1)) for dx in moves]
        results["class"] = [timed(page, lambda i=i: h.select(page, "class", index=1 + i % 19), True) for i in range(rounds)]
        layers = ["conv_a · 32×32×8", "conv_b · 16×16×16"]
        results["layer (full pass)"] = [timed(page, lambda i=i: h.select(page, "layer", label=layers[i % 2]), True) for i in range(rounds)]
    print(f"\nIn Chromium, JupyterLab, a 160x120 image and a small CNN; medians of {rounds}:")
    for name, times in results.items():
        print(f"  {name:26s} {statistics.median(times) * 1e3:7.1f} ms   (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})")


if __name__ == "__main__":
    if "--benchmark" in sys.argv:
        benchmark()
    else:
        sys.exit(pytest.main([__file__, "-q"]))
