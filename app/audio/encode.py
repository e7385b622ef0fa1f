"""Encode float32 mono audio to the response formats, whole or streamed sentence by sentence.

Streaming muxes into a write-only (non-seekable) sink, so FFmpeg never seeks back to
patch headers, and every drained chunk ends on a packet/page boundary: the bytes sent
so far always form a playable file. Whole-file encoding uses a seekable buffer so
muxers can finalise headers (FLAC STREAMINFO totals, the MP3 Xing/LAME frame).

Format names are parsed in one place (`parse_format` → `OutputFormat`): the plain names
(`AUDIO_FORMATS`), `<format>_<rate>` (pcm_16000, wav_8000, flac_44100, aac_22050, mp3_16000),
`mp3_<rate>_<kbps>` (mp3_44100_128, within what MPEG layer III allows at that rate),
`opus_48000_<kbps>`, and headerless G.711 `ulaw_8000` / `alaw_8000`. Opus is always 48 kHz.
"""

from __future__ import annotations

import contextlib
import io
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import av
import numpy as np

from app.audio.clean import to_mono
from app.core.errors import InvalidInput

AUDIO_FORMATS: tuple[str, ...] = ("mp3", "opus", "aac", "flac", "wav", "pcm", "ogg")

# OpenAI clients read raw pcm as s16le, 24 kHz, mono.
PCM_RATE = 24_000
OPUS_RATE = 48_000
# RIFF/data size for "length unknown" (streamed WAV).
WAV_UNKNOWN_SIZE = 0xFFFFFFFF

# Packets muxed before the first bytes go out (≈ 60-140 ms of audio).
_MIN_FIRST_PACKETS = 3

_CONTENT_TYPES: dict[str, str] = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
    "ogg": "audio/ogg",
    "ulaw": "audio/basic",  # RFC 2046: 8 kHz mono G.711 mu-law, no header
    "alaw": "audio/x-alaw-basic",
}

_EXTENSIONS: dict[str, str] = {"opus": "opus", "pcm": "pcm", "aac": "aac"}

# Rate-specific names (ElevenLabs style): `<format>_<rate>`, `mp3_<rate>_<kbps>`, `opus_48000_<kbps>`,
# `ulaw_8000`, `alaw_8000`. Every rate here is one libmp3lame, FFmpeg's aac and flac all take.
RATED_RATES: tuple[int, ...] = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_RATES: dict[str, tuple[int, ...]] = {
    "mp3": RATED_RATES,
    "aac": RATED_RATES,
    "flac": RATED_RATES,
    "wav": RATED_RATES,
    "pcm": RATED_RATES,
    "opus": (OPUS_RATE,),
    "ulaw": (8000,),
    "alaw": (8000,),
}
# G.711 exists only as `<codec>_8000`; the plain names are not formats.
_RATE_REQUIRED = frozenset({"ulaw", "alaw"})
# The bitrates an MPEG layer III stream may have (libmp3lame refuses or rounds any other):
# MPEG-1 (32-48 kHz), MPEG-2 (16-24 kHz), MPEG-2.5 (8-12 kHz).
_MP3_KBPS: tuple[tuple[int, tuple[int, ...]], ...] = (
    (32_000, (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)),
    (16_000, (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)),
    (0, (8, 16, 24, 32, 40, 48, 56, 64)),
)
_OPUS_KBPS = range(6, 511)  # libopus: 6-510 kbps
_DEFAULT_BIT_RATE = {"mp3": 64_000, "aac": 64_000, "opus": 48_000, "ogg": 64_000}
_NAME = re.compile(r"^([a-z0-9]+)(?:_(\d{1,6})(?:_(\d{1,4}))?)?$")
PATTERNS = (
    "<format>_<rate> (e.g. pcm_16000, wav_8000), mp3_<rate>_<kbps> (e.g. mp3_44100_128), "
    "opus_48000_<kbps>, ulaw_8000, alaw_8000"
)


