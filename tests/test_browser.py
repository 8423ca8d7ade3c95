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
    """Do one thing in the page and check the overlay was repainted with different pixels: by the kernel
    (the <img> kept for saved state) and, in a live explorer, by the browser (the canvas on screen), the two
    the same picture."""

    def __init__(self, page) -> None:
        self.page = page
        self.pixels = h.overlay_pixels(page)

    def __call__(self, action, what: str) -> np.ndarray:
        src, draws = h.overlay_src(self.page), h.canvas_draws(self.page)
        action()
        h.wait_for_repaint(self.page, src)
        pixels = h.overlay_pixels(self.page)
        for _ in range(3):  # a repaint of the same picture (one that a busy kernel sent late) is not the change
            if h.pixels_hash(pixels) != h.pixels_hash(self.pixels):
                break
            from playwright.sync_api import TimeoutError as NoRepaint

            try:
                h.wait_for_repaint(self.page, h.overlay_src(self.page), timeout_ms=20_000)
            except NoRepaint:  # none came: the assertion below says the overlay did not change
                break
            pixels = h.overlay_pixels(self.page)
        if h.is_live(self.page):
            h.wait_for_canvas(self.page, draws)
            for _ in range(50):  # a drag passes through several values: until the kernel's last one lands
                painted, pixels = h.canvas_pixels(self.page), h.overlay_pixels(self.page)
                if painted.shape == pixels.shape and np.abs(painted.astype(int) - pixels).max() <= 2:
                    break
                self.page.wait_for_timeout(100)
            assert painted.shape == pixels.shape, f"{what}: the canvas is {painted.shape}, the overlay {pixels.shape}"
            assert np.abs(painted.astype(int) - pixels).max() <= 2, f"{what}: the browser painted another picture"
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

    change(lambda: h.select(page, "method", label="gradient: Grad-CAM++"), "method")
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
    page.wait_for_function(
        "() => [...document.querySelectorAll('.camwidget-image option')].some(o => o.textContent.includes('mine.png'))"
    )
    assert "mine.png" in page.locator(".camwidget-image option:checked").first.inner_text()
    assert "(50×70)" in page.locator(".camwidget-image option:checked").first.inner_text().replace("\xa0", " ")

    assert h.is_live(page), "the overlay is not painted in the browser"
    assert page.locator(".camwidget-overlay").first.is_hidden() and page.locator(h.CANVAS).first.is_visible()
    page.locator(".camwidget-explorer").first.scroll_into_view_if_needed()
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
    path = h.write_notebook(
        root / "exported.ipynb",
        extra_cells=(
            "explorer.alpha = 0.8\nexplorer.colormap = 'magma'",
            "import base64; print('LAST', base64.b64encode(explorer.controls['overlay'].value).decode())",
        ),
    )
    nb = nbformat.read(path, as_version=4)
    NotebookClient(
        nb, timeout=300, kernel_name="python3", store_widget_state=True, resources={"metadata": {"path": str(root)}}
    ).execute()
    last = nb.cells[-1].outputs[0]["text"].split("LAST ", 1)[1].strip()
    html_path = root / "exported.html"
    html_path.write_text(HTMLExporter().from_notebook_node(nb)[0])

    h.serve_cdn_locally(page, h.widget_renderer_js())
    page.goto(html_path.as_uri())
    h.wait_for_explorer(page)
    assert h.overlay_png_base64(page) == last
    assert not h.is_blank(h.overlay_pixels(page))
    page.screenshot(path=str(ARTIFACTS / "exported_html.png"))


