"""Decode uploaded audio with PyAV into float32 mono, enforcing limits while decoding.

Policy on damaged files: a decode/demux error after at least MIN_PARTIAL_SECONDS of
audio keeps what was decoded (unfinished browser recordings and cut-off uploads are
common and still useful); an error before that is "corrupt or truncated" (400).
Durations are counted from decoded samples, never from headers: headers lie (a WAV
header may claim hours; our own streamed WAVs carry the 0xFFFFFFFF sentinel).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

from app.audio.sniff import sniff_container
from app.core.errors import DomainError, InvalidInput, UnsupportedMedia

# Demuxer per sniffed container: forcing it skips format probing on untrusted bytes.
_DEMUXERS: dict[str, str] = {
    "wav": "wav",
    "mp3": "mp3",
    "ogg": "ogg",
    "flac": "flac",
    "mp4": "mp4",
    "webm": "matroska",
    "aac": "aac",
}

# Below this much audio, a decode error means the file is unusable.
MIN_PARTIAL_SECONDS = 0.1
# Codec padding (MP3/AAC priming) can add a few frames; don't refuse a file for that.
DURATION_SLACK_SECONDS = 0.25

_SCALE: dict[type, tuple[float, float]] = {  # dtype -> (offset, divisor) to reach [-1, 1]
    np.uint8: (128.0, 128.0),
    np.int16: (0.0, 32768.0),
    np.int32: (0.0, 2147483648.0),
    np.int64: (0.0, 9223372036854775808.0),
}

NO_AUDIO = "Audio file contains no audio"
CORRUPT = "Audio file is corrupt or truncated"


@dataclass(frozen=True)
class DecodedAudio:
    """Decoded audio: float32 mono samples in [-1, 1] at `sample_rate`."""

    samples: np.ndarray
    sample_rate: int
    duration: float
    container: str
    source_rate: int
    codec: str = ""
    truncated: bool = False  # a decode error ended decoding early (see module docstring)


def frame_to_mono(frame: av.AudioFrame) -> np.ndarray:
    """Convert any PyAV audio frame (packed/planar, int/float) to float32 mono by averaging."""
    arr = frame.to_ndarray()
    channels = max(1, frame.layout.nb_channels)
    if not frame.format.is_planar:
        arr = arr.reshape(-1, channels).T
    dtype = arr.dtype.type
    x = arr.astype(np.float32)
    if dtype in _SCALE:
        offset, divisor = _SCALE[dtype]
        if offset:
            x -= np.float32(offset)
        x *= np.float32(1.0 / divisor)
    mono = x.mean(axis=0, dtype=np.float32) if x.shape[0] > 1 else x[0]
    return np.ascontiguousarray(mono, dtype=np.float32)


class _Collector:
    """Accumulate mono chunks, resampling on the fly (stateful, so memory stays at output rate)."""

    def __init__(self, target_rate: int | None) -> None:
        self.target_rate = target_rate
        self.out_rate: int | None = target_rate
        self.chunks: list[np.ndarray] = []
        self._resampler: av.AudioResampler | None = None
        self._resampler_in_rate = 0

    def add(self, mono: np.ndarray, rate: int) -> None:
        if self.out_rate is None:
            self.out_rate = rate
        if rate == self.out_rate and self._resampler is None:
            self.chunks.append(mono)
            return
        if self._resampler is not None and rate != self._resampler_in_rate:
            self._drain(None)  # the source changed rate mid-stream (chained Ogg): start over
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="flt", layout="mono", rate=self.out_rate)
            self._resampler_in_rate = rate
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono[None, :]), format="flt", layout="mono")
        frame.sample_rate = rate
        self._drain(frame)

    def _drain(self, frame: av.AudioFrame | None) -> None:
        assert self._resampler is not None
        for out in self._resampler.resample(frame):
            self.chunks.append(out.to_ndarray().reshape(-1).astype(np.float32, copy=False))
        if frame is None:
            self._resampler = None

    def finish(self) -> np.ndarray:
        if self._resampler is not None:
            self._drain(None)
        if not self.chunks:
            return np.zeros(0, dtype=np.float32)
        samples = np.concatenate(self.chunks)
        self.chunks = []
        np.nan_to_num(samples, copy=False, nan=0.0, posinf=1.0, neginf=-1.0)
        np.clip(samples, -1.0, 1.0, out=samples)
        return samples


def decode_audio(
    data: bytes,
    *,
    target_rate: int | None = None,
    max_seconds: float,
    max_sample_rate: int,
) -> DecodedAudio:
    """Decode `data` to mono float32, resampled to `target_rate` (None keeps the source rate).

    Resampling happens while decoding, so a low `target_rate` also bounds memory.

    Raises UnsupportedMedia (415) for non-audio bytes or codecs we cannot decode, and
    InvalidInput (400) for empty, corrupt, too long (stops decoding as soon as the limit
    is passed) or too-high-sample-rate audio. No PyAV exception escapes.
    """
    if not data:
        raise InvalidInput(NO_AUDIO)
    container = sniff_container(data)
    if target_rate is not None and target_rate <= 0:
        raise ValueError("target_rate must be positive")

    collector = _Collector(target_rate)
    source_rate = 0
    codec_name = ""
    seconds = 0.0
    limit = max_seconds + DURATION_SLACK_SECONDS
    truncated = False
    try:
        with av.open(io.BytesIO(data), mode="r", format=_DEMUXERS[container]) as inp:
            if not inp.streams.audio:
                raise InvalidInput(NO_AUDIO)
            stream = inp.streams.audio[0]
            ctx = stream.codec_context
            if ctx is None:
                raise UnsupportedMedia("The audio codec in this file is not supported")
            codec_name = ctx.name or ""
            _check_rate(ctx.sample_rate or 0, max_sample_rate)
            try:
                for packet in inp.demux(stream):
                    for frame in packet.decode():
                        rate = int(frame.sample_rate or 0)
                        if rate <= 0:
                            raise InvalidInput(CORRUPT)
                        _check_rate(rate, max_sample_rate)
                        if not source_rate:
                            source_rate = rate
                        if frame.samples <= 0:
                            continue
                        seconds += frame.samples / rate
                        if seconds > limit:
                            raise InvalidInput(f"Audio is longer than {max_seconds:g} seconds")
                        collector.add(frame_to_mono(frame), rate)
            except DomainError:
                raise
            except MemoryError:
                raise
            except Exception as exc:
                if seconds < MIN_PARTIAL_SECONDS:
                    raise InvalidInput(CORRUPT) from exc
                truncated = True
    except DomainError:
        raise
    except MemoryError:
        raise
    except av.error.DecoderNotFoundError as exc:
        raise UnsupportedMedia("The audio codec in this file is not supported") from exc
    except Exception as exc:  # any PyAV/FFmpeg failure on untrusted bytes is the file's fault
        raise InvalidInput(CORRUPT) from exc

    try:
        samples = collector.finish()
    except Exception as exc:  # resampler flush; never expected, but keep it a domain error
        raise InvalidInput(CORRUPT) from exc
    if samples.size == 0 or not source_rate:
        raise InvalidInput(NO_AUDIO)
    out_rate = collector.out_rate or source_rate
    return DecodedAudio(
        samples=samples,
        sample_rate=out_rate,
        duration=samples.size / out_rate,
        container=container,
        source_rate=source_rate,
        codec=codec_name,
        truncated=truncated,
    )


def _check_rate(rate: int, max_sample_rate: int) -> None:
    if rate > max_sample_rate:
        raise InvalidInput(f"Audio sample rate {rate} Hz is above the limit of {max_sample_rate} Hz")
