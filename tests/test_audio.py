"""app.audio: sniffing, limited reads, decoding limits, codecs, streaming, clean-up."""

from __future__ import annotations

import asyncio
import io
import struct
from collections.abc import Iterator

import av
import numpy as np
import pytest
from starlette.datastructures import Headers, UploadFile

import app.audio.decode as decode_module
from app.audio import (
    AUDIO_FORMATS,
    PCM_RATE,
    DecodedAudio,
    StreamEncoder,
    content_type,
    decode_audio,
    encode_audio,
    has_libvorbis,
    integrated_loudness,
    loudness_normalise,
    read_limited,
    read_limited_sync,
    require_speech,
    resample,
    sniff_container,
    speech_seconds,
    to_mono,
    trim_silence,
    wav_header,
)
from app.audio.denoise import deep_filter, is_noisy
from app.core.errors import DomainError, InvalidInput, PayloadTooLarge, UnsupportedMedia
from tests.plugins.audio_samples import wav_bytes

MAX_SECONDS = 600.0
MAX_RATE = 192_000
DECODABLE = tuple(f for f in AUDIO_FORMATS if f != "pcm")
# What each format's decoder reports as the source rate for 22050 Hz input.
EXPECTED_RATE = {"mp3": 22050, "aac": 22050, "flac": 22050, "wav": 22050, "opus": 48000, "ogg": 48000}
EXPECTED_CONTAINER = {"mp3": "mp3", "aac": "aac", "flac": "flac", "wav": "wav", "opus": "ogg", "ogg": "ogg"}


def decode(data: bytes, **kw: object) -> DecodedAudio:
    kw.setdefault("max_seconds", MAX_SECONDS)
    kw.setdefault("max_sample_rate", MAX_RATE)
    return decode_audio(data, **kw)  # type: ignore[arg-type]


def mux(codec: str, fmt: str, samples: np.ndarray, rate: int, *, layout: str = "mono", **opts: str) -> bytes:
    """Encode with PyAV directly, for containers app.audio reads but never writes (mp4, webm)."""
    planes = np.ascontiguousarray(np.atleast_2d(samples).astype(np.float32))
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt, container_options=opts) as out:
        stream = out.add_stream(codec, rate=48_000 if codec == "libopus" else rate, layout=layout)
        resampler = av.AudioResampler(format="flt", layout=layout, rate=stream.codec_context.sample_rate)
        packed = planes.T.reshape(1, -1) if layout != "mono" else planes
        frame = av.AudioFrame.from_ndarray(packed, format="flt", layout=layout)
        frame.sample_rate = rate
        pts = 0
        for f in resampler.resample(frame) + resampler.resample(None):
            f.pts = pts
            pts += f.samples
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))
    return buf.getvalue()


@pytest.fixture(scope="module")
def encoded(speech_samples: tuple[np.ndarray, int]) -> dict[str, bytes]:
    samples, rate = speech_samples
    return {fmt: encode_audio(samples, rate, fmt) for fmt in AUDIO_FORMATS}


@pytest.fixture(scope="module")
def containers(encoded: dict[str, bytes], speech_samples: tuple[np.ndarray, int]) -> dict[str, bytes]:
    """One real file per container sniff_container knows."""
    samples, rate = speech_samples
    return {
        "wav": encoded["wav"],
        "mp3": encoded["mp3"],
        "ogg": encoded["opus"],
        "flac": encoded["flac"],
        "aac": encoded["aac"],
        "mp4": mux("aac", "mp4", samples, rate),
        "webm": mux("libopus", "webm", samples, rate),
    }


# --- sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["wav", "mp3", "ogg", "flac", "aac", "mp4", "webm"])
def test_sniff_real_files(containers: dict[str, bytes], name: str) -> None:
    assert sniff_container(containers[name][:64]) == name