def test_a_long_map_shows_progress_and_the_controls_stay_usable(page, server, workspace):
    """In JupyterLab: Score-CAM (slowed to about 2 s here) computes in the background; its progress line shows,
    a colormap change is painted meanwhile, and the map lands when done, the line gone."""
    _, root = workspace
    h.write_notebook(
        root / "slow.ipynb",
        extra_cells=(
            "import time\n"
            "engine = explorer.session.engine\n"
            "original = engine.class_probabilities\n"
            "engine.class_probabilities = lambda x, output, *more: time.sleep(2) or original(x, output, *more)",
        ),
    )
    open_and_run(page, server, "lab/tree/slow.ipynb")
    page.wait_for_timeout(1000)
    busy = page.locator(".camwidget-busy").first
    h.select(page, "method", label="perturbation: Score-CAM")
    busy.wait_for(state="visible", timeout=10_000)
    assert "computing Score-CAM at conv_b" in busy.inner_text()
    assert "Grad-CAM:" in h.status_text(page)  # the view on screen is still the one it says
    draws = h.canvas_draws(page)
    h.select(page, "colormap", label="viridis")
    h.wait_for_canvas(page, draws, timeout_ms=1000)  # painted while Score-CAM runs
    assert busy.is_visible()
    page.wait_for_function(
        "() => document.querySelector('.camwidget-status').innerText.includes('Score-CAM:')", timeout=60_000
    )
    page.wait_for_function("() => !document.querySelector('.camwidget-busy').offsetParent", timeout=10_000)
    page.screenshot(path=str(ARTIFACTS / "progress.png"))


# -- layout: every view fits the cell, panels line up ---------------------------------------------------------

LAYOUT_CELLS = (
    "from skimage import data\n"
    "names = ['tabby cat', 'Egyptian cat', 'golden retriever', 'Border collie with a very long class name', "
    "'tiger'] + [f'thing {i}' for i in range(15)]\n"
    "explorer = cw.CAMExplorer(model, {'Chelsea the cat': data.chelsea(), 'noise': pictures[0]}, class_names=names)\n"
    "explorer",
)

FITS = """ex => {
  const cell = ex.closest('.jp-OutputArea-output') || ex.parentElement;
  const limit = cell.getBoundingClientRect().right + 1;
  const out = [];
  for (const el of [ex, ...ex.querySelectorAll('*')]) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && r.right > limit)
      out.push(`${el.tagName}.${[...el.classList].join('.')} ends at ${Math.round(r.right)} > ${Math.round(limit)}`);
  }
  const status = ex.querySelector('.camwidget-status');
  if (status.scrollWidth > status.clientWidth + 1) out.push('the status line is cut');
  return out.slice(0, 8);
}"""


def rects(page, *controls: str) -> list[dict]:
    return [page.locator(f".camwidget-{name}").first.bounding_box() for name in controls]


def set_file_browser(page, open_: bool) -> None:
    """Open or close JupyterLab's left sidebar (the file browser)."""
    shown = page.locator("#filebrowser").first.is_visible()
    if shown != open_:
        page.locator(".jp-SideBar.jp-mod-left [data-id='filebrowser']").first.click()
        page.wait_for_timeout(500)
    assert page.locator("#filebrowser").first.is_visible() == open_