def has_libvorbis() -> bool:
    """Whether this PyAV build can encode Vorbis properly (FFmpeg's native one is experimental)."""
    return "libvorbis" in av.codecs_available


def _mp3_kbps(rate: int) -> tuple[int, ...]:
    return next(kbps for floor, kbps in _MP3_KBPS if rate >= floor)


@dataclass(frozen=True)
class OutputFormat:
    """A response format, parsed from its name in one place (`parse_format`).

    `codec` is the plain name (mp3, opus, aac, flac, wav, pcm, ogg, ulaw, alaw); `rate` the output
    sample rate the name asks for (None: the codec's choice for the input: mp3/aac/flac/wav near
    the voice's own rate, pcm 24 kHz, opus 48 kHz); `bit_rate` in bits/s (None: the default).
    """

    codec: str
    rate: int | None = None
    bit_rate: int | None = None

    @property
    def name(self) -> str:
        """Canonical name: parses back to this format (stored on jobs, passed between layers)."""
        name = self.codec if self.rate is None else f"{self.codec}_{self.rate}"
        return name if self.bit_rate is None else f"{name}_{self.bit_rate // 1000}"

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.codec]

    @property
    def extension(self) -> str:
        return _EXTENSIONS.get(self.codec, self.codec)

    @property
    def raw(self) -> bool:
        """Headerless samples (s16le or G.711), streamed as they are made."""
        return self.codec in ("pcm", "ulaw", "alaw")


def _unsupported(fmt: str, formats: Sequence[str]) -> InvalidInput:
    return InvalidInput(f"Unsupported audio format '{fmt}'; use one of: {', '.join(formats)}; or {PATTERNS}")


def _rate_problem(codec: str, rate: int) -> str | None:
    """Why `codec` cannot be encoded at `rate` Hz (None: it can)."""
    rates = _RATES.get(codec, ())
    if rate in rates:
        return None
    if not rates:
        return f"{codec} has no sample rate choice"
    if len(rates) == 1:
        return f"{codec} is always {rates[0]} Hz, not {rate}"
    return f"{codec} cannot be {rate} Hz; use one of: {', '.join(map(str, rates))}"


def parse_format(
    fmt: str, *, sample_rate: int | None = None, formats: Sequence[str] = AUDIO_FORMATS
) -> OutputFormat:
    """Parse a format name (`mp3`, `pcm_16000`, `ulaw_8000`, `mp3_44100_128`…) or raise InvalidInput.

    `formats`: the plain names a family accepts (patterns work for those that take a rate, plus
    ulaw/alaw). `sample_rate` (a separate request field) resamples a plain name's output; a rate
    in the name that differs is refused with param "sample_rate".
    """
    name = (fmt or "").strip().lower()
    match = _NAME.match(name)
    codec = match.group(1) if match else ""
    allowed = codec in _RATE_REQUIRED or codec in formats
    if not match or not allowed or (match.group(2) is None and codec in _RATE_REQUIRED):
        raise _unsupported(fmt, formats)
    rate = int(match.group(2)) if match.group(2) is not None else None
    kbps = int(match.group(3)) if match.group(3) is not None else None
    if rate is not None:
        if codec not in _RATES:
            raise _unsupported(fmt, formats)
        if problem := _rate_problem(codec, rate):
            raise InvalidInput(f"Unsupported audio format '{fmt}': {problem}")
    if kbps is not None:
        assert rate is not None
        allowed_kbps = _mp3_kbps(rate) if codec == "mp3" else _OPUS_KBPS if codec == "opus" else ()
        if not allowed_kbps:
            raise _unsupported(fmt, formats)
        if kbps not in allowed_kbps:
            shown = "6-510" if codec == "opus" else ", ".join(map(str, allowed_kbps))
            raise InvalidInput(
                f"Unsupported audio format '{fmt}': {codec} at {rate} Hz cannot be {kbps} kbps; "
                f"use one of: {shown}"
            )
    spec = OutputFormat(codec, rate, None if kbps is None else kbps * 1000)
    if sample_rate is not None and sample_rate != rate:
        if rate is not None:
            raise InvalidInput(
                f"sample_rate {sample_rate} conflicts with response format '{name}' ({rate} Hz)",
                param="sample_rate",
            )
        if problem := _rate_problem(codec, sample_rate):
            raise InvalidInput(f"Invalid sample_rate: {problem}", param="sample_rate")
        spec = replace(spec, rate=sample_rate)
    return spec