def test_sniff_mp3_without_id3_and_tagged_others(speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    bare = mux("libmp3lame", "mp3", samples[:rate], rate, id3v2_version="0", write_xing="0")
    assert bare[:1] == b"\xff"
    assert sniff_container(bare[:16]) == "mp3"
    tag = b"ID3\x04\x00\x00\x00\x00\x00\x0a" + b"\x00" * 10  # 10-byte body
    assert sniff_container(tag + b"fLaC" + b"\x00" * 40) == "flac"
    assert sniff_container(tag + b"\xff\xf1\x50\x80\x00\x1f\xfc") == "aac"
    assert sniff_container(tag + b"\xff\xfb\x90\x00") == "mp3"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"\xff\xfb\x90\x44", "mp3"),  # MPEG-1 layer III
        (b"\xff\xf3\x84\xc4", "mp3"),  # MPEG-2 layer III: sync bits alone look ADTS-ish
        (b"\xff\xfd\x90\x44", "mp3"),  # MPEG-1 layer II
        (b"\xff\xf1\x50\x80", "aac"),  # ADTS MPEG-4, no CRC
        (b"\xff\xf9\x50\x80", "aac"),  # ADTS MPEG-2, no CRC
        (b"\xff\xf0\x50\x80", "aac"),  # ADTS with CRC
    ],
)
def test_sniff_mpeg_vs_adts(head: bytes, expected: str) -> None:
    assert sniff_container(head + b"\x00" * 8) == expected


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello, this is definitely not audio\n",
        b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"%PDF-1.7\n",
        b"\x00\x01\x02\x03" * 8,
        b"\xff\xe0\x00\x00",  # MPEG sync with reserved layer and version
        b"RIFF\x24\x00\x00\x00AVI LIST",  # RIFF but not WAVE
    ],
)
def test_sniff_rejects_non_audio(head: bytes) -> None:
    with pytest.raises(UnsupportedMedia) as err:
        sniff_container(head)
    assert err.value.status_code == 415
    assert "not a supported audio format" in err.value.message


def test_decode_rejects_png_with_415() -> None:
    with pytest.raises(UnsupportedMedia):
        decode(b"\x89PNG\r\n\x1a\n" + bytes(2048))


def test_lying_name_and_content_type_are_ignored(containers: dict[str, bytes]) -> None:
    upload = UploadFile(
        file=io.BytesIO(containers["flac"]),
        filename="voice.mp3",
        headers=Headers({"content-type": "audio/mpeg"}),
    )
    data = asyncio.run(read_limited(upload, 25 * 1024 * 1024))
    assert decode(data).container == "flac"


# --- limited reads ------------------------------------------------------------------------