@pytest.mark.parametrize("width, file_browser", [(900, False), (1400, True)])
def test_every_view_fits_the_cell_and_lines_up(workspace, server, width, file_browser):
    """At 900 px (a 900 px window, no sidebar) and at 1400 px with the file browser open: no part of the
    explorer reaches past the cell in any view, the status line is whole, panels have one height, and a
    colorbar is shown in overlay and side-by-side views."""
    _, root = workspace
    h.write_notebook(root / "layout.ipynb", extra_cells=LAYOUT_CELLS)
    with h.chromium_page(width=width, height=1100) as page:
        page.goto(server.page_url("lab/tree/layout.ipynb"))
        page.wait_for_selector(".jp-Notebook .jp-Cell", state="attached", timeout=120_000)
        set_file_browser(page, file_browser)
        h.run_all_cells(page)
        page.wait_for_function("() => document.querySelectorAll('.camwidget-explorer').length == 2", timeout=180_000)
        page.wait_for_function(
            "() => document.querySelectorAll('.camwidget-explorer')[1].textContent.includes('Chelsea the cat')"
        )
        explorer = page.locator(".camwidget-explorer").nth(1)
        explorer.scroll_into_view_if_needed()

        def control(name: str):
            return explorer.locator(f".camwidget-{name}").first

        def view(mode: str, shown: str) -> None:
            before = control(shown).get_attribute("src") if shown == "grid" else None  # a new grid each time
            control("mode").locator("select").select_option(label=mode)
            page.wait_for_function(
                "([el, before]) => el.offsetParent !== null && el.src !== before && el.complete && el.naturalWidth > 0",
                arg=[control(shown).element_handle(), before],
                timeout=60_000,
            )
            page.wait_for_timeout(300)
            problems = explorer.evaluate(FITS)
            explorer.screenshot(path=str(ARTIFACTS / f"layout_{width}_{mode.lower().replace(' ', '_')}.png"))
            assert problems == [], f"{mode} at {width} px: {problems}"

        shown = "canvas" if h.is_live(page) else "overlay"  # the overlay on screen: painted in the browser
        view("Side by side", "heatmap")
        plain, overlay, heat = (control(n).bounding_box() for n in ("plain", shown, "heatmap"))
        assert abs(plain["height"] - overlay["height"]) <= 1 and abs(heat["height"] - overlay["height"]) <= 1
        assert abs(plain["y"] - heat["y"]) <= 1 and plain["x"] < overlay["x"] < heat["x"], "not on one row"
        view("Compare methods", "grid")
        view("Compare classes", "grid")
        view("Check map", "grid")
        assert control("randomize").is_visible()
        before = control("grid").get_attribute("src")
        control("randomize").locator("button").first.click() if control("randomize").locator(
            "button"
        ).count() else control("randomize").click()
        page.wait_for_function(
            "([el, before]) => el.src !== before && el.complete",
            arg=[control("grid").element_handle(), before],
            timeout=120_000,
        )
        page.wait_for_timeout(300)
        assert explorer.evaluate(FITS) == [], "the check view with its randomisation row does not fit"
        explorer.screenshot(path=str(ARTIFACTS / f"layout_{width}_check_randomised.png"))
        view("Overlay", "colorbar")
        assert not control("randomize").is_visible()
        overlay, colorbar = control(shown).bounding_box(), control("colorbar").bounding_box()
        assert colorbar["width"] > 20 and abs(colorbar["height"] - overlay["height"]) <= 1
        assert abs(colorbar["y"] - overlay["y"]) <= 1 and colorbar["x"] > overlay["x"], "the colorbar is not beside it"
        if width == 1400:
            explorer.screenshot(path=str(ARTIFACTS / "explorer.png"))
            view("Compare methods", "grid")
            control("grid").screenshot(path=str(ARTIFACTS / "compare.png"))


# -- benchmark mode -------------------------------------------------------------------------------------------


