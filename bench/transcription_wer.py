"""Benchmark: how the audio is fed to Whisper base, and the WER that comes out.

Run by hand:  .venv/bin/python bench/transcription_wer.py

Issue 18 item 4. Passages with known text: Harvard lists 1-4 (40 sentences) read by joe (Piper)
and by af_heart (Kokoro), ~60 s each per list pair, transcribed with the same Whisper base the
server uses (`registry.get_stt`) under several decodings: Silero VAD pieces (the server's way
today), whole 30 s windows without VAD, and beam sizes 5 and 1. WER after lower-casing, spelling
numbers and dropping punctuation. The LibriSpeech dev set in ../shared/data has no transcripts,
so only the synthetic half of the issue's measurement can be made here. Reported, never asserted.
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
warnings.filterwarnings("ignore")

import jiwer  # noqa: E402
from voice_matrix import HARVARD_1, HARVARD_2, norm_words  # noqa: E402

from app.core.config import Settings  # noqa: E402
from app.engines import registry  # noqa: E402
from app.engines.base import synthesize  # noqa: E402
from app.engines.stt.whisper import resample_to_16k  # noqa: E402

HARVARD_3 = (
    "The small pup gnawed a hole in the sock. The fish twisted and turned on the bent hook. "
    "Press the pants and sew a button on the vest. The swan dive was far short of perfect. "
    "The beauty of the view stunned the young boy. Two blue fish swam in the tank. "
    "Her purse was full of useless trash. The colt reared and threw the tall rider. "
    "It snowed, rained, and hailed the same morning. Read verse out loud for pleasure."
)
HARVARD_4 = (
    "Hoist the load to your left shoulder. Take the winding path to reach the lake. "
    "Note closely the size of the gas tank. Wipe the grease off his dirty face. "
    "Mend the coat before you go out. The wrist was badly strained and hung limp. "
    "The stray cat gave birth to kittens. The young girl gave no clear response. "
    "The meal was cooked before the bell rang. What joy there is in living."
)
PASSAGES = (HARVARD_1 + " " + HARVARD_2, HARVARD_3 + " " + HARVARD_4)
DECODINGS: tuple[tuple[str, dict[str, object]], ...] = (
    ("VAD pieces, beam 5 (today)", {"vad_filter": True, "beam_size": 5}),
    ("30 s windows, beam 5", {"vad_filter": False, "beam_size": 5}),
    ("VAD pieces, beam 1", {"vad_filter": True, "beam_size": 1}),
    ("30 s windows, beam 1", {"vad_filter": False, "beam_size": 1}),
)


def main() -> None:
    settings = Settings()
    from app.engines.tts.kokoro import KokoroSynthesizer, get_kokoro_engine

    voices = {
        "joe": registry.get_piper_engine("joe", settings),
        "af_heart": KokoroSynthesizer("af_heart", get_kokoro_engine(settings), (("af_heart", 1.0),)),
    }
    stt = registry.get_stt("base", settings)
    audio = {
        (name, k): resample_to_16k(synthesize(voice, text), voice.sample_rate)
        for name, voice in voices.items()
        for k, text in enumerate(PASSAGES)
    }
    seconds = sum(len(x) for x in audio.values()) / 16_000
    print(f"{len(audio)} passages, {seconds:.0f} s of speech")
    print(f"{'decoding':28} {'WER joe':>8} {'WER af_heart':>12} {'WER all':>8} {'RTF':>6}")
    for label, options in DECODINGS:
        refs, hyps, by_voice = [], [], {name: ([], []) for name in voices}
        started = time.perf_counter()
        for (name, k), x in audio.items():
            text = stt.transcribe(x, language="en", **options).text  # type: ignore[arg-type]
            ref, hyp = norm_words(PASSAGES[k]), norm_words(text)
            refs.append(ref)
            hyps.append(hyp)
            by_voice[name][0].append(ref)
            by_voice[name][1].append(hyp)
        rtf = (time.perf_counter() - started) / seconds
        wer = {name: 100 * jiwer.wer(r, h) for name, (r, h) in by_voice.items()}
        print(
            f"{label:28} {wer['joe']:7.1f}% {wer['af_heart']:11.1f}% {100 * jiwer.wer(refs, hyps):7.1f}% "
            f"{rtf:6.2f}"
        )
    print("passage lengths (s):", ", ".join(f"{len(x) / 16_000:.0f}" for x in audio.values()))


if __name__ == "__main__":
    main()