class CountingReader(io.BytesIO):
    """Counts bytes handed out, to prove we stop reading early."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.served = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.served += len(chunk)
        return chunk


def test_read_limited_stops_at_the_limit() -> None:
    limit = 1024 * 1024
    reader = CountingReader(bytes(10 * limit))
    upload = UploadFile(file=reader, filename="big.wav")
    with pytest.raises(PayloadTooLarge) as err:
        asyncio.run(read_limited(upload, limit))
    assert err.value.status_code == 413
    assert reader.served <= limit + 1


def test_read_limited_accepts_exactly_the_limit() -> None:
    data = bytes(range(256)) * 4096
    upload = UploadFile(file=io.BytesIO(data), filename="ok.wav")
    assert asyncio.run(read_limited(upload, len(data))) == data


def test_read_limited_sync() -> None:
    data = b"x" * 5000
    assert read_limited_sync(io.BytesIO(data), 5000) == data
    reader = CountingReader(data * 100)
    with pytest.raises(PayloadTooLarge):
        read_limited_sync(reader, 5000)
    assert reader.served <= 5001


# --- decode ---------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", DECODABLE)
def test_codec_round_trip(
    encoded: dict[str, bytes], speech_samples: tuple[np.ndarray, int], fmt: str
) -> None:
    samples, rate = speech_samples
    seconds = samples.size / rate
    out = decode(encoded[fmt])
    assert out.container == EXPECTED_CONTAINER[fmt]
    assert out.source_rate == EXPECTED_RATE[fmt]
    assert out.sample_rate == EXPECTED_RATE[fmt]
    assert out.duration == pytest.approx(seconds, rel=0.05)
    assert out.samples.dtype == np.float32 and out.samples.ndim == 1
    assert float(np.max(np.abs(out.samples))) <= 1.0
    assert out.samples.size == pytest.approx(out.duration * out.sample_rate)
    resampled = decode(encoded[fmt], target_rate=16_000)
    assert resampled.sample_rate == 16_000
    assert resampled.source_rate == EXPECTED_RATE[fmt]
    assert resampled.duration == pytest.approx(seconds, rel=0.05)


def test_ogg_uses_vorbis_only_with_libvorbis(encoded: dict[str, bytes]) -> None:
    assert decode(encoded["ogg"]).codec == ("vorbis" if has_libvorbis() else "opus")
    assert decode(encoded["opus"]).codec == "opus"


def test_pcm_is_s16le_24k(encoded: dict[str, bytes], speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    pcm = encoded["pcm"]
    assert len(pcm) % 2 == 0
    assert len(pcm) / 2 / PCM_RATE == pytest.approx(samples.size / rate, rel=0.01)
    ints = np.frombuffer(pcm, dtype="<i2")
    assert np.abs(ints).max() > 1000  # real audio, not silence


@pytest.mark.parametrize("name", ["mp4", "webm"])
def test_decode_mp4_and_webm(
    containers: dict[str, bytes], speech_samples: tuple[np.ndarray, int], name: str
) -> None:
    samples, rate = speech_samples
    out = decode(containers[name], target_rate=16_000)
    assert out.container == name
    assert out.duration == pytest.approx(samples.size / rate, rel=0.05)


def test_stereo_is_averaged_to_mono() -> None:
    rate = 22_050
    left = 0.5 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate)
    stereo = np.stack([left, -left], axis=1)  # antiphase: the average is silence
    out = decode(wav_bytes(stereo, rate))
    assert float(np.max(np.abs(out.samples))) < 1e-3
    same = decode(wav_bytes(np.stack([left, left], axis=1), rate))
    assert float(np.max(np.abs(same.samples))) == pytest.approx(0.5, abs=0.01)
    assert to_mono(stereo).shape == (rate,) and to_mono(stereo.T).shape == (rate,)


def test_float_wav_is_clipped_to_unit_range() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="wav") as out:
        stream = out.add_stream("pcm_f32le", rate=8000, layout="mono")
        frame = av.AudioFrame.from_ndarray(
            np.full((1, 800), 2.0, dtype=np.float32), format="flt", layout="mono"
        )
        frame.sample_rate = 8000
        frame.pts = 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    out_audio = decode(buf.getvalue())
    assert float(out_audio.samples.max()) == 1.0


def _truncations(data: bytes) -> Iterator[bytes]:
    for frac in (0.9, 0.5, 0.2, 0.05, 0.01):
        yield data[: max(1, int(len(data) * frac))]
    yield data[:64]
    yield data[:12]


@pytest.mark.parametrize("name", ["wav", "mp3", "ogg", "flac", "aac", "mp4", "webm"])
def test_truncated_and_corrupt_files_give_400_or_partial_audio(
    containers: dict[str, bytes], name: str
) -> None:
    full = decode(containers[name]).duration
    rng = np.random.default_rng(3)
    damaged = list(_truncations(containers[name]))
    noisy = bytearray(containers[name])
    positions = rng.integers(32, len(noisy), size=len(noisy) // 50)
    noisy_values = rng.integers(0, 256, size=positions.size)
    for pos, val in zip(positions, noisy_values, strict=True):
        noisy[pos] = int(val)
    damaged.append(bytes(noisy))
    junk_tail = containers[name][:32] + rng.integers(0, 256, size=4096, dtype=np.uint8).tobytes()
    damaged.append(junk_tail)
    for data in damaged:
        try:
            out = decode(data)
        except DomainError as exc:  # anything else (an av error, a crash) fails the test
            assert exc.status_code in (400, 415), exc
            assert exc.message
        else:
            assert 0 < out.duration <= full * 1.05 + 0.1


def test_header_only_files_are_corrupt_or_empty(encoded: dict[str, bytes]) -> None:
    with pytest.raises(InvalidInput, match="corrupt or truncated"):
        decode(encoded["opus"][:200])
    with pytest.raises(InvalidInput, match="contains no audio"):
        decode(wav_header(16_000, 0))
    with pytest.raises(InvalidInput, match="contains no audio"):
        decode(b"")


def test_wav_header_claiming_hours_with_little_data() -> None:
    five_hours = 8000 * 2 * 3600 * 5
    data = wav_header(8000, five_hours) + np.zeros(8000, dtype="<i2").tobytes()
    out = decode(data)  # decoded duration counts, not the header's claim
    assert out.duration == pytest.approx(1.0)
    header_only = wav_header(8000, five_hours)
    with pytest.raises(InvalidInput, match="contains no audio"):
        decode(header_only)


def test_long_file_refused_without_decoding_it_all(monkeypatch: pytest.MonkeyPatch) -> None:
    rate = 8000
    data = wav_header(rate, 700 * rate * 2) + bytes(700 * rate * 2)
    seen: list[int] = []
    real = decode_module.frame_to_mono

    def counting(frame: av.AudioFrame) -> np.ndarray:
        seen.append(frame.samples)
        return real(frame)

    monkeypatch.setattr(decode_module, "frame_to_mono", counting)
    with pytest.raises(InvalidInput, match="Audio is longer than 600 seconds") as err:
        decode(data)
    assert err.value.status_code == 400
    # Decoding stopped at the limit: the last 100 s were never converted.
    assert sum(seen) / rate <= MAX_SECONDS + 1


def test_long_compressed_file_refused() -> None:
    data = encode_audio(np.zeros(700 * 8000, dtype=np.float32), 8000, "flac")
    with pytest.raises(InvalidInput, match="longer than 60 seconds"):
        decode(data, max_seconds=60)


def test_sample_rate_over_limit() -> None:
    data = wav_bytes(np.zeros(96_000), 96_000)
    with pytest.raises(InvalidInput, match="sample rate 96000 Hz is above the limit of 48000 Hz") as err:
        decode(data, max_sample_rate=48_000)
    assert err.value.status_code == 400
    assert decode(data).source_rate == 96_000


# --- encode ---------------------------------------------------------------------------------


def test_formats_and_content_types() -> None:
    assert set(AUDIO_FORMATS) == {"mp3", "opus", "aac", "flac", "wav", "pcm", "ogg"}
    assert content_type("mp3") == "audio/mpeg"
    assert content_type("opus") == "audio/opus"
    assert content_type("aac") == "audio/aac"
    assert content_type("flac") == "audio/flac"
    assert content_type("wav") == "audio/wav"
    assert content_type("pcm") == "audio/pcm"
    assert content_type("ogg") == "audio/ogg"
    assert content_type("MP3") == "audio/mpeg"


def test_unknown_format_is_invalid_input() -> None:
    with pytest.raises(InvalidInput):
        content_type("aiff")
    with pytest.raises(InvalidInput):
        encode_audio(np.zeros(100, dtype=np.float32), 22050, "wma")
    with pytest.raises(InvalidInput):
        StreamEncoder("mp4", 22050)


def test_whole_wav_has_exact_sizes(encoded: dict[str, bytes]) -> None:
    wav = encoded["wav"]
    riff, data_size = struct.unpack("<I", wav[4:8])[0], struct.unpack("<I", wav[40:44])[0]
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE" and wav[36:40] == b"data"
    assert riff == len(wav) - 8 and data_size == len(wav) - 44


def test_encoder_sanitises_input() -> None:
    x = np.array([np.nan, np.inf, -np.inf, 3.0, -3.0] * 1000, dtype=np.float32)
    out = decode(encode_audio(x, 16_000, "wav"))
    assert np.isfinite(out.samples).all() and float(np.max(np.abs(out.samples))) <= 1.0


# --- streaming ------------------------------------------------------------------------------


def _stream(fmt: str, parts: list[np.ndarray], rate: int) -> list[bytes]:
    encoder = StreamEncoder(fmt, rate)
    chunks = [encoder.feed(p) for p in parts]
    chunks.append(encoder.finish())
    assert encoder.finish() == b""
    with pytest.raises(RuntimeError):
        encoder.feed(parts[0])
    return chunks


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_stream_every_prefix_decodes(fmt: str, speech_sentences: tuple[list[np.ndarray], int]) -> None:
    sentences, rate = speech_sentences
    assert len(sentences) >= 3
    total = sum(s.size for s in sentences) / rate
    chunks = _stream(fmt, sentences, rate)
    assert all(chunks[:-1]), "each sentence should produce audio right away"
    durations: list[float] = []
    sent = b""
    for chunk in chunks:
        sent += chunk
        if fmt == "pcm":
            assert len(sent) % 2 == 0
            durations.append(len(sent) / 2 / PCM_RATE)
        else:
            durations.append(decode(sent).duration)
    assert durations == sorted(durations)
    assert durations[0] > 0
    assert len(set(durations[:-1])) == len(durations) - 1  # grows with every sentence
    assert durations[-1] == pytest.approx(total, rel=0.05)
    if fmt != "pcm":
        assert decode(sent).container == EXPECTED_CONTAINER[fmt]


@pytest.mark.parametrize("fmt", AUDIO_FORMATS)
def test_stream_tiny_feeds(fmt: str, speech_samples: tuple[np.ndarray, int]) -> None:
    """Feeds smaller than a codec frame: nothing half-made is ever sent."""
    samples, rate = speech_samples
    parts = [samples[i : i + 300] for i in range(0, 12_000, 300)]
    sent = b""
    for chunk in _stream(fmt, parts, rate):
        sent += chunk
        if sent and fmt != "pcm":
            assert decode(sent).duration > 0
    if fmt == "pcm":
        assert len(sent) / 2 / PCM_RATE == pytest.approx(12_000 / rate, rel=0.02)
    else:
        assert decode(sent).duration == pytest.approx(12_000 / rate, abs=0.1)


def test_stream_wav_header_has_unknown_sizes(speech_sentences: tuple[list[np.ndarray], int]) -> None:
    sentences, rate = speech_sentences
    chunks = _stream("wav", sentences, rate)
    head = chunks[0][:44]
    assert head[:4] == b"RIFF" and head[8:12] == b"WAVE" and head[36:40] == b"data"
    assert struct.unpack("<I", head[4:8])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", head[40:44])[0] == 0xFFFFFFFF
    assert struct.unpack("<I", head[24:28])[0] == rate


def test_stream_pcm_matches_whole_encoding(speech_sentences: tuple[list[np.ndarray], int]) -> None:
    sentences, rate = speech_sentences
    streamed = b"".join(_stream("pcm", sentences, rate))
    whole = encode_audio(np.concatenate(sentences), rate, "pcm")
    assert abs(len(streamed) - len(whole)) <= 4
    a = np.frombuffer(streamed, dtype="<i2").astype(np.float64)
    b = np.frombuffer(whole, dtype="<i2").astype(np.float64)
    n = min(a.size, b.size)
    # Continuous resampling across feeds: no clicks at sentence joins.
    assert np.max(np.abs(a[:n] - b[:n])) <= 2


# --- rate-specific and telephony formats ----------------------------------------------------------

G711_DEMUXERS = {"ulaw_8000": "mulaw", "alaw_8000": "alaw"}


def decode_raw(data: bytes, demuxer: str, rate: int) -> tuple[np.ndarray, int]:
    """Headerless audio decoded by FFmpeg (mulaw, alaw, s16le): (float32 samples, the stream's rate)."""
    options = {"sample_rate": str(rate), "ch_layout": "mono"}
    with av.open(io.BytesIO(data), format=demuxer, options=options) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray().reshape(-1) for f in container.decode(stream)]
        return np.concatenate(frames).astype(np.float32) / 32768.0, int(stream.rate)


