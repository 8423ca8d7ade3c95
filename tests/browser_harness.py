"""Real-browser harness: a JupyterLab (or Voila) server of our own on 127.0.0.1, Debian's Chromium driven by
Playwright, and the helpers the browser tests and the browser benchmark share."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np
from PIL import Image

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
OVERLAY = "img.camwidget-overlay"  # drawn by the kernel: kept for saved state and exported HTML
CANVAS = "canvas.camwidget-canvas"  # drawn in the browser (overlay.js): what a live explorer shows
STATUS = ".camwidget-status"

EXPLORER_SETUP = """
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import numpy as np, keras
import camwidget as cw
keras.utils.set_random_seed(0)
inp = keras.Input((32, 32, 3))
x = keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv_a")(inp)
x = keras.layers.MaxPooling2D(name="pool_a")(x)
x = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv_b")(x)
out = keras.layers.Dense(20, activation="softmax", name="dense")(keras.layers.GlobalAveragePooling2D()(x))
model = keras.Model(inp, out)
rng = np.random.default_rng(0)
pictures = [rng.integers(0, 256, (120, 160, 3), dtype=np.uint8), rng.integers(0, 256, (90, 90, 3), dtype=np.uint8)]
names = [f"thing {i}" for i in range(20)]
"""
EXPLORER_SHOW = "explorer = cw.CAMExplorer(model, pictures, class_names=names)\nexplorer"


def write_notebook(path: Path, extra_cells: tuple[str, ...] = ()) -> Path:
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(EXPLORER_SETUP), nbformat.v4.new_code_cell(EXPLORER_SHOW)]
        + [nbformat.v4.new_code_cell(c) for c in extra_cells]
    )
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str  # base URL, no trailing slash
    token: str
    root: Path

    def page_url(self, path: str) -> str:
        joiner = "&" if "?" in path else "?"
        return f"{self.url}/{path}{joiner}token={self.token}" if self.token else f"{self.url}/{path}"


def _wait_until_up(url: str, process: subprocess.Popen, log: Path, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"server did not answer at {url} within {seconds}s:\n{log.read_text()[-3000:]}")


def _isolated_env(home: Path) -> dict[str, str]:
    env = os.environ.copy()
    for name in ("config", "runtime", "ipython"):
        (home / name).mkdir(parents=True, exist_ok=True)
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        JUPYTER_PLATFORM_DIRS="1",
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    return env


@contextlib.contextmanager
def jupyter_server(root: Path, home: Path) -> Iterator[Server]:
    """JupyterLab (which also serves Notebook 7's pages) on a free port with a token and throwaway
    config, settings and workspace folders; the news notification off."""
    settings = home / "settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    tracker = home / "settings" / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True, exist_ok=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"autoStartDefaultKernel": True}))
    port, token = free_port(), secrets.token_hex(16)
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--LabApp.user_settings_dir={home / 'settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])
    log = home / "jupyter.log"
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=_isolated_env(home), stdout=out, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(f"{url}/api/status?token={token}", process, log)
        yield Server(url, token, root)
    finally:
        _stop(process)


@contextlib.contextmanager
def voila_server(notebook: Path, home: Path) -> Iterator[Server]:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "voila",
        str(notebook),
        "--no-browser",
        f"--port={port}",
        "--Voila.ip=127.0.0.1",
        "--Voila.show_tracebacks=True",
    ]
    log = home / "voila.log"
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, env=_isolated_env(home), stdout=out, stderr=subprocess.STDOUT, cwd=notebook.parent
        )
    try:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url, process, log, seconds=120)
        yield Server(url, "", notebook.parent)
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


HOW_TO_GET_A_BROWSER = "python -m playwright install chromium, or apt-get install chromium"


def find_browser() -> str | None:
    """A Chromium to drive: Playwright's own, Debian's chromium, or Google Chrome; None if there is none."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            own = playwright.chromium.executable_path
        if own and Path(own).exists():
            return own
    except Exception:  # noqa: BLE001 - no Playwright browser, or Playwright cannot start: look further
        pass
    for name in (CHROMIUM, "chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = name if Path(name).exists() else shutil.which(name)
        if found:
            return found
    return None


@contextlib.contextmanager
def chromium_page(width: int = 1400, height: int = 1100):
    executable = find_browser()
    if executable is None:
        raise RuntimeError(f"no browser for the browser tests: {HOW_TO_GET_A_BROWSER}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(120_000)
            yield page
        finally:
            browser.close()


# -- reading and driving the explorer in the page -------------------------------------------------------------


def accept_kernel_dialog(page, wait_ms: int = 4000) -> None:
    """Accept a "Select Kernel" dialog if the front end shows one (its default is the notebook's kernel)."""
    dialog = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        dialog.first.wait_for(state="visible", timeout=wait_ms)
    except Exception:  # no dialog: the kernel started by itself
        return
    dialog.first.click()


def run_all_cells(page) -> None:
    """Run > Run All Cells, through the menu bar (JupyterLab 4 and Notebook 7 share it)."""
    accept_kernel_dialog(page)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()


def wait_for_explorer(page) -> None:
    page.wait_for_selector(OVERLAY, state="attached", timeout=180_000)
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel); return i && i.complete && i.naturalWidth > 0; }",
        arg=OVERLAY,
        timeout=180_000,
    )
    page.locator(".camwidget-explorer").first.scroll_into_view_if_needed()


