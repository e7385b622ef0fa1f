"""Audio in and out: sniffing, limited reads, decoding, encoding (whole and streamed), clean-up."""

from app.audio.clean import (
    integrated_loudness,
    limit_peaks,
    loudness_normalise,
    require_speech,
    resample,
    speech_seconds,
    to_mono,
    trim_silence,
)
from app.audio.decode import DecodedAudio, decode_audio
from app.audio.encode import (
    AUDIO_FORMATS,
    PCM_RATE,
    WAV_UNKNOWN_SIZE,
    OutputFormat,
    StreamEncoder,
    check_format,
    content_type,
    encode_audio,
    file_extension,
    has_libvorbis,
    parse_format,
    wav_header,
)
from app.audio.limits import read_limited, read_limited_sync
from app.audio.sniff import CONTAINERS, SNIFF_BYTES, sniff_container

__all__ = [
    "AUDIO_FORMATS",
    "CONTAINERS",
    "PCM_RATE",
    "SNIFF_BYTES",
    "WAV_UNKNOWN_SIZE",
    "DecodedAudio",
    "OutputFormat",
    "StreamEncoder",
    "check_format",
    "content_type",
    "decode_audio",
    "encode_audio",
    "file_extension",
    "has_libvorbis",
    "integrated_loudness",
    "limit_peaks",
    "loudness_normalise",
    "parse_format",
    "read_limited",
    "read_limited_sync",
    "require_speech",
    "resample",
    "sniff_container",
    "speech_seconds",
    "to_mono",
    "trim_silence",
    "wav_header",
]