def envelope_correlation(a: np.ndarray, b: np.ndarray, rate: int) -> float:
    """Pearson correlation of 20 ms RMS envelopes (same rate, compared over the shorter length)."""
    hop = int(0.02 * rate)
    n = min(a.size, b.size) // hop * hop
    env_a = np.sqrt(np.mean(np.square(a[:n].reshape(-1, hop)), axis=1))
    env_b = np.sqrt(np.mean(np.square(b[:n].reshape(-1, hop)), axis=1))
    return float(np.corrcoef(env_a, env_b)[0, 1])


def test_rated_format_names() -> None:
    from app.audio import check_format, file_extension, parse_format

    eleven = ["mp3_22050_32", "mp3_44100_64", "mp3_44100_96", "mp3_44100_128", "mp3_44100_192"]
    eleven += ["pcm_8000", "pcm_16000", "pcm_22050", "pcm_24000", "pcm_44100", "ulaw_8000", "alaw_8000"]
    for name in eleven:
        assert check_format(name) == name
        assert check_format(name.upper()) == name
    assert parse_format("mp3_44100_128") == parse_format("MP3_44100_128")
    spec = parse_format("mp3_44100_128")
    assert (spec.codec, spec.rate, spec.bit_rate) == ("mp3", 44_100, 128_000)
    assert (content_type("ulaw_8000"), file_extension("ulaw_8000")) == ("audio/basic", "ulaw")
    assert (content_type("alaw_8000"), file_extension("alaw_8000")) == ("audio/x-alaw-basic", "alaw")
    assert content_type("pcm_16000") == "audio/pcm" and content_type("mp3_22050_32") == "audio/mpeg"
    assert check_format("wav_8000") == "wav_8000" and check_format("opus_48000_64") == "opus_48000_64"
    # sample_rate folds into the canonical name; an equal rate in the name is fine.
    assert check_format("mp3", sample_rate=16_000) == "mp3_16000"
    assert check_format("pcm", sample_rate=8000) == "pcm_8000"
    assert check_format("pcm_16000", sample_rate=16_000) == "pcm_16000"
    assert check_format("opus", sample_rate=48_000) == "opus_48000"
    for bad in ["ulaw", "ulaw_16000", "alaw_44100", "mp3_8000_128", "mp3_44100_8", "mp3_44100_100"]:
        with pytest.raises(InvalidInput) as err:
            check_format(bad)
        assert err.value.param is None and bad in err.value.message
    for bad in ["wav_44100_128", "ogg_44100", "pcm_12345", "pcm_", "mp3__128", "flac-44100", "xyz_8000"]:
        with pytest.raises(InvalidInput, match="Unsupported audio format"):
            check_format(bad)
    with pytest.raises(InvalidInput) as err:
        check_format("xyz")
    message = err.value.message
    assert "mp3, opus, aac, flac, wav, pcm, ogg" in message and "mp3_<rate>_<kbps>" in message
    assert "ulaw_8000" in message and len(message) < 300
    for fmt, rate in [("pcm_16000", 8000), ("opus", 16_000), ("pcm", 12_345), ("ogg", 22_050)]:
        with pytest.raises(InvalidInput) as err:
            check_format(fmt, sample_rate=rate)
        assert err.value.param == "sample_rate", fmt


