// The scanner component: the camera (getUserMedia, frames decoded with jsQR on a canvas),
// a photo of a label (decoded the same way), or a code typed by hand. Used by /scan and /work.

import { h, say } from "./dom.js";

const JSQR_SRC = "/static/vendor/jsqr/jsQR.js";
// GB/T 34014 code (24), its cascade-use re-code (19), or a lot id (LOT- + 13).
const CODE = /^(?:[0-9A-Z]{24}|[0-9A-Z]{19}|LOT-[0-9A-Z]{13})$/;
const SCAN_INTERVAL_MS = 150; // decoding every frame would heat a phone for no gain
const MAX_SIDE = 1280; // larger photos are scaled down before decoding

let jsQRLoading = null;

/** Load jsQR once, on first use: pages that never scan never download it. */
function loadJsQR() {
  if (globalThis.jsQR) return Promise.resolve(globalThis.jsQR);
  jsQRLoading ??= new Promise((resolve, reject) => {
    const script = h("script", { src: JSQR_SRC });
    script.addEventListener("load", () => resolve(globalThis.jsQR));
    script.addEventListener("error", () => {
      jsQRLoading = null;
      reject(new Error("The QR decoder could not be loaded. Reload the page and try again."));
    });
    document.head.append(script);
  });
  return jsQRLoading;
}

/**
 * What a scanned or typed text names: {code, signature} for a label URL
 * (`.../p/{code}?s=...`) or a bare code, or null if it is neither.
 */
export function parseScan(text) {
  const trimmed = String(text || "").trim();
  if (/^https?:\/\//i.test(trimmed)) {
    let url;
    try {
      url = new URL(trimmed);
    } catch {
      return null;
    }
    const match = url.pathname.match(/\/p\/([^/]+)$/);
    if (!match) return null;
    const code = decodeURIComponent(match[1]);
    return CODE.test(code) ? { code, signature: url.searchParams.get("s") } : null;
  }
  const code = trimmed.replace(/\s+/g, "").toUpperCase(); // people type spaces and lower case
  return CODE.test(code) ? { code, signature: null } : null;
}

/** The passport address on this service for a scan result (the label signature kept). */
export function passportPath({ code, signature }) {
  const path = `/p/${encodeURIComponent(code)}`;
  return signature ? `${path}?s=${encodeURIComponent(signature)}` : path;
}

function decodeCanvas(jsQR, canvas, context, inversion) {
  const image = context.getImageData(0, 0, canvas.width, canvas.height);
  const found = jsQR(image.data, image.width, image.height, { inversionAttempts: inversion });
  return found ? found.data : null;
}

/**
 * Build the scanner inside `container`. `onResult({code, signature})` is called with
 * each code found; `action` names what happens next (the typed-code button's text).
 */
