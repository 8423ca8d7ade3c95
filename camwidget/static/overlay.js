// The explorer's overlay, blended in the browser: (1 - alpha) * picture + alpha * colormap[map].
// The kernel sends the picture and the map (one byte per pixel) when they change; opacity and colormap are
// linked to their controls in the browser (jslink), so moving them repaints here with no kernel round trip.
// Once drawn, the explorer is marked live, and the kernel-drawn <img> (kept for saved notebooks and
// exported HTML, where this module may not load) is hidden by this widget's CSS.

function bytesOf(view) {
  return view ? new Uint8Array(view.buffer, view.byteOffset, view.byteLength) : new Uint8Array(0);
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "camwidget-canvas"; // the <canvas> itself (its widget's box has the class too)
  el.appendChild(canvas);
  let picture = null; // RGBA of the picture, at the map's size
  let pictureToken = 0;
  let draws = 0;

  async function loadPicture() {
    const token = ++pictureToken;
    const [height, width] = model.get("size");
    const data = bytesOf(model.get("picture"));
    if (!data.length || !height || !width) {
      picture = null;
      return;
    }
    const bitmap = await createImageBitmap(new Blob([data], { type: `image/${model.get("picture_format")}` }));
    if (token !== pictureToken) return; // a newer picture arrived meanwhile
    const scratch = document.createElement("canvas");
    scratch.width = width;
    scratch.height = height;
    const context = scratch.getContext("2d", { willReadFrequently: true });
    context.drawImage(bitmap, 0, 0, width, height);
    picture = context.getImageData(0, 0, width, height).data;
    draw();
  }

  function draw() {
    const [height, width] = model.get("size");
    const map = bytesOf(model.get("cam"));
    const names = model.get("colormaps");
    const table = bytesOf(model.get("tables"));
    const which = model.get("colormap_index");
    const ready = picture && picture.length === 4 * height * width && map.length === height * width;
    if (!ready || which < 0 || which >= names.length || table.length < (which + 1) * 768) return;
    const alpha = model.get("alpha");
    const keep = 1 - alpha;
    if (canvas.width !== width || canvas.height !== height) {
      canvas.width = width;
      canvas.height = height;
    }
    const context = canvas.getContext("2d");
    const out = context.createImageData(width, height);
    const pixels = out.data;
    const base = which * 768;
    for (let i = 0, j = 0; i < map.length; i++, j += 4) {
      const k = base + map[i] * 3;
      pixels[j] = keep * picture[j] + alpha * table[k] + 0.5;
      pixels[j + 1] = keep * picture[j + 1] + alpha * table[k + 1] + 0.5;
      pixels[j + 2] = keep * picture[j + 2] + alpha * table[k + 2] + 0.5;
      pixels[j + 3] = 255;
    }
    context.putImageData(out, 0, 0);
    canvas.dataset.draws = String(++draws);
    const explorer = el.closest(".camwidget-explorer");
    if (explorer) explorer.classList.add("camwidget-live");
  }

  model.on("change:picture", loadPicture);
  model.on("change:size", loadPicture);
  model.on("change:cam", draw);
  model.on("change:alpha", draw);
  model.on("change:colormap_index", draw);
  model.on("change:tables", draw);
  loadPicture();
  return () => {
    pictureToken++;
  };
}

export default { render };