@pytest.mark.parametrize("fmt", sorted(G711_DEMUXERS))
def test_g711_decodes_to_8k_like_the_wav(fmt: str, speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    data = encode_audio(samples, rate, fmt)
    assert len(data) == pytest.approx(samples.size * 8000 / rate, abs=8)  # one byte per sample, no header
    audio, out_rate = decode_raw(data, G711_DEMUXERS[fmt], 8000)
    wav = decode(encode_audio(samples, rate, "wav"), target_rate=8000)
    assert out_rate == 8000
    assert audio.size / 8000 == pytest.approx(wav.duration, rel=0.02)
    assert envelope_correlation(audio, wav.samples, 8000) > 0.98
    # The samples themselves, not just the envelope (mu-law bytes read as A-law: 0.59).
    n = min(audio.size, wav.samples.size)
    assert float(np.corrcoef(audio[:n], wav.samples[:n])[0, 1]) > 0.99


@pytest.mark.parametrize("out_rate", [8000, 16_000, 22_050, 24_000, 44_100])
def test_pcm_at_a_rate(out_rate: int, speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    data = encode_audio(samples, rate, f"pcm_{out_rate}")
    audio, _ = decode_raw(data, "s16le", out_rate)
    assert audio.size / out_rate == pytest.approx(samples.size / rate, rel=0.01)
    reference = resample(samples, rate, out_rate)
    n = min(audio.size, reference.size)
    assert float(np.corrcoef(audio[:n], reference[:n])[0, 1]) > 0.98


@pytest.mark.parametrize(
    ("fmt", "out_rate", "kbps"), [("mp3_44100_128", 44_100, 128), ("mp3_22050_32", 22_050, 32)]
)
def test_mp3_rate_and_bitrate(
    fmt: str, out_rate: int, kbps: int, speech_samples: tuple[np.ndarray, int]
) -> None:
    samples, rate = speech_samples
    data = encode_audio(samples, rate, fmt)
    out = decode(data)
    assert out.source_rate == out_rate
    assert out.duration == pytest.approx(samples.size / rate, rel=0.05)
    with av.open(io.BytesIO(data)) as container:
        assert container.streams.audio[0].bit_rate == kbps * 1000
    assert len(data) * 8 / out.duration / 1000 == pytest.approx(kbps, rel=0.1)  # CBR, as the name says
    wav = decode(encode_audio(samples, rate, "wav"), target_rate=16_000)
    assert envelope_correlation(decode(data, target_rate=16_000).samples, wav.samples, 16_000) > 0.9


@pytest.mark.parametrize(
    ("fmt", "out_rate"), [("wav_16000", 16_000), ("flac_8000", 8000), ("aac_44100", 44_100)]
)
def test_containers_at_a_rate(fmt: str, out_rate: int, speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    for data in (encode_audio(samples, rate, fmt), b"".join(_stream(fmt, [samples], rate))):
        out = decode(data)
        assert out.source_rate == out_rate
        assert out.duration == pytest.approx(samples.size / rate, rel=0.05)
    wav = encode_audio(samples, rate, "wav_16000")
    assert struct.unpack("<I", wav[24:28])[0] == 16_000
    assert struct.unpack("<I", wav[40:44])[0] == len(wav) - 44


@pytest.mark.parametrize("fmt", ["ulaw_8000", "pcm_16000", "wav_8000", "mp3_22050_32"])
def test_rated_stream_matches_whole_encoding(
    fmt: str, speech_sentences: tuple[list[np.ndarray], int]
) -> None:
    """Sentence by sentence as speech streams it: every prefix plays, and the whole is the same audio."""
    sentences, rate = speech_sentences
    chunks = _stream(fmt, sentences, rate)
    assert all(chunks[:-1]), "each sentence should produce audio right away"
    streamed = b"".join(chunks)
    whole = encode_audio(np.concatenate(sentences), rate, fmt)
    total = sum(s.size for s in sentences) / rate
    if fmt in G711_DEMUXERS or fmt.startswith("pcm"):
        demuxer, out_rate = G711_DEMUXERS.get(fmt, "s16le"), int(fmt.split("_")[1])
        a, _ = decode_raw(streamed, demuxer, out_rate)
        b, _ = decode_raw(whole, demuxer, out_rate)
        assert abs(a.size - b.size) <= 2
        n = min(a.size, b.size)
        assert np.max(np.abs(a[:n] - b[:n])) < 0.01  # continuous resampling: no clicks at joins
        assert a.size / out_rate == pytest.approx(total, rel=0.01)
    else:
        durations = [decode(b"".join(chunks[: i + 1])).duration for i in range(len(chunks))]
        assert durations[0] > 0 and durations == sorted(durations)
        assert durations[-1] == pytest.approx(total, rel=0.05)
        assert decode(whole).duration == pytest.approx(total, rel=0.05)


# --- clean-up -------------------------------------------------------------------------------


def test_resample_keeps_duration(speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    out = resample(samples, rate, 16_000)
    assert out.dtype == np.float32
    assert out.size == pytest.approx(samples.size * 16_000 / rate, abs=2)


def test_loudness_meter_matches_bs1770() -> None:
    rate = 48_000
    sine = np.sin(2 * np.pi * 997 * np.arange(5 * rate) / rate)
    assert integrated_loudness(sine, rate) == pytest.approx(-3.01, abs=0.05)
    assert integrated_loudness(np.zeros(rate), rate) == float("-inf")


@pytest.mark.parametrize("gain", [0.05, 1.0])
def test_loudness_normalise_reaches_target(speech_samples: tuple[np.ndarray, int], gain: float) -> None:
    samples, rate = speech_samples
    out = loudness_normalise(samples * gain, rate, target_lufs=-20.0)
    assert integrated_loudness(out, rate) == pytest.approx(-20.0, abs=2.0)
    assert float(np.max(np.abs(out))) <= 10 ** (-1 / 20) + 1e-6
    silence = np.zeros(rate, dtype=np.float32)
    assert np.array_equal(loudness_normalise(silence, rate), silence)


def test_trim_silence(speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    core = trim_silence(samples, rate)
    rng = np.random.default_rng(5)
    pad = (rng.standard_normal(rate) * 1e-4).astype(np.float32)
    padded = np.concatenate([pad, pad, samples, pad])
    out = trim_silence(padded, rate)
    assert core.size <= out.size <= core.size + int(0.3 * rate)
    assert out.size < padded.size - int(2.5 * rate)
    assert trim_silence(pad, rate).size == 0


def test_deep_filter_removes_noise_and_keeps_speech_in_place(speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    rng = np.random.default_rng(11)
    clean = np.concatenate([np.zeros(rate, dtype=np.float32), samples])
    noise = rng.standard_normal(clean.size).astype(np.float32)
    noise *= np.sqrt(np.mean(np.square(samples)) / np.mean(np.square(noise))) / 10 ** (5 / 20)  # 5 dB SNR
    noisy = clean + noise
    out = deep_filter(noisy, rate)
    assert out.shape == noisy.shape and out.dtype == np.float32

    def db(x: np.ndarray) -> float:
        return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-20))

    assert db(clean) - db(out - clean) > 10  # was 5 dB: the residual is far below the speech
    noise_only = slice(int(0.1 * rate), int(0.9 * rate))
    assert db(out[noise_only]) < db(noisy[noise_only]) - 15
    # No lag: the cleaned speech lines up with the upload (DeepFilterNet's 30 ms delay is removed).
    lags = range(-200, 201, 5)
    corr = [float(np.dot(np.roll(out, lag)[rate:], clean[rate:])) for lag in lags]
    assert abs(list(lags)[int(np.argmax(corr))]) <= 5


def test_noisy_uploads_are_told_from_clean_ones(speech_samples: tuple[np.ndarray, int]) -> None:
    samples, rate = speech_samples
    rng = np.random.default_rng(5)
    noise = rng.standard_normal(samples.size).astype(np.float32)
    noise *= np.sqrt(np.mean(np.square(samples)) / np.mean(np.square(noise))) / 10 ** (8 / 20)
    assert is_noisy(samples + noise, rate)
    assert not is_noisy(samples + noise * 0.01, rate)


def test_require_speech_on_speech(speech_wav_bytes: bytes) -> None:
    audio = decode(speech_wav_bytes)
    assert audio.sample_rate == 22050 and 4 <= audio.duration <= 8
    seconds = require_speech(audio.samples, audio.sample_rate)
    assert seconds >= 2.0
    assert speech_seconds(audio.samples, audio.sample_rate) == seconds


def test_a_hiss_after_speech_is_not_counted_as_speech() -> None:
    """A reader followed by 3 s of white noise 25 dB under her voice: WebRTC VAD, having heard
    her, called the hiss speech (all 3 s); run both ways it counts her speech alone."""
    from pathlib import Path

    audio = decode((Path(__file__).parent / "librispeech" / "F_1069-133699-0000.flac").read_bytes())
    speech = np.asarray(audio.samples, dtype=np.float32)
    rng = np.random.default_rng(4)
    hiss = rng.standard_normal(3 * audio.sample_rate).astype(np.float32)
    hiss *= np.sqrt(np.mean(np.square(speech)) / np.mean(np.square(hiss))) / 10 ** (25 / 20)
    alone = speech_seconds(speech, audio.sample_rate)
    assert alone > 0.7 * audio.duration  # a reader: mostly speech
    assert speech_seconds(np.concatenate([speech, hiss]), audio.sample_rate) < alone + 0.3


def test_require_speech_refuses_silence(silence_wav_bytes: bytes) -> None:
    audio = decode(silence_wav_bytes)
    with pytest.raises(InvalidInput, match="^No speech found in sample$") as err:
        require_speech(audio.samples, audio.sample_rate)
    assert err.value.status_code == 400


def test_require_speech_refuses_tone(tone_wav_bytes: bytes) -> None:
    audio = decode(tone_wav_bytes)
    assert audio.source_rate == 44_100
    with pytest.raises(InvalidInput, match="^No speech found in reference audio$"):
        require_speech(audio.samples, audio.sample_rate, label="reference audio")