def overlay_src(page) -> str:
    return page.locator(OVERLAY).first.get_attribute("src") or ""


def overlay_pixels(page) -> np.ndarray:
    """The overlay the kernel drew, as the page holds it (the <img>'s bytes, decoded)."""
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(overlay_png_base64(page)))).convert("RGB"))


def is_live(page) -> bool:
    """Whether the first explorer paints its overlay in the browser (its front end loaded and drew)."""
    return page.evaluate("() => !!document.querySelector('.camwidget-explorer.camwidget-live')")


def canvas_draws(page) -> int:
    return page.evaluate("sel => +((document.querySelector(sel) || {dataset: {}}).dataset.draws || 0)", CANVAS)


def canvas_pixels(page) -> np.ndarray:
    """The overlay as the browser painted it on its canvas."""
    url = page.evaluate("sel => document.querySelector(sel).toDataURL('image/png')", CANVAS)
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def wait_for_canvas(page, draws_before: int, timeout_ms: int = 60_000) -> None:
    """Until the canvas has painted again."""
    page.wait_for_function(
        "([sel, n]) => +((document.querySelector(sel) || {dataset: {}}).dataset.draws || 0) > n",
        arg=[CANVAS, draws_before],
        timeout=timeout_ms,
    )


def pixels_hash(pixels: np.ndarray) -> str:
    return hashlib.sha256(pixels.tobytes()).hexdigest()


def wait_for_repaint(page, old_src: str, timeout_ms: int = 60_000) -> None:
    """Until the overlay shows a new picture (ipywidgets gives each new value a new blob URL) and it loaded."""
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel); return i && i.src !== old && i.complete && i.naturalWidth > 0; }",
        arg=[OVERLAY, old_src],
        timeout=timeout_ms,
    )


def wait_for_status_change(page, old_status: str, timeout_ms: int = 60_000) -> None:
    """Until the status line says something else (a class or layer change always changes it, while the
    overlay can stay pixel-identical, e.g. two classes with no positive evidence)."""
    page.wait_for_function(
        "([sel, old]) => { const s = document.querySelector(sel); return s && s.innerText.replace(/\\u00a0/g, ' ') !== old; }",
        arg=[STATUS, old_status],
        timeout=timeout_ms,
    )


def status_text(page) -> str:
    return page.locator(STATUS).first.inner_text().replace("\xa0", " ")


def select(page, control: str, **option) -> None:
    locator = page.locator(f".camwidget-{control} select").first
    locator.scroll_into_view_if_needed()
    locator.select_option(**option)


def drag_alpha(page, pixels: int, steps: int = 8) -> None:
    handle = page.locator(".camwidget-alpha .noUi-handle").first
    handle.scroll_into_view_if_needed()
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + pixels, y, steps=steps)
    page.mouse.up()


def is_blank(pixels: np.ndarray) -> bool:
    return pixels.size == 0 or float(pixels.std()) < 3.0


# -- nbconvert's HTML export, rendered offline ---------------------------------------------------------------

WIDGET_JS = Path(__file__).resolve().parents[1] / "artifacts" / "widgets-js"


def widget_renderer_js() -> Path:
    """node_modules with the widget renderer that nbconvert's HTML loads from a CDN, installed from the npm
    registry once (into an ignored folder), so that exported pages render without the internet."""
    modules = WIDGET_JS / "node_modules"
    if not (modules / "@jupyter-widgets" / "html-manager" / "dist" / "embed-amd.js").exists():
        WIDGET_JS.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                "npm",
                "install",
                "--silent",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(WIDGET_JS),
                "@jupyter-widgets/html-manager@1",
                "requirejs@2",
            ],
            check=True,
            timeout=600,
        )
    return modules


def serve_cdn_locally(page, modules: Path) -> None:
    """Answer the exported page's CDN requests (require.js, the widget renderer) from local files."""

    def answer(route) -> None:
        url = route.request.url
        if url.startswith("file:"):
            return route.continue_()
        if "require" in url and url.endswith(".js"):
            return route.fulfill(path=str(modules / "requirejs" / "require.js"), content_type="application/javascript")
        if "/@jupyter-widgets/html-manager" in url and "/dist/" in url:
            return route.fulfill(
                path=str(
                    modules / "@jupyter-widgets" / "html-manager" / "dist" / url.split("/dist/", 1)[1].split("?")[0]
                )
            )
        return route.abort()  # anything else (MathJax, fonts) is not needed for the widgets

    page.route("**/*", answer)


def overlay_png_base64(page) -> str:
    """The bytes behind the overlay <img>, as the page holds them, base64-encoded."""
    return page.evaluate(
        """async sel => {
            const img = document.querySelector(sel);
            const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
            let text = ''; for (const b of bytes) text += String.fromCharCode(b);
            return btoa(text);
        }""",
        OVERLAY,
    )
