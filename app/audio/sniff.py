"""Container sniffing by magic bytes.

The client's Content-Type and file name are never trusted: browsers and SDKs send
`application/octet-stream` or lie, and the decoder must be picked from the bytes.
"""

from __future__ import annotations

from app.core.errors import UnsupportedMedia

# What `sniff_container` can answer; also the names `decode_audio` reports.
CONTAINERS: tuple[str, ...] = ("wav", "mp3", "ogg", "flac", "mp4", "webm", "aac")

# How many leading bytes callers should pass (an ID3 tag is skipped when it fits).
SNIFF_BYTES = 64 * 1024

_SUPPORTED_HUMAN = "WAV, MP3, OGG, FLAC, MP4/M4A, WebM or AAC"


def _is_adts(head: bytes, i: int = 0) -> bool:
    """ADTS AAC: 12-bit sync 0xFFF and layer bits 00 (what MPEG audio never uses)."""
    if len(head) < i + 2 or head[i] != 0xFF:
        return False
    b1 = head[i + 1]
    if b1 & 0xF6 != 0xF0:  # sync nibble + layer 00; ID and protection bits are free
        return False
    if len(head) >= i + 3:
        profile_sfi = (head[i + 2] >> 2) & 0x0F  # sampling frequency index
        if profile_sfi > 12:
            return False
    return True


def _is_mpeg_audio(head: bytes, i: int = 0) -> bool:
    """MPEG-1/2/2.5 layer I-III frame header, checked field by field to avoid false hits."""
    if len(head) < i + 3 or head[i] != 0xFF:
        return False
    b1, b2 = head[i + 1], head[i + 2]
    if b1 & 0xE0 != 0xE0:  # 11-bit frame sync
        return False
    version = (b1 >> 3) & 0x03
    layer = (b1 >> 1) & 0x03
    if version == 0x01 or layer == 0x00:  # reserved version; layer 00 is ADTS territory
        return False
    bitrate_index = (b2 >> 4) & 0x0F
    rate_index = (b2 >> 2) & 0x03
    return bitrate_index != 0x0F and rate_index != 0x03


def _id3_size(head: bytes) -> int:
    """Total length of a leading ID3v2 tag (header + syncsafe size + optional footer)."""
    size = 0
    for b in head[6:10]:
        size = (size << 7) | (b & 0x7F)
    footer = 10 if head[5] & 0x10 else 0
    return 10 + size + footer


def _describe(head: bytes) -> str:
    """A short, safe description of what the bytes look like, for the error message."""
    if not head:
        return "empty file"
    if head.startswith(b"\x89PNG"):
        return "looks like a PNG image"
    if head.startswith(b"\xff\xd8\xff"):
        return "looks like a JPEG image"
    if head.startswith(b"%PDF"):
        return "looks like a PDF"
    if head.startswith(b"PK\x03\x04"):
        return "looks like a ZIP archive"
    sample = head[:512]
    try:
        sample.decode("utf-8")
        return "looks like text"
    except UnicodeDecodeError:
        pass
    return "unrecognised header " + head[:8].hex(" ")


def sniff_container(head: bytes) -> str:
    """Name the container of `head` (the file's first bytes, or all of it) or raise UnsupportedMedia.

    Answers one of CONTAINERS. An ID3v2 tag is skipped when `head` is long enough to see
    past it, so ID3-tagged FLAC/AAC are recognised; otherwise ID3 means MP3.
    """
    if len(head) >= 12 and head[:4] in (b"RIFF", b"RIFX", b"RF64", b"BW64") and head[8:12] == b"WAVE":
        return "wav"
    if head.startswith(b"OggS"):
        return "ogg"
    if head.startswith(b"fLaC"):
        return "flac"
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if len(head) >= 10 and head.startswith(b"ID3"):
        # Look past the tag when we can (offsets, not slices: `head` may be the whole upload).
        end = _id3_size(head)
        if head[end : end + 4] == b"fLaC":
            return "flac"
        if _is_adts(head, end):
            return "aac"
        return "mp3"
    if _is_adts(head):
        return "aac"
    if _is_mpeg_audio(head):
        return "mp3"
    raise UnsupportedMedia(
        f"File is not a supported audio format ({_describe(head)}); send {_SUPPORTED_HUMAN}"
    )