export function mountScanner(container, { onResult, action = "Open passport", idPrefix = "scan" }) {
  const message = h("p", { class: "message", role: "status", "aria-live": "polite", hidden: true });
  const video = h("video", { playsinline: true, muted: true, "aria-label": "Camera view" });
  const canvas = h("canvas", { hidden: true });
  const context = canvas.getContext("2d", { willReadFrequently: true });
  const start = h("button", { type: "button", class: "primary" }, "Scan with the camera");
  const stop = h("button", { type: "button", hidden: true }, "Stop the camera");
  const viewfinder = h("div", { class: "viewfinder", hidden: true }, video);
  const fileId = `${idPrefix}-photo`;
  const codeId = `${idPrefix}-code`;
  const hintId = `${idPrefix}-code-hint`;
  const file = h("input", { type: "file", id: fileId, accept: "image/*" });
  const typed = h("input", {
    id: codeId, name: "code", autocomplete: "off", autocapitalize: "characters",
    spellcheck: "false", "aria-describedby": hintId, inputmode: "text",
  });
  const form = h(
    "form",
    { class: "typed", novalidate: true },
    h("label", { for: codeId }, "Battery code or lot id"),
    h("p", { id: hintId, class: "hint" },
      "24 characters as printed under the label (19 for a re-used pack), or a lot id such as LOT-NFCB6HGGNV6JT."),
    h("div", { class: "row" }, typed, h("button", { type: "submit" }, action)),
  );
  container.replaceChildren(
    h("div", { class: "scanner" },
      h("div", { class: "row" }, start, stop),
      viewfinder,
      h("div", { class: "upload" },
        h("label", { for: fileId }, "Or choose a photo of the label"),
        file),
      form,
      message,
      canvas),
  );

  let stream = null;
  let timer = null;

  function found(result) {
    stopCamera();
    say(message, `Found ${result.code}.`, "ok");
    onResult(result);
  }

  function stopCamera() {
    if (timer) clearTimeout(timer);
    timer = null;
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    video.srcObject = null;
    viewfinder.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  }

  async function tick(jsQR) {
    if (!stream) return;
    if (video.readyState >= video.HAVE_ENOUGH_DATA && video.videoWidth) {
      const scale = Math.min(1, MAX_SIDE / Math.max(video.videoWidth, video.videoHeight));
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      context.drawImage(video, 0, 0, canvas.width, canvas.height);
      const text = decodeCanvas(jsQR, canvas, context, "dontInvert");
      if (text) {
        const result = parseScan(text);
        if (result) return found(result);
        say(message, "That QR code is not a battery label of this service. Try another one.", "error");
      }
    }
    timer = setTimeout(() => tick(jsQR), SCAN_INTERVAL_MS);
  }

  start.addEventListener("click", async () => {
    if (!navigator.mediaDevices?.getUserMedia) {
      say(message, "The camera works only over a secure (https) connection. Choose a photo or type the code instead.", "error");
      return;
    }
    say(message, "Starting the camera…", "info");
    try {
      const jsQR = await loadJsQR();
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: "environment" } },
        audio: false,
      });
      video.srcObject = stream;
      await video.play();
      viewfinder.hidden = false;
      start.hidden = true;
      stop.hidden = false;
      stop.focus();
      say(message, "Point the camera at the QR code on the battery's label.", "info");
      tick(jsQR);
    } catch (error) {
      stopCamera();
      const why = {
        NotAllowedError: "Camera access was refused. Allow the camera for this site, or choose a photo or type the code instead.",
        NotFoundError: "No camera was found. Choose a photo or type the code instead.",
        NotReadableError: "The camera is in use by another application. Close it and try again.",
      }[error?.name];
      say(message, why || error.message || "The camera could not be started.", "error");
    }
  });

  stop.addEventListener("click", () => {
    stopCamera();
    say(message, "Camera stopped.", "info");
    start.focus();
  });

  file.addEventListener("change", async () => {
    const chosen = file.files?.[0];
    if (!chosen) return;
    say(message, "Reading the photo…", "info");
    try {
      const jsQR = await loadJsQR();
      const bitmap = await createImageBitmap(chosen);
      const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      canvas.width = Math.round(bitmap.width * scale);
      canvas.height = Math.round(bitmap.height * scale);
      // White first: a transparent PNG would otherwise decode as black on black.
      context.fillStyle = "#fff";
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      const text = decodeCanvas(jsQR, canvas, context, "attemptBoth");
      if (!text) {
        say(message, "No QR code was found in that photo. Try a sharper photo, taken closer to the label.", "error");
        return;
      }
      const result = parseScan(text);
      if (!result) {
        say(message, "That QR code is not a battery label of this service.", "error");
        return;
      }
      found(result);
    } catch (error) {
      say(message, error?.message?.startsWith("The QR") ? error.message : "That file could not be read as an image.", "error");
    } finally {
      file.value = "";
    }
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const result = parseScan(typed.value);
    if (!result) {
      typed.setAttribute("aria-invalid", "true");
      say(message, "That is not a battery code or lot id: check the characters printed under the label.", "error");
      typed.focus();
      return;
    }
    typed.removeAttribute("aria-invalid");
    found(result);
  });

  // A camera left running in a background tab drains the battery.
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) stopCamera();
  });

  return { stop: stopCamera, setCode: (code) => { typed.value = code; } };
}