def check_format(fmt: str, *, sample_rate: int | None = None, formats: Sequence[str] = AUDIO_FORMATS) -> str:
    """Return the canonical format name (with `sample_rate` folded in) or raise InvalidInput."""
    return parse_format(fmt, sample_rate=sample_rate, formats=formats).name


def content_type(fmt: str) -> str:
    """HTTP Content-Type for a response format (what OpenAI returns for the same format)."""
    return parse_format(fmt).content_type


def file_extension(fmt: str) -> str:
    """File extension for stored outputs (no dot)."""
    return parse_format(fmt).extension


def wav_header(sample_rate: int, data_bytes: int | None, *, channels: int = 1) -> bytes:
    """44-byte PCM s16 WAV header; data_bytes=None writes the 0xFFFFFFFF unknown-length sentinel."""
    if data_bytes is None:
        riff_size = data_size = WAV_UNKNOWN_SIZE
    else:
        data_size = data_bytes
        riff_size = min(36 + data_bytes, WAV_UNKNOWN_SIZE)
    block_align = channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        riff_size,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        16,
        b"data",
        data_size,
    )


def _prepare(samples: np.ndarray) -> np.ndarray:
    """Float32 mono in [-1, 1], NaN-free: encoders must never see garbage."""
    x = to_mono(np.asarray(samples))
    x = np.nan_to_num(x.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(x, -1.0, 1.0)


def _to_s16le(samples: np.ndarray) -> bytes:
    return np.round(samples * 32767.0).astype("<i2").tobytes()


@dataclass(frozen=True)
class _Plan:
    """How one format is produced with PyAV."""

    muxer: str
    codec: str
    rate: int
    bit_rate: int | None = None
    stream_options: dict[str, str] = field(default_factory=dict)


def _nearest_supported(rate: int, supported: list[int] | None) -> int:
    """The input rate if the codec takes it, else the smallest supported rate above it (or the max)."""
    if not supported or rate in supported:
        return rate
    above = sorted(r for r in supported if r >= rate)
    return above[0] if above else max(supported)


def _plan(fmt: OutputFormat, sample_rate: int) -> _Plan:
    """The rate and bitrate a name asks for, else the codec's nearest to the input and its default."""
    codec, rate, bit_rate = fmt.codec, fmt.rate, fmt.bit_rate or _DEFAULT_BIT_RATE.get(fmt.codec)
    if codec == "mp3":
        rate = rate or _nearest_supported(sample_rate, av.Codec("libmp3lame", "w").audio_rates)
        return _Plan("mp3", "libmp3lame", rate, bit_rate)
    if codec == "aac":
        rate = rate or _nearest_supported(sample_rate, av.Codec("aac", "w").audio_rates)
        return _Plan("adts", "aac", rate, bit_rate)
    if codec == "flac":
        return _Plan("flac", "flac", rate or min(sample_rate, 655_350))
    if codec == "ogg" and has_libvorbis():
        return _Plan("ogg", "libvorbis", sample_rate, bit_rate)
    # opus, and ogg without libvorbis: Opus in Ogg at 48 kHz.
    return _Plan("ogg", "libopus", OPUS_RATE, fmt.bit_rate or _DEFAULT_BIT_RATE["opus"])


class _Sink:
    """Write-only byte sink: no seek/tell, so PyAV marks the output non-seekable (streaming)."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def __len__(self) -> int:
        return len(self._buf)

    def drain(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class _AvEncoder:
    """PyAV encoder + muxer with continuous pts across feeds."""

    def __init__(self, fmt: OutputFormat, sample_rate: int, *, seekable: bool) -> None:
        plan = _plan(fmt, sample_rate)
        self.output_rate = plan.rate
        self._in_rate = sample_rate
        self._sink: _Sink | io.BytesIO = io.BytesIO() if seekable else _Sink()
        container_options: dict[str, str] = {}
        if not seekable:
            # Push every packet straight to the sink; small Ogg pages bound what the
            # muxer holds back between sentences (~2 pages) at ~7% overhead.
            container_options["flush_packets"] = "1"
            if plan.muxer == "ogg":
                container_options["page_duration"] = "40000"
            if plan.muxer == "flac":
                container_options["metadata_header_padding"] = "0"
        self._container = av.open(self._sink, "w", format=plan.muxer, container_options=container_options)
        stream = self._container.add_stream(plan.codec, rate=plan.rate, layout="mono")
        assert isinstance(stream, av.audio.stream.AudioStream)
        if plan.bit_rate:
            stream.bit_rate = plan.bit_rate
        codec = av.Codec(plan.codec, "w")
        if codec.audio_formats and any(f.name == "flt" for f in codec.audio_formats):
            stream.format = "flt"  # hand libopus floats rather than pre-quantised s16
        self._stream = stream
        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=plan.rate)
        self._time_base = Fraction(1, plan.rate)
        self._pts = 0
        self._container.start_encoding()
        # Hold the header back until audio follows it, so no drained prefix is header-only.
        self._header_len = len(self._sink) if isinstance(self._sink, _Sink) else 0
        self._packets = 0
        self._started = False
        self._closed = False

    def _encode_frames(self, frames: list[av.AudioFrame]) -> None:
        for frame in frames:
            frame.pts = self._pts
            frame.time_base = self._time_base
            self._pts += frame.samples
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
                self._packets += 1

    def feed(self, samples: np.ndarray) -> bytes:
        if self._closed:
            raise RuntimeError("encoder already finished")
        if samples.size:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples[None, :]), format="flt", layout="mono"
            )
            frame.sample_rate = self._in_rate
            self._encode_frames(self._resampler.resample(frame))
        return self._drain()

    def _drain(self) -> bytes:
        sink = self._sink
        if not isinstance(sink, _Sink):
            return b""
        if not self._started:
            # The MP3 demuxer will not sync on a single frame: wait for a few packets too.
            if len(sink) <= self._header_len or self._packets < _MIN_FIRST_PACKETS:
                return b""
            self._started = True
        return sink.drain()

    def finish(self) -> bytes:
        if self._closed:
            return b""
        self._encode_frames(self._resampler.resample(None))
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        self._closed = True
        if isinstance(self._sink, io.BytesIO):
            return self._sink.getvalue()
        return self._sink.drain()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            # An abandoned stream (the client went away): nothing worth reporting.
            with contextlib.suppress(Exception):
                self._container.close()


class _RawEncoder:
    """Headerless mono samples at `output_rate`: s16le (pcm), or G.711 mu-law/A-law bytes encoded
    by FFmpeg's pcm_mulaw/pcm_alaw. Resampled statefully so feeds join without clicks."""

    _G711 = {"ulaw": "pcm_mulaw", "alaw": "pcm_alaw"}

    def __init__(self, sample_rate: int, output_rate: int, codec: str = "pcm") -> None:
        self.output_rate = output_rate
        self._in_rate = sample_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=output_rate)
        self._g711: av.AudioCodecContext | None = None
        self._pts = 0
        if codec in self._G711:
            ctx = av.CodecContext.create(self._G711[codec], "w")
            assert isinstance(ctx, av.AudioCodecContext)
            ctx.sample_rate = output_rate
            ctx.layout = "mono"
            ctx.format = "s16"
            ctx.open()
            self._g711 = ctx

    def _bytes(self, frames: list[av.AudioFrame]) -> bytes:
        if self._g711 is None:
            return b"".join(f.to_ndarray().astype("<i2", copy=False).tobytes() for f in frames)
        out = bytearray()
        for frame in frames:
            frame.pts = self._pts
            self._pts += frame.samples
            for packet in self._g711.encode(frame):
                out += bytes(packet)
        return bytes(out)

    def feed(self, samples: np.ndarray) -> bytes:
        if not samples.size:
            return b""
        if self._in_rate == self.output_rate and self._g711 is None:
            return _to_s16le(samples)
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[None, :]), format="flt", layout="mono"
        )
        frame.sample_rate = self._in_rate
        return self._bytes(self._resampler.resample(frame))

    def finish(self) -> bytes:
        return self._bytes(self._resampler.resample(None))

    def close(self) -> None:
        pass


