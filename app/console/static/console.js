/* Chorus console. Vanilla JS, no build step, no third-party code.
 *
 * Every piece of API data reaches the page through textContent or element properties,
 * never as markup. The JWT lives in sessionStorage (this tab only).
 */
"use strict";

(() => {
  const TOKEN_KEY = "chorus.console.jwt";
  const VOICES_PAGE = 12;
  const LEDGER_PAGE = 15;
  const POLL_MS = 1200;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  /* ---------- small helpers ---------- */

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null) continue;
        if (key === "text") node.textContent = String(value);
        else if (key === "className") node.className = value;
        else if (key === "dataset") Object.assign(node.dataset, value);
        else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
        else node[key] = value;
      }
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    return node;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function utf8Length(text) {
    return new TextEncoder().encode(text).length;
  }

  function formatNumber(value) {
    if (typeof value !== "number") return value === undefined || value === null ? "—" : String(value);
    return value.toLocaleString(undefined, { maximumFractionDigits: 2 });
  }

  function formatDate(value) {
    if (!value) return "—";
    const date = new Date(value);
    return Number.isNaN(date.getTime()) ? String(value) : date.toLocaleString();
  }

  let toastTimer = null;
  function toast(message, bad = false) {
    const box = $("toast");
    box.textContent = message;
    box.classList.toggle("bad", bad);
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 5000);
  }

  /* ---------- API access ---------- */

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  // Each family words its errors differently: {detail}, {detail: {message}}, {error}, {error: {message}}.
  function errorText(body, status) {
    const pick = (value) => {
      if (!value) return null;
      if (typeof value === "string") return value;
      if (Array.isArray(value)) return value.map((v) => pick(v) || "").filter(Boolean).join("; ");
      if (typeof value === "object") return pick(value.message) || pick(value.msg) || pick(value.error);
      return String(value);
    };
    if (body && typeof body === "object") {
      const found = pick(body.detail) || pick(body.error) || pick(body.message);
      if (found) return found;
    } else if (typeof body === "string" && body.trim()) {
      return body.trim().slice(0, 300);
    }
    return `Request failed (HTTP ${status})`;
  }

  async function readBody(response) {
    const type = response.headers.get("content-type") || "";
    if (response.status === 204) return null;
    if (type.includes("json")) {
      try { return await response.json(); } catch { return null; }
    }
    return response.text();
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY);

  async function api(path, { method = "GET", json, form, query, raw = false } = {}) {
    const headers = {};
    const jwt = token();
    if (jwt) headers.Authorization = `Bearer ${jwt}`;
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form) {
      body = form;
    }
    let url = path;
    if (query) {
      const params = new URLSearchParams();
      for (const [key, value] of Object.entries(query)) {
        if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
      }
      const qs = params.toString();
      if (qs) url += `?${qs}`;
    }
    let response;
    try {
      response = await fetch(url, { method, headers, body, credentials: "omit", cache: "no-store" });
    } catch (exc) {
      throw new ApiError(0, "The server could not be reached.");
    }
    if (response.status === 401 && jwt) {
      signOut("Your session has ended. Sign in again.");
      throw new ApiError(401, "Not signed in");
    }
    if (raw && response.ok) return response;
    const data = await readBody(response);
    if (!response.ok) throw new ApiError(response.status, errorText(data, response.status));
    return data;
  }

  /* ---------- sign-in ---------- */

  async function signIn(event) {
    event.preventDefault();
    const key = $("api-key").value.trim();
    const error = $("signin-error");
    error.textContent = "";
    if (!key) return;
    $("signin-submit").disabled = true;
    try {
      const response = await fetch("/api/v1/auth/token", {
        method: "POST", headers: { "X-API-Key": key }, credentials: "omit", cache: "no-store",
      });
      const data = await readBody(response);
      if (response.status === 401) throw new ApiError(401, "That API key was not accepted.");
      if (!response.ok || !data || !data.access_token) throw new ApiError(response.status, errorText(data, response.status));
      sessionStorage.setItem(TOKEN_KEY, data.access_token);
      $("api-key").value = "";
      showApp();
    } catch (exc) {
      error.textContent = exc.message || "Sign-in failed.";
    } finally {
      $("signin-submit").disabled = false;
    }
  }

  function signOut(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    clonePoll.cancel();
    speakRun += 1;
    $("app").hidden = true;
    $("signin").hidden = false;
    $("signin-error").textContent = message || "";
    $("api-key").focus();
  }

  function showApp() {
    $("signin").hidden = true;
    $("app").hidden = false;
    route();
  }

  /* ---------- navigation ---------- */

  const VIEWS = ["voices", "clone", "speak", "credits"];
  const loaders = {};

  function route() {
    if (!token()) {
      signOut();
      return;
    }
    const name = VIEWS.includes(location.hash.slice(1)) ? location.hash.slice(1) : "voices";
    for (const view of VIEWS) $(`view-${view}`).hidden = view !== name;
    for (const link of document.querySelectorAll(".sidebar a")) {
      link.classList.toggle("active", link.dataset.view === name);
      if (link.dataset.view === name) link.setAttribute("aria-current", "page");
      else link.removeAttribute("aria-current");
    }
    document.title = `${name[0].toUpperCase()}${name.slice(1)} · Chorus console`;
    loaders[name]().catch((exc) => {
      if (exc.status !== 401) toast(exc.message, true);
    });
  }

  function goSpeak(voiceId) {
    speakState.preferred = voiceId;
    if (location.hash === "#speak") route();
    else location.hash = "#speak";
  }

  /* ---------- audio ---------- */

  // Marks each <audio> as loaded for people and tests alike (data-state: loading|loaded|error).
  function watchAudio(audio) {
    audio.addEventListener("loadeddata", () => { audio.dataset.state = "loaded"; });
    audio.addEventListener("error", () => {
      if (audio.getAttribute("src")) audio.dataset.state = "error";
    });
  }

  function playAudio(audio, src) {
    audio.dataset.state = "loading";
    audio.src = src;
    audio.load();
    const played = audio.play();
    if (played) played.catch(() => { /* autoplay refused: the controls are there */ });
  }

  /* ---------- voices ---------- */

  const voicesState = { skip: 0, total: 0, filters: {} };

  function badge(text, extra) {
    return el("span", { className: `badge ${extra || text || ""}`, text: text || "—" });
  }

  async function loadVoices() {
    const data = await api("/api/v1/voice/voice-profiles", {
      query: { ...voicesState.filters, skip: voicesState.skip, limit: VOICES_PAGE },
    });
    const voices = Array.isArray(data.voices) ? data.voices : [];
    voicesState.total = Number(data.total) || 0;
    const body = $("voices-body");
    body.replaceChildren(...voices.map(voiceRow));
    $("voices-empty").hidden = voices.length > 0;
    const first = voices.length ? voicesState.skip + 1 : 0;
    const last = voicesState.skip + voices.length;
    $("voices-summary").textContent = `${first}–${last} of ${voicesState.total}`;
    $("voices-prev").disabled = voicesState.skip === 0;
    $("voices-next").disabled = !data.hasMore;
  }
  loaders.voices = loadVoices;

  function voiceRow(voice) {
    const ready = voice.status === "COMPLETED";
    const name = el("td", null,
      el("div", { className: "voice-name", text: voice.name || voice.voice_id }),
      voice.description ? el("div", { className: "voice-desc", text: voice.description }) : null);
    const actions = el("td", { className: "actions" },
      el("button", {
        type: "button", className: "small", text: "Preview", disabled: !ready,
        dataset: { action: "preview", voiceId: voice.voice_id },
        onclick: () => previewVoice(voice),
      }),
      el("button", {
        type: "button", className: "small", text: "Speak", disabled: !ready,
        dataset: { action: "speak", voiceId: voice.voice_id },
        onclick: () => goSpeak(voice.voice_id),
      }));
    return el("tr", { dataset: { voiceId: voice.voice_id } },
      name,
      el("td", null, badge(voice.voice_type === "CUSTOM" ? "Custom" : "Built-in", voice.voice_type)),
      el("td", { text: voice.gender || "—" }),
      el("td", { text: voice.language || "—" }),
      el("td", null, badge(voice.status)),
      actions);
  }

  async function previewVoice(voice) {
    const label = $("preview-label");
    label.textContent = `Loading preview of ${voice.name}…`;
    try {
      const data = await api(`/api/v1/voice/voice-profiles/${encodeURIComponent(voice.voice_id)}/preview`);
      label.textContent = data.text ? `${voice.name}: “${data.text}”` : voice.name;
      playAudio($("preview-audio"), data.audio_url);
    } catch (exc) {
      label.textContent = `No preview for ${voice.name}: ${exc.message}`;
    }
  }

  function applyFilters(event) {
    event.preventDefault();
    voicesState.filters = {
      keyword: $("filter-keyword").value.trim(),
      gender: $("filter-gender").value,
      language: $("filter-language").value.trim(),
      voice_type: $("filter-type").value,
    };
    voicesState.skip = 0;
    loadVoices().catch((exc) => toast(exc.message, true));
  }

  function pageVoices(step) {
    voicesState.skip = Math.max(0, voicesState.skip + step * VOICES_PAGE);
    loadVoices().catch((exc) => toast(exc.message, true));
  }

  /* ---------- clone ---------- */

  const recordings = []; // {blob, url}
  let recorder = null;
  let recordTimer = null;

  const clonePoll = {
    run: 0,
    cancel() { this.run += 1; },
  };

  loaders.clone = async () => {};

  function renderRecordings() {
    const list = $("rec-list");
    list.replaceChildren(...recordings.map((rec, index) => el("li", null,
      el("span", { className: "muted", text: `Sample ${index + 1}` }),
      el("audio", { controls: true, src: rec.url }),
      el("button", {
        type: "button", className: "small", text: "Remove",
        onclick: () => {
          URL.revokeObjectURL(rec.url);
          recordings.splice(index, 1);
          renderRecordings();
        },
      }))));
    $("rec-start").disabled = recorder !== null || recordings.length >= 5;
  }

  function pickRecordingType() {
    for (const type of ["audio/webm;codecs=opus", "audio/webm", "audio/ogg;codecs=opus"]) {
      if (window.MediaRecorder && MediaRecorder.isTypeSupported(type)) return type;
    }
    return "";
  }

  async function startRecording() {
    $("clone-form-error").textContent = "";
    if (!navigator.mediaDevices || !window.MediaRecorder) {
      $("clone-form-error").textContent = "This browser cannot record audio here (a secure origin is needed).";
      return;
    }
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (exc) {
      $("clone-form-error").textContent = `No microphone: ${exc.message || exc.name}`;
      return;
    }
    const mimeType = pickRecordingType();
    const chunks = [];
    recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
    recorder.addEventListener("dataavailable", (event) => {
      if (event.data && event.data.size) chunks.push(event.data);
    });
    recorder.addEventListener("stop", () => {
      stream.getTracks().forEach((track) => track.stop());
      clearInterval(recordTimer);
      $("rec-timer").textContent = "";
      const blob = new Blob(chunks, { type: recorder.mimeType || mimeType || "audio/webm" });
      recorder = null;
      if (blob.size) recordings.push({ blob, url: URL.createObjectURL(blob) });
      $("rec-stop").disabled = true;
      renderRecordings();
    });
    const started = Date.now();
    recorder.start(250);
    recordTimer = setInterval(() => {
      $("rec-timer").textContent = `Recording… ${Math.round((Date.now() - started) / 1000)} s`;
    }, 250);
    $("rec-start").disabled = true;
    $("rec-stop").disabled = false;
  }

  function stopRecording() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
  }

  function extensionFor(type) {
    if (type.includes("ogg")) return "ogg";
    if (type.includes("mp4")) return "m4a";
    return "webm";
  }

  async function submitClone(event) {
    event.preventDefault();
    const error = $("clone-form-error");
    error.textContent = "";
    const name = $("clone-name").value.trim();
    const files = [];
    const upload = $("clone-file").files[0];
    if (upload) files.push({ blob: upload, filename: upload.name });
    recordings.forEach((rec, index) => {
      files.push({ blob: rec.blob, filename: `sample-${index + 1}.${extensionFor(rec.blob.type)}` });
    });
    if (!name) { error.textContent = "Give the voice a name."; return; }
    if (!files.length) { error.textContent = "Upload a file or record a sample first."; return; }
    if (files.length > 5) { error.textContent = "Send at most 5 samples."; return; }

    const form = new FormData();
    form.append("name", name);
    const description = $("clone-description").value.trim();
    if (description) form.append("description", description);
    form.append("denoise", $("clone-denoise").checked ? "true" : "false");
    const field = files.length === 1 ? "file" : "voice_files";
    for (const file of files) form.append(field, file.blob, file.filename);
    const path = files.length === 1 ? "/api/v1/voice/voice-profiles" : "/api/v1/voice/voice-profiles/multi-sample";

    $("clone-submit").disabled = true;
    try {
      const voice = await api(path, { method: "POST", form });
      // Sent: clear the samples so the next clone starts afresh.
      for (const rec of recordings.splice(0)) URL.revokeObjectURL(rec.url);
      renderRecordings();
      $("clone-file").value = "";
      showCloneStatus(voice);
      pollClone(voice.voice_id);
    } catch (exc) {
      error.textContent = exc.message;
    } finally {
      $("clone-submit").disabled = false;
    }
  }

  function showCloneStatus(voice) {
    $("clone-result").hidden = false;
    $("clone-result-name").textContent = voice.name || "Your voice";
    $("clone-voice-id").textContent = voice.voice_id || "";
    const status = $("clone-status");
    status.textContent = voice.status || "—";
    status.className = `badge ${voice.status || ""}`;
    const similarity = voice.quality && typeof voice.quality.similarity === "number" ? voice.quality.similarity : null;
    $("clone-similarity").textContent = similarity === null ? "—" : similarity.toFixed(2);
    $("clone-error").textContent = voice.status === "FAILED" ? (voice.error_message || "Cloning failed.") : "";
    const speak = $("clone-speak");
    speak.hidden = voice.status !== "COMPLETED";
    speak.dataset.voiceId = voice.voice_id || "";
  }

  async function pollClone(voiceId) {
    clonePoll.cancel();
    const run = clonePoll.run;
    while (run === clonePoll.run) {
      await sleep(POLL_MS);
      if (run !== clonePoll.run) return;
      let voice;
      try {
        voice = await api(`/api/v1/voice/voices/${encodeURIComponent(voiceId)}/status`);
      } catch (exc) {
        if (exc.status === 401) return;
        $("clone-error").textContent = `Status check failed: ${exc.message}`;
        continue;
      }
      if (run !== clonePoll.run) return;
      showCloneStatus(voice);
      if (voice.status === "COMPLETED" || voice.status === "FAILED") {
        toast(voice.status === "COMPLETED" ? `${voice.name} is ready.` : `${voice.name} failed.`, voice.status === "FAILED");
        return;
      }
    }
  }

  /* ---------- speak ---------- */

  const speakState = { preferred: null, objectUrls: [] };
  let speakRun = 0;

  async function fetchAllVoices() {
    const all = [];
    for (let skip = 0, page = 0; page < 10; page += 1, skip += 50) {
      const data = await api("/api/v1/voice/voice-profiles", { query: { skip, limit: 50 } });
      const voices = Array.isArray(data.voices) ? data.voices : [];
      all.push(...voices);
      if (!data.hasMore || !voices.length) break;
    }
    return all;
  }

  loaders.speak = async () => {
    const select = $("speak-voice");
    const wanted = speakState.preferred || select.value;
    const voices = (await fetchAllVoices()).filter((v) => v.status === "COMPLETED");
    const custom = voices.filter((v) => v.voice_type === "CUSTOM");
    const builtin = voices.filter((v) => v.voice_type !== "CUSTOM");
    const option = (v) => el("option", {
      value: v.voice_id, text: [v.name, v.language, v.gender].filter(Boolean).join(" · "),
    });
    const groups = [];
    if (custom.length) groups.push(el("optgroup", { label: "Your voices" }, ...custom.map(option)));
    if (builtin.length) groups.push(el("optgroup", { label: "Built-in" }, ...builtin.map(option)));
    select.replaceChildren(...groups);
    if (wanted && voices.some((v) => v.voice_id === wanted)) select.value = wanted;
    speakState.preferred = null;
    updateCount();
  };

  function updateCount() {
    const text = $("speak-text").value;
    $("speak-count").textContent = String(text.length);
    $("speak-cost").textContent = formatNumber(utf8Length(text));
  }

  function speakMode() {
    const checked = document.querySelector('input[name="speak-mode"]:checked');
    return checked ? checked.value : "stream";
  }

  function setSpeakStatus(text) {
    $("speak-status").textContent = text;
  }

  function offerDownload(href, filename) {
    const link = $("speak-download");
    link.href = href;
    link.download = filename;
    link.textContent = `Download ${filename}`;
    link.hidden = false;
  }

  function resetSpeakOutput() {
    for (const url of speakState.objectUrls.splice(0)) URL.revokeObjectURL(url);
    const audio = $("speak-audio");
    audio.pause();
    audio.removeAttribute("src");
    audio.dataset.state = "";
    audio.dataset.delivery = "";
    audio.load();
    $("speak-download").hidden = true;
    transcript.reset();
  }

  /* The words of the clip under #speak-audio: one span per word, `current` on the word being said
   * (its [start, end) holds audio.currentTime, or it just ended and the next has not begun), `spoken`
   * on those before it; a click seeks to the word. Kept in step by timeupdate/seeking and, while
   * playing, every animation frame. */
  const transcript = {
    words: [], // {start, end, node}, in order
    spoken: -1, // how many words are marked said (-1: none marked yet)
    current: -2, // index of the highlighted word, -1: none
    frame: 0,
    // Seeking lands a hair before the asked time (microsecond media clocks): 10 ms of lead.
    LEAD_S: 0.01,
    // A word stays lit through a short silence before the next one (no flicker between words).
    BRIDGE_S: 0.15,

    reset() {
      this.stop();
      this.words = [];
      this.spoken = -1;
      this.current = -2;
      const box = $("speak-words");
      box.replaceChildren();
      box.hidden = true;
    },

    add(words) {
      if (!Array.isArray(words)) return;
      const box = $("speak-words");
      for (const word of words) {
        const start = Number(word && word.start);
        const end = Number(word && word.end);
        if (!word || typeof word.word !== "string" || !Number.isFinite(start) || !Number.isFinite(end)) continue;
        const node = el("span", {
          className: "word", text: word.word, dataset: { start: String(start), end: String(end) },
        });
        if (this.words.length) box.append(" ");
        box.append(node);
        this.words.push({ start, end: Math.max(start, end), node });
      }
      box.hidden = this.words.length === 0;
      this.spoken = -1; // the new words take their classes at the next sync
      this.sync();
    },

    sync() {
      const words = this.words;
      if (!words.length) return;
      const t = $("speak-audio").currentTime + this.LEAD_S;
      // Words are in order and do not overlap: the first `spoken` ones end at or before t.
      let lo = 0;
      let hi = words.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (words[mid].end <= t) lo = mid + 1;
        else hi = mid;
      }
      let current = -1;
      if (lo < words.length && words[lo].start <= t) current = lo;
      else if (lo > 0 && t < words[lo - 1].end + this.BRIDGE_S) current = lo - 1;
      const spoken = current >= 0 ? current : lo; // the words before the lit one
      if (spoken === this.spoken && current === this.current) return;
      const from = Math.min(spoken, this.spoken < 0 ? 0 : this.spoken);
      const to = this.spoken < 0 ? words.length : Math.max(spoken, this.spoken);
      for (let i = from; i < to; i += 1) words[i].node.classList.toggle("spoken", i < spoken);
      if (this.current >= 0 && this.current < words.length) words[this.current].node.classList.remove("current");
      if (current >= 0) {
        const node = words[current].node;
        node.classList.add("current");
        // A long transcript scrolls in its own box (never the page) to keep the word in view.
        const box = node.parentNode;
        if (box.scrollHeight > box.clientHeight
          && (node.offsetTop < box.scrollTop || node.offsetTop + node.offsetHeight > box.scrollTop + box.clientHeight)) {
          box.scrollTop = Math.max(0, node.offsetTop - box.clientHeight / 3);
        }
      }
      this.spoken = spoken;
      this.current = current;
    },

    start() {
      if (this.frame) return;
      const tick = () => {
        this.sync();
        this.frame = requestAnimationFrame(tick);
      };
      this.frame = requestAnimationFrame(tick);
    },

    stop() {
      if (this.frame) cancelAnimationFrame(this.frame);
      this.frame = 0;
    },

    seekTo(event) {
      const node = event.target.closest && event.target.closest(".word");
      const word = node && this.words.find((w) => w.node === node);
      if (!word) return;
      const audio = $("speak-audio");
      if (!audio.getAttribute("src")) return;
      audio.currentTime = word.start;
      this.sync();
    },
  };

  function watchTranscript(audio) {
    audio.addEventListener("play", () => transcript.start());
    for (const name of ["pause", "ended", "emptied"]) audio.addEventListener(name, () => transcript.stop());
    for (const name of ["timeupdate", "seeking", "seeked", "pause", "ended"]) {
      audio.addEventListener(name, () => transcript.sync());
    }
    $("speak-words").addEventListener("click", (event) => transcript.seekTo(event));
  }

  // The body of a response, chunk by chunk; leaving the loop early cancels the download.
  async function* responseChunks(response) {
    if (!response.body) {
      yield new Uint8Array(await response.arrayBuffer());
      return;
    }
    const reader = response.body.getReader();
    let finished = false;
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) { finished = true; return; }
        yield value;
      }
    } finally {
      if (!finished) reader.cancel().catch(() => {});
    }
  }

  // Server-sent events as parsed JSON (their `data:` lines).
  async function* sseEvents(chunks) {
    const decoder = new TextDecoder();
    let buffer = "";
    const parse = (block) => {
      const data = block.split("\n")
        .filter((line) => line.startsWith("data:"))
        .map((line) => line.slice(line.startsWith("data: ") ? 6 : 5))
        .join("\n");
      if (!data || data === "[DONE]") return null;
      try { return JSON.parse(data); } catch { return null; }
    };
    for await (const chunk of chunks) {
      buffer += decoder.decode(chunk, { stream: true }).replace(/\r/g, "");
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = parse(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        if (event) yield event;
      }
    }
    const last = parse(buffer + decoder.decode().replace(/\r/g, ""));
    if (last) yield last;
  }

  function base64Bytes(text) {
    const binary = atob(text);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  // The audio of /v1/audio/speech's SSE events (speech.audio.delta); its words go to onWords.
  async function* speechEventAudio(chunks, onWords) {
    for await (const event of sseEvents(chunks)) {
      if (!event || typeof event !== "object") continue;
      if (event.type === "speech.audio.delta" && typeof event.audio === "string") {
        if (event.audio) yield base64Bytes(event.audio);
      } else if (event.type === "speech.audio.words") {
        onWords(event.words);
      } else if (event.type === "error") {
        throw new ApiError(0, errorText(event, 0));
      }
    }
  }

  function objectUrl(source) {
    const url = URL.createObjectURL(source);
    speakState.objectUrls.push(url);
    return url;
  }

  // Plays MP3 as it arrives through Media Source Extensions; falls back to one Blob at the end.
  // `source`: the audio bytes as they come (an async iterable of Uint8Array).
  async function playStream(source, audio, mime, run) {
    const chunks = [];
    let sourceBuffer = null;
    let mediaSource = null;
    let streaming = Boolean(window.MediaSource && MediaSource.isTypeSupported(mime));
    if (streaming) {
      mediaSource = new MediaSource();
      audio.dataset.state = "loading";
      audio.src = objectUrl(mediaSource);
      try {
        await new Promise((resolve, reject) => {
          mediaSource.addEventListener("sourceopen", resolve, { once: true });
          setTimeout(() => reject(new Error("MediaSource did not open")), 5000);
        });
        sourceBuffer = mediaSource.addSourceBuffer(mime);
      } catch {
        streaming = false;
      }
    }
    const append = (chunk) => new Promise((resolve, reject) => {
      const done = () => { cleanup(); resolve(); };
      const fail = () => { cleanup(); reject(new Error("append failed")); };
      const cleanup = () => {
        sourceBuffer.removeEventListener("updateend", done);
        sourceBuffer.removeEventListener("error", fail);
      };
      sourceBuffer.addEventListener("updateend", done);
      sourceBuffer.addEventListener("error", fail);
      sourceBuffer.appendBuffer(chunk);
    });
    let received = 0;
    let started = false;
    for await (const value of source) {
      if (run !== speakRun) return null; // leaving the loop cancels the download
      chunks.push(value);
      received += value.byteLength;
      setSpeakStatus(`Receiving audio… ${formatNumber(Math.round(received / 1024))} KB`);
      if (streaming) {
        try {
          await append(value);
          if (!started) {
            started = true;
            audio.play().catch(() => {});
          }
        } catch {
          streaming = false; // keep reading; the whole file plays from a Blob below
        }
      }
    }
    const blob = new Blob(chunks, { type: mime });
    if (streaming && mediaSource.readyState === "open") {
      try {
        mediaSource.endOfStream();
      } catch {
        streaming = false;
      }
    }
    if (!streaming) playAudio(audio, objectUrl(blob));
    audio.dataset.delivery = streaming ? "stream" : "whole";
    return blob;
  }

  async function speakNow(voiceId, text, run) {
    const audio = $("speak-audio");
    setSpeakStatus("Synthesizing…");
    let response;
    try {
      response = await api("/v1/audio/speech", {
        method: "POST", raw: true,
        json: { model: "tts-1", input: text, voice: voiceId, response_format: "mp3", stream_format: "sse" },
      });
    } catch (exc) {
      // No speech route on this server: the native job route does the same work, just not live.
      if (exc.status === 404 || exc.status === 405) {
        return speakJob(voiceId, text, "mp3", run, "Streaming is not available here; using a background job…");
      }
      throw exc;
    }
    // SSE: base64 MP3 in speech.audio.delta events, each followed by the words it finished saying.
    // A server that ignores stream_format answers plain audio (and no words).
    const type = response.headers.get("content-type") || "";
    const sse = type.includes("text/event-stream");
    const mime = sse ? "audio/mpeg" : type.split(";")[0].trim() || "audio/mpeg";
    const onWords = (words) => { if (run === speakRun) transcript.add(words); };
    const source = sse ? speechEventAudio(responseChunks(response), onWords) : responseChunks(response);
    const blob = await playStream(source, audio, mime, run);
    if (run !== speakRun || !blob) return;
    offerDownload(objectUrl(blob), "speech.mp3");
    setSpeakStatus(`Done: ${formatNumber(Math.round(blob.size / 1024))} KB of audio.`);
  }

  async function speakJob(voiceId, text, format, run, note) {
    setSpeakStatus(note || "Queued…");
    const job = await api(`/api/v1/voice/voices/${encodeURIComponent(voiceId)}/generate`, {
      method: "POST", json: { input_text: text, audio_format: format },
    });
    const jobId = job.job_id || job.id;
    for (;;) {
      await sleep(POLL_MS);
      if (run !== speakRun) return;
      const state = await api(`/api/v1/voice/tts-jobs/${encodeURIComponent(jobId)}/status`);
      if (run !== speakRun) return;
      if (state.status === "completed") {
        if (!state.output_url) throw new Error("The job finished without audio.");
        $("speak-audio").dataset.delivery = "job";
        playAudio($("speak-audio"), state.output_url);
        offerDownload(state.output_url, `speech.${state.audio_format || format}`);
        const seconds = typeof state.duration === "number" ? ` (${state.duration.toFixed(1)} s)` : "";
        setSpeakStatus(`Done${seconds}. Job ${jobId}.`);
        await showJobWords(jobId, run);
        return;
      }
      if (state.status === "failed") throw new Error(state.error_message || "The job failed.");
      const progress = typeof state.progress === "number" ? ` ${state.progress}%` : "";
      setSpeakStatus(`Job ${jobId}: ${state.status}${progress}`);
    }
  }

  // The words of a completed job, timed by the engine that spoke them (none on older jobs).
  async function showJobWords(jobId, run) {
    let captions;
    try {
      captions = await api(`/api/v1/voice/tts-jobs/${encodeURIComponent(jobId)}/captions`, {
        query: { format: "json" },
      });
    } catch {
      return; // the audio plays all the same
    }
    if (run === speakRun && captions) transcript.add(captions.words);
  }

  async function submitSpeak(event) {
    event.preventDefault();
    const voiceId = $("speak-voice").value;
    const text = $("speak-text").value;
    if (!voiceId) { setSpeakStatus("Pick a voice first."); return; }
    if (!text.trim()) { setSpeakStatus("Type some text first."); return; }
    speakRun += 1;
    const run = speakRun;
    resetSpeakOutput();
    $("speak-submit").disabled = true;
    try {
      if (speakMode() === "job") await speakJob(voiceId, text, $("speak-format").value, run);
      else await speakNow(voiceId, text, run);
    } catch (exc) {
      if (run === speakRun && exc.status !== 401) setSpeakStatus(`Failed: ${exc.message}`);
    } finally {
      if (run === speakRun) $("speak-submit").disabled = false;
    }
  }

  /* ---------- credits ---------- */

  const ledgerState = { skip: 0 };

  loaders.credits = async () => {
    const results = await Promise.allSettled([loadBalance(), loadUsageChart(), loadLedger()]);
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw failed.reason;
  };

  async function loadBalance() {
    const data = await api("/api/v1/credits");
    const breakdown = data.breakdown || {};
    $("credits-available").textContent = formatNumber(data.credits);
    $("credits-regular").textContent = formatNumber(breakdown.regular);
    $("credits-permanent").textContent = formatNumber(breakdown.permanent);
    $("credits-held").textContent = formatNumber(breakdown.held ?? 0);
    $("credits-reset").textContent = formatDate(breakdown.resetAt);
  }

  let usageData = null;

  async function loadUsageChart() {
    usageData = await api("/api/v1/voice/analytics/usage", { query: { period: $("usage-period").value } });
    drawUsage();
  }

  function drawUsage() {
    const box = $("usage-chart");
    const data = usageData || {};
    const days = Array.isArray(data.daily_breakdown) ? data.daily_breakdown : [];
    const metric = $("usage-metric").value;
    $("usage-totals").textContent = [
      `${formatNumber(data.total_generations ?? 0)} generations`,
      `${formatNumber(data.total_characters ?? 0)} characters`,
      `${formatNumber(Math.round(Number(data.total_duration) || 0))} s of audio`,
    ].join(" · ");

    const width = 760;
    const height = 220;
    const pad = { left: 44, right: 8, top: 12, bottom: 28 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const values = days.map((d) => Math.max(0, Number(d[metric]) || 0));
    const max = Math.max(0, ...values);
    const chart = svg("svg", {
      viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `Daily ${metric}`, id: "usage-svg",
    });
    chart.append(svg("line", {
      class: "axis", x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH,
    }));
    const label = (x, y, text, anchor) => {
      const node = svg("text", { x, y, "text-anchor": anchor || "middle" });
      node.textContent = text;
      return node;
    };
    chart.append(label(pad.left - 6, pad.top + 10, formatNumber(max), "end"));
    chart.append(label(pad.left - 6, pad.top + plotH, "0", "end"));
    if (days.length) {
      const slot = plotW / days.length;
      const barW = Math.max(1, slot * 0.7);
      days.forEach((day, i) => {
        const h = max > 0 ? (values[i] / max) * plotH : 0;
        const x = pad.left + i * slot + (slot - barW) / 2;
        const bar = svg("rect", {
          class: "bar", x: x.toFixed(1), y: (pad.top + plotH - h).toFixed(1),
          width: barW.toFixed(1), height: Math.max(h, values[i] > 0 ? 1 : 0).toFixed(1),
        });
        bar.dataset.date = String(day.date);
        bar.dataset.value = String(values[i]);
        const title = svg("title");
        title.textContent = `${day.date}: ${formatNumber(values[i])} ${metric}`;
        bar.append(title);
        chart.append(bar);
      });
      const ticks = days.length > 1 ? [0, Math.floor((days.length - 1) / 2), days.length - 1] : [0];
      for (const i of new Set(ticks)) {
        chart.append(label(pad.left + i * slot + slot / 2, height - 8, String(days[i].date)));
      }
    }
    if (!max) chart.append(label(pad.left + plotW / 2, pad.top + plotH / 2, "No usage in this period"));
    box.replaceChildren(chart);
  }

  async function loadLedger() {
    const note = $("ledger-note");
    note.hidden = true;
    let data;
    try {
      data = await api("/api/v1/credits/usage", { query: { skip: ledgerState.skip, limit: LEDGER_PAGE } });
    } catch (exc) {
      if (exc.status === 404 || exc.status === 405) {
        note.textContent = "The ledger is not available on this server.";
        note.hidden = false;
        $("ledger-head").replaceChildren();
        $("ledger-body").replaceChildren();
        $("ledger-summary").textContent = "";
        $("ledger-prev").disabled = true;
        $("ledger-next").disabled = true;
        return;
      }
      throw exc;
    }
    renderLedger(data);
  }

  // Renders whatever list the ledger route returns: the first array found, its keys as columns.
  function ledgerRows(data) {
    if (Array.isArray(data)) return data;
    if (!data || typeof data !== "object") return [];
    for (const key of ["usage", "entries", "items", "ledger", "data"]) {
      if (Array.isArray(data[key])) return data[key];
    }
    const found = Object.values(data).find(Array.isArray);
    return found || [];
  }

  const PREFERRED_COLUMNS = [
    "createdAt", "created_at", "type", "kind", "amount", "heldDelta", "held_delta", "note", "jobId", "job_id",
  ];

  function renderLedger(data) {
    const rows = ledgerRows(data).filter((r) => r && typeof r === "object");
    const keys = [];
    for (const row of rows) for (const key of Object.keys(row)) if (!keys.includes(key)) keys.push(key);
    let columns = PREFERRED_COLUMNS.filter((k) => keys.includes(k));
    if (!columns.length) columns = keys.slice(0, 6);
    const heading = (key) => {
      const words = key.replace(/_/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").toLowerCase();
      return words.charAt(0).toUpperCase() + words.slice(1);
    };
    $("ledger-head").replaceChildren(...columns.map((key) => el("th", { text: heading(key) })));
    const cell = (key, value) => {
      if (value === null || value === undefined) return "—";
      if (/(^created|At$|_at$)/.test(key)) return formatDate(value);
      if (typeof value === "object") return JSON.stringify(value);
      return typeof value === "number" ? formatNumber(value) : String(value);
    };
    $("ledger-body").replaceChildren(...rows.map((row) => el("tr", null,
      ...columns.map((key) => el("td", { text: cell(key, row[key]) })))));
    const note = $("ledger-note");
    if (!rows.length) {
      note.textContent = "No ledger entries yet.";
      note.hidden = false;
    }
    const total = data && typeof data.total === "number" ? data.total : null;
    const first = rows.length ? ledgerState.skip + 1 : 0;
    $("ledger-summary").textContent = `${first}–${ledgerState.skip + rows.length}${total === null ? "" : ` of ${total}`}`;
    $("ledger-prev").disabled = ledgerState.skip === 0;
    const more = data && typeof data.hasMore === "boolean" ? data.hasMore : rows.length === LEDGER_PAGE;
    $("ledger-next").disabled = !more;
  }

  function pageLedger(step) {
    ledgerState.skip = Math.max(0, ledgerState.skip + step * LEDGER_PAGE);
    loadLedger().catch((exc) => toast(exc.message, true));
  }

  /* ---------- wiring ---------- */

  function init() {
    $("signin-form").addEventListener("submit", signIn);
    $("signout").addEventListener("click", () => signOut());
    window.addEventListener("hashchange", route);

    $("voice-filters").addEventListener("submit", applyFilters);
    $("voices-prev").addEventListener("click", () => pageVoices(-1));
    $("voices-next").addEventListener("click", () => pageVoices(1));

    $("clone-form").addEventListener("submit", submitClone);
    $("rec-start").addEventListener("click", startRecording);
    $("rec-stop").addEventListener("click", stopRecording);
    $("clone-speak").addEventListener("click", () => goSpeak($("clone-speak").dataset.voiceId));

    $("speak-form").addEventListener("submit", submitSpeak);
    $("speak-text").addEventListener("input", updateCount);

    $("usage-period").addEventListener("change", () => loadUsageChart().catch((exc) => toast(exc.message, true)));
    $("usage-metric").addEventListener("change", drawUsage);
    $("ledger-prev").addEventListener("click", () => pageLedger(-1));
    $("ledger-next").addEventListener("click", () => pageLedger(1));

    watchAudio($("preview-audio"));
    watchAudio($("speak-audio"));
    watchTranscript($("speak-audio"));

    if (token()) showApp();
    else signOut();
  }

  init();
})();