def benchmark(rounds: int = 20) -> None:
    """Median time from a control change in the browser to the repainted overlay: opacity and colormap on the
    browser's canvas (and, for comparison, the kernel's <img>), class and layer through the kernel."""
    import tempfile

    home = Path(tempfile.mkdtemp())
    root = home / "work"
    root.mkdir()
    # caches of one entry, so that every class and layer change computes instead of hitting a cache
    h.write_notebook(
        root / "explorer.ipynb",
        extra_cells=(
            "explorer.add_image(rng.integers(0, 256, (768, 1024, 3), dtype=np.uint8), 'large')\nexplorer.image_index = 0",
            "explorer.session.limit_caches(views=1, capture_bytes=1)\nexplorer.session.warm_ups_enabled = False",
        ),
    )

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

    def painted(page, action) -> float:
        """From the input event (the mouse move, the select's change) to the canvas's next paint, both on the
        page's own clock: what a person waits, without the test driver's own round trips."""
        return _painted(page, action, "__paints")

    def loaded(page, action) -> float:
        """The same for the kernel's <img>: from the input event to the new picture loaded."""
        return _painted(page, action, "__loads")

    def _painted(page, action, record: str) -> float:
        seen = page.evaluate(f"() => window.{record}.length")
        action()
        page.wait_for_function(f"n => window.{record}.length > n", arg=seen)
        page.wait_for_timeout(150)  # let the kernel's echo of the value land before the next move
        return page.evaluate(
            f"""n => {{ const paint = window.{record}[n];
            return (paint - Math.max(...window.__inputs.filter(t => t <= paint))) / 1e3; }}""",
            seen,
        )

    with h.jupyter_server(root, home) as running, h.chromium_page() as page:
        open_and_run(page, running, "lab/tree/explorer.ipynb")
        page.wait_for_timeout(1500)
        assert h.is_live(page), "the canvas front end did not load"
        page.evaluate(
            """([canvas, img]) => { window.__paints = []; window.__inputs = []; window.__loads = [];
            new MutationObserver(() => window.__paints.push(performance.now()))
              .observe(document.querySelector(canvas), {attributes: true, attributeFilter: ['data-draws']});
            document.querySelector(img).addEventListener('load', () => window.__loads.push(performance.now()));
            for (const kind of ['mousemove', 'change'])
              document.addEventListener(kind, () => window.__inputs.push(performance.now()), true); }""",
            [h.CANVAS, h.OVERLAY],
        )
        results = {}
        moves = [-12, 12] * (rounds // 2)  # one mouse move: one new value, back and forth
        results["alpha, browser canvas"] = [
            painted(page, lambda dx=dx: h.drag_alpha(page, dx, steps=1)) for dx in moves
        ]
        colormaps = ["viridis", "jet"] * (rounds // 2)
        results["colormap, browser canvas"] = [
            painted(page, lambda c=c: h.select(page, "colormap", label=c)) for c in colormaps
        ]
        results["alpha, kernel <img>"] = [loaded(page, lambda dx=dx: h.drag_alpha(page, dx, steps=1)) for dx in moves]
        results["colormap, kernel <img>"] = [
            loaded(page, lambda c=c: h.select(page, "colormap", label=c)) for c in colormaps
        ]
        h.select(page, "image", index=2)  # 1024x768
        page.wait_for_function("sel => document.querySelector(sel).width === 1024", arg=h.CANVAS)
        page.wait_for_timeout(1500)
        results["alpha, canvas, 1024x768"] = [
            painted(page, lambda dx=dx: h.drag_alpha(page, dx, steps=1)) for dx in moves
        ]
        results["colormap, canvas, 1024x768"] = [
            painted(page, lambda c=c: h.select(page, "colormap", label=c)) for c in colormaps
        ]
        results["alpha, <img>, 1024x768"] = [
            loaded(page, lambda dx=dx: h.drag_alpha(page, dx, steps=1)) for dx in moves
        ]
        h.select(page, "image", index=0)
        page.wait_for_timeout(1500)
        results["class"] = [
            timed(page, lambda i=i: h.select(page, "class", index=1 + i % 19), True) for i in range(rounds)
        ]
        layers = ["conv_a · 32×32×8", "conv_b · 16×16×16"]
        results["layer (full pass)"] = [
            timed(page, lambda i=i: h.select(page, "layer", label=layers[i % 2]), True) for i in range(rounds)
        ]
    print(f"\nIn Chromium, JupyterLab, a 160x120 image (and a 1024x768 one) and a small CNN; medians of {rounds};")
    print("opacity and colormap from the input event to the repaint, on the page's clock; class and layer from")
    print("the test driver's action to the new status line:")
    for name, times in results.items():
        print(
            f"  {name:26s} {statistics.median(times) * 1e3:7.1f} ms   (min {min(times) * 1e3:.1f}, max {max(times) * 1e3:.1f})"
        )


def update_readme_screenshots() -> None:
    """Run the layout test and copy its screenshots of the explorer and the compare grid to docs/."""
    import shutil

    code = pytest.main([__file__, "-q", "-k", "fits_the_cell"])
    if code != 0:
        sys.exit(code)
    docs = Path(__file__).resolve().parents[1] / "docs"
    docs.mkdir(exist_ok=True)
    for name in ("explorer.png", "compare.png"):
        shutil.copy(ARTIFACTS / name, docs / name)
        print("wrote", docs / name)


if __name__ == "__main__":
    if "--benchmark" in sys.argv:
        benchmark()
    elif "--screenshots" in sys.argv:
        update_readme_screenshots()
    else:
        sys.exit(pytest.main([__file__, "-q"]))