class _WavEncoder:
    """Streamed WAV: header with unknown sizes, then s16le at `output_rate` (default: the input's)."""

    def __init__(self, sample_rate: int, output_rate: int | None = None) -> None:
        self._pcm = _RawEncoder(sample_rate, output_rate or sample_rate)
        self.output_rate = self._pcm.output_rate
        self._header_sent = False

    def _head(self) -> bytes:
        if self._header_sent:
            return b""
        self._header_sent = True
        return wav_header(self.output_rate, None)

    def feed(self, samples: np.ndarray) -> bytes:
        return self._head() + self._pcm.feed(samples)

    def finish(self) -> bytes:
        return self._head() + self._pcm.finish()

    def close(self) -> None:
        pass


class StreamEncoder:
    """Incremental encoder: `feed` returns bytes ready now (maybe b""), `finish` flushes the rest.

    Whatever has been returned so far, cut at any call boundary, decodes as a valid file
    of the audio fed so far (minus codec delay). Used for sentence-by-sentence TTS.
    """

    def __init__(self, fmt: str, sample_rate: int, *, _seekable: bool = False) -> None:
        self.spec = parse_format(fmt)
        self.format = self.spec.name
        if sample_rate <= 0:
            raise InvalidInput("Sample rate must be positive")
        self.input_rate = sample_rate
        self._impl: _AvEncoder | _WavEncoder | _RawEncoder
        codec = self.spec.codec
        if codec == "wav":
            self._impl = _WavEncoder(sample_rate, self.spec.rate)
        elif self.spec.raw:
            self._impl = _RawEncoder(sample_rate, self.spec.rate or PCM_RATE, codec)
        else:
            self._impl = _AvEncoder(self.spec, sample_rate, seekable=_seekable)
        self._finished = False

    @property
    def content_type(self) -> str:
        return self.spec.content_type

    @property
    def output_rate(self) -> int:
        """Sample rate of the encoded audio (the name's rate, else opus: 48 kHz; pcm: 24 kHz)."""
        return self._impl.output_rate

    def feed(self, samples: np.ndarray) -> bytes:
        """Encode more audio (float32 mono at `input_rate`); return the bytes ready now."""
        if self._finished:
            raise RuntimeError("StreamEncoder.feed() after finish()")
        return self._impl.feed(_prepare(samples))

    def finish(self) -> bytes:
        """Flush codec delay and write the trailer; later calls return b""."""
        if self._finished:
            return b""
        self._finished = True
        return self._impl.finish()

    def close(self) -> None:
        """Release codec resources without producing output (e.g. the client disconnected)."""
        self._finished = True
        self._impl.close()


def encode_audio(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """Encode a whole clip; WAV gets exact sizes, compressed formats get finalised headers."""
    spec = parse_format(fmt)
    x = _prepare(samples)
    if spec.codec == "wav":
        pcm = _RawEncoder(sample_rate, spec.rate or sample_rate)
        body = pcm.feed(x) + pcm.finish()
        return wav_header(pcm.output_rate, len(body)) + body
    encoder = StreamEncoder(spec.name, sample_rate, _seekable=not spec.raw)
    return encoder.feed(x) + encoder.finish()
