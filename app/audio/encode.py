"""Encode float32 mono audio to the response formats, whole or streamed sentence by sentence.

Streaming muxes into a write-only (non-seekable) sink, so FFmpeg never seeks back to
patch headers, and every drained chunk ends on a packet/page boundary: the bytes sent
so far always form a playable file. Whole-file encoding uses a seekable buffer so
muxers can finalise headers (FLAC STREAMINFO totals, the MP3 Xing/LAME frame).
"""

from __future__ import annotations

import contextlib
import io
import struct
from dataclasses import dataclass, field
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
}

_EXTENSIONS: dict[str, str] = {"opus": "opus", "pcm": "pcm", "aac": "aac"}


def has_libvorbis() -> bool:
    """Whether this PyAV build can encode Vorbis properly (FFmpeg's native one is experimental)."""
    return "libvorbis" in av.codecs_available


def check_format(fmt: str) -> str:
    """Return the canonical format name or raise InvalidInput for an unknown one."""
    name = (fmt or "").strip().lower()
    if name not in AUDIO_FORMATS:
        raise InvalidInput(f"Unsupported audio format '{fmt}'; use one of: {', '.join(AUDIO_FORMATS)}")
    return name


def content_type(fmt: str) -> str:
    """HTTP Content-Type for a response format (what OpenAI returns for the same format)."""
    return _CONTENT_TYPES[check_format(fmt)]


def file_extension(fmt: str) -> str:
    """File extension for stored outputs (no dot)."""
    name = check_format(fmt)
    return _EXTENSIONS.get(name, name)


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


def _plan(fmt: str, sample_rate: int) -> _Plan:
    if fmt == "mp3":
        rate = _nearest_supported(sample_rate, av.Codec("libmp3lame", "w").audio_rates)
        return _Plan("mp3", "libmp3lame", rate, 64_000)
    if fmt == "aac":
        rate = _nearest_supported(sample_rate, av.Codec("aac", "w").audio_rates)
        return _Plan("adts", "aac", rate, 64_000)
    if fmt == "flac":
        return _Plan("flac", "flac", min(sample_rate, 655_350))
    if fmt == "ogg" and has_libvorbis():
        return _Plan("ogg", "libvorbis", sample_rate, 64_000)
    # opus, and ogg without libvorbis: Opus in Ogg at 48 kHz.
    return _Plan("ogg", "libopus", OPUS_RATE, 48_000)


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

    def __init__(self, fmt: str, sample_rate: int, *, seekable: bool) -> None:
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


class _WavEncoder:
    """Streamed WAV: header with unknown sizes, then s16le at the input rate."""

    def __init__(self, sample_rate: int) -> None:
        self.output_rate = sample_rate
        self._header_sent = False

    def feed(self, samples: np.ndarray) -> bytes:
        head = b""
        if not self._header_sent:
            self._header_sent = True
            head = wav_header(self.output_rate, None)
        return head + _to_s16le(samples)

    def finish(self) -> bytes:
        return self.feed(np.zeros(0, dtype=np.float32)) if not self._header_sent else b""

    def close(self) -> None:
        pass


class _PcmEncoder:
    """Raw s16le mono at 24 kHz, resampled statefully so feeds join without clicks."""

    def __init__(self, sample_rate: int) -> None:
        self.output_rate = PCM_RATE
        self._in_rate = sample_rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=PCM_RATE)

    @staticmethod
    def _bytes(frames: list[av.AudioFrame]) -> bytes:
        return b"".join(f.to_ndarray().astype("<i2", copy=False).tobytes() for f in frames)

    def feed(self, samples: np.ndarray) -> bytes:
        if not samples.size:
            return b""
        if self._in_rate == PCM_RATE:
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


class StreamEncoder:
    """Incremental encoder: `feed` returns bytes ready now (maybe b""), `finish` flushes the rest.

    Whatever has been returned so far, cut at any call boundary, decodes as a valid file
    of the audio fed so far (minus codec delay). Used for sentence-by-sentence TTS.
    """

    def __init__(self, fmt: str, sample_rate: int, *, _seekable: bool = False) -> None:
        self.format = check_format(fmt)
        if sample_rate <= 0:
            raise InvalidInput("Sample rate must be positive")
        self.input_rate = sample_rate
        self._impl: _AvEncoder | _WavEncoder | _PcmEncoder
        if self.format == "wav":
            self._impl = _WavEncoder(sample_rate)
        elif self.format == "pcm":
            self._impl = _PcmEncoder(sample_rate)
        else:
            self._impl = _AvEncoder(self.format, sample_rate, seekable=_seekable)
        self._finished = False

    @property
    def content_type(self) -> str:
        return _CONTENT_TYPES[self.format]

    @property
    def output_rate(self) -> int:
        """Sample rate of the encoded audio (opus: 48 kHz; pcm: 24 kHz)."""
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
    name = check_format(fmt)
    x = _prepare(samples)
    if name == "wav":
        body = _to_s16le(x)
        return wav_header(sample_rate, len(body)) + body
    encoder = StreamEncoder(name, sample_rate, _seekable=name not in ("pcm",))
    return encoder.feed(x) + encoder.finish()
