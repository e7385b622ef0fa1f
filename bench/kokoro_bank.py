"""Kokoro's voice bank: first audio and RTF per voice, Whisper round trip per language.

Run through bench/voice_matrix.py (its docstring says what is measured and how).
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import jiwer

from app.core.config import Settings
from app.engines import catalogue, registry
from app.engines.base import synthesize
from app.engines.stt.whisper import resample_to_16k

# 12 words (or as many characters' worth) per language: the first-audio sentence.
TWELVE_WORDS = {
    "en": "Please remember to bring your umbrella because it might rain later today.",
    "es": "Por favor recuerda traer tu paraguas porque podría llover más tarde hoy.",
    "fr": "N'oublie pas ton parapluie parce qu'il pourrait pleuvoir plus tard aujourd'hui.",
    "hi": "कृपया अपना छाता साथ लाना याद रखें क्योंकि आज बाद में बारिश हो सकती है।",
    "it": "Ricordati di portare l'ombrello perché più tardi oggi potrebbe piovere davvero.",
    "ja": "今日は後で雨が降るかもしれないので、傘を持ってくるのを忘れないでください。",
    "pt": "Por favor lembre de trazer seu guarda-chuva porque pode chover mais tarde hoje.",
    "zh": "请记得带上你的雨伞，因为今天晚些时候可能会下雨。",
}

# Three passages per language for the round trip (the first is also the long RTF text, repeated).
PASSAGES: dict[str, tuple[str, ...]] = {
    "en": (
        "The old lighthouse stood at the edge of the harbor for more than a century. Every evening the "
        "keeper climbed the narrow stairs, cleaned the heavy glass, and lit the lamp before sunset.",
        "Our train leaves the central station at half past eight. If we miss it, the next one is not "
        "until noon, so please be ready on time.",
        "The museum opened a new exhibition about the history of flight. Children can sit in a real "
        "cockpit and learn how pilots read their instruments.",
    ),
    "es": (
        "El viejo faro se levantaba al borde del puerto desde hacía más de un siglo. Cada tarde el "
        "guardián subía las escaleras estrechas y encendía la lámpara antes del anochecer.",
        "Nuestro tren sale de la estación central a las ocho y media. Si lo perdemos, el siguiente no "
        "llega hasta el mediodía.",
        "El museo abrió una nueva exposición sobre la historia de la aviación. Los niños pueden "
        "sentarse en una cabina de verdad.",
    ),
    "fr": (
        "Le vieux phare se dressait au bord du port depuis plus d'un siècle. Chaque soir, le gardien "
        "montait l'escalier étroit et allumait la lampe avant la nuit.",
        "Notre train quitte la gare centrale à huit heures et demie. Si nous le manquons, le suivant "
        "n'arrive qu'à midi.",
        "Le musée a ouvert une nouvelle exposition sur l'histoire de l'aviation. Les enfants peuvent "
        "s'asseoir dans un vrai cockpit.",
    ),
    "it": (
        "Il vecchio faro si ergeva sul bordo del porto da più di un secolo. Ogni sera il guardiano "
        "saliva le scale strette e accendeva la lampada prima del tramonto.",
        "Il nostro treno parte dalla stazione centrale alle otto e mezza. Se lo perdiamo, il prossimo "
        "arriva solo a mezzogiorno.",
        "Il museo ha aperto una nuova mostra sulla storia del volo. I bambini possono sedersi in una "
        "vera cabina di pilotaggio.",
    ),
    "pt": (
        "O velho farol ficava na beira do porto havia mais de um século. Todas as noites o faroleiro "
        "subia a escada estreita e acendia a lâmpada antes do anoitecer.",
        "Nosso trem sai da estação central às oito e meia. Se perdermos, o próximo só chega ao meio-dia.",
        "O museu abriu uma nova exposição sobre a história da aviação. As crianças podem sentar em "
        "uma cabine de verdade.",
    ),
    "hi": (
        "पुराना प्रकाशस्तंभ सौ साल से भी अधिक समय से बंदरगाह के किनारे खड़ा था। हर शाम रखवाला सीढ़ियाँ "
        "चढ़कर दीपक जलाता था।",
        "हमारी ट्रेन साढ़े आठ बजे मुख्य स्टेशन से निकलती है। अगर हम इसे चूक गए तो अगली ट्रेन दोपहर में आएगी।",
        "संग्रहालय ने उड़ान के इतिहास पर एक नई प्रदर्शनी खोली है। बच्चे असली कॉकपिट में बैठ सकते हैं।",
    ),
    "ja": (
        "古い灯台は百年以上も港の端に立っていました。毎晩、灯台守は狭い階段を上り、日が沈む前にランプを灯しました。",
        "私たちの電車は八時半に中央駅を出発します。乗り遅れたら、次の電車は昼まで来ません。",
        "博物館で空の歴史についての新しい展示が始まりました。子どもたちは本物の操縦席に座ることができます。",
    ),
    "zh": (
        "这座古老的灯塔在港口边上矗立了一百多年。每天傍晚，守塔人都会爬上狭窄的楼梯，在太阳下山之前点亮灯。",
        "我们的火车八点半从中央车站出发。如果错过了，下一班要到中午才来。",
        "博物馆开办了一个关于飞行历史的新展览。孩子们可以坐在真正的驾驶舱里。",
    ),
}
GOALS = {"en": 0.08}  # every other language: 0.15
CHARACTER_LANGUAGES = ("zh", "ja", "hi")
ZH_PROMPT = "以下是普通话的句子。"  # Whisper base writes traditional characters without it
VOICES_PER_LANGUAGE = 8  # every voice but English (its 8 best-graded)
GRADED = ("a", "a-", "b+", "b", "b-", "c+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    return " ".join(re.sub(r"[^\w\s]|_", " ", text).split())


def error_rate(language: str, refs: Sequence[str], hyps: Sequence[str]) -> float:
    refs_n, hyps_n = [normalise(r) for r in refs], [normalise(h) for h in hyps]
    if language in CHARACTER_LANGUAGES:
        return float(jiwer.cer([r.replace(" ", "") for r in refs_n], [h.replace(" ", "") for h in hyps_n]))
    return float(jiwer.wer(refs_n, hyps_n))


def reading(language: str, text: str) -> str:
    """What `text` sounds like: Japanese as katakana (pyopenjtalk reads 百年 and 100年 alike),
    Mandarin as toned pinyin syllables with Whisper's digits read as numerals first."""
    if language == "ja":
        import pyopenjtalk

        return re.sub(r"[^\u30a0-\u30ff]", "", pyopenjtalk.g2p(text, kana=True))
    if language == "zh":
        import cn2an
        from pypinyin import Style, lazy_pinyin

        spoken = cn2an.transform(unicodedata.normalize("NFKC", text), "an2cn")
        return " ".join(s for s in lazy_pinyin(spoken, style=Style.TONE3) if s.isalnum())
    raise ValueError(f"no reading for {language}")


READ_LANGUAGES = ("ja", "zh")


def reading_error_rate(language: str, refs: Sequence[str], hyps: Sequence[str]) -> float:
    """A second judge for the languages Whisper may write one way or another: the error over what
    the text sounds like (kana characters for Japanese, pinyin syllables for Mandarin), so a
    homophone Whisper picks (東台 for 灯台, both とうだい) or a digit for a numeral is not an error."""
    refs_r, hyps_r = [reading(language, r) for r in refs], [reading(language, h) for h in hyps]
    if language == "ja":
        return float(jiwer.cer(refs_r, hyps_r))
    return float(jiwer.wer(refs_r, hyps_r))


def first_audio(key: str, text: str, runs: int = 3) -> float:
    speaker = registry.get_tts(key)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        chunks = speaker.stream(text)
        next(chunks)
        times.append(time.perf_counter() - t0)
        for _ in chunks:
            pass
    return statistics.median(times)


def rtf(key: str, text: str, runs: int = 2) -> float:
    speaker = registry.get_tts(key)
    values = []
    for _ in range(runs):
        t0 = time.perf_counter()
        audio = synthesize(speaker, text)
        values.append((time.perf_counter() - t0) / (len(audio) / speaker.sample_rate))
    return statistics.median(values)


def _grade(voice: catalogue.BuiltinVoice) -> str:
    return next((t[len("grade-") :] for t in voice.tags if t.startswith("grade-")), "")


def run_bank(every_voice: bool = True, language: str | None = None, round_trip_only: bool = False) -> None:
    models_env = os.environ.get("CHORUS_MODELS_DIR")
    tmp = None if models_env else tempfile.TemporaryDirectory(prefix="chorus-bench-")
    models_dir = Path(models_env) if models_env else Path(tmp.name)  # type: ignore[union-attr]
    settings = Settings(env="dev", data_dir=models_dir.parent, models_dir=models_dir)
    print(f"cores available: {len(os.sched_getaffinity(0))}; load average {os.getloadavg()[0]:.2f}")
    t0 = time.perf_counter()
    registry.get_tts("af_heart", settings)
    print(f"Kokoro load (model joined from 4 parts, sha256-checked): {time.perf_counter() - t0:.2f} s")
    first_audio("af_heart", TWELVE_WORDS["en"], runs=1)  # first-call overheads (graph, phonemizer)

    voices = [
        v
        for v in catalogue.KOKORO_VOICES
        if (every_voice or _grade(v) in GRADED) and language in (None, v.language) and not round_trip_only
    ]
    print(f"\n{'voice':14s} {'locale':6s} {'grade':5s} {'first audio':>11s} {'RTF long':>8s}")
    firsts: dict[str, float] = {}
    rtfs: dict[str, float] = {}
    for v in voices:
        long_text = " ".join(PASSAGES[v.language] * 2)
        firsts[v.key] = first_audio(v.key, TWELVE_WORDS[v.language])
        rtfs[v.key] = rtf(v.key, long_text)
        print(
            f"{v.key:14s} {v.locale:6s} {_grade(v) or '-':5s} {firsts[v.key]:10.3f}s {rtfs[v.key]:8.3f}",
            flush=True,
        )
    if voices:
        f_med, f_max = statistics.median(firsts.values()), max(firsts.values())
        r_med, r_max = statistics.median(rtfs.values()), max(rtfs.values())
        print(
            f"\nfirst audio: median {f_med:.3f} s, max {f_max:.3f} s; "
            f"RTF: median {r_med:.3f}, max {r_max:.3f} ({len(voices)} voices)"
        )

    stt = registry.get_stt("base", settings)
    print(f"\n{'language':8s} {'metric':6s} {'error':>6s} {'goal':>5s}  voices (worst passage)")
    for family, passages in PASSAGES.items():
        if language not in (None, family):
            continue
        speakers = catalogue.voices_speaking(family)[:VOICES_PER_LANGUAGE]
        refs, hyps, worst = [], [], (0.0, "")
        per_voice: list[str] = []
        for v in speakers:
            speaker = registry.get_tts(v.key, settings)
            first = len(refs)
            for passage in passages:
                audio = synthesize(speaker, passage)
                samples = resample_to_16k(audio, speaker.sample_rate)
                prompt = ZH_PROMPT if family == "zh" else None
                heard = stt.transcribe(samples, language=family, prompt=prompt).text
                refs.append(passage)
                hyps.append(heard)
                one = error_rate(family, [passage], [heard])
                if one > worst[0]:
                    worst = (one, f"{v.key}: {heard[:60]!r}")
            per_voice.append(f"{v.key} {error_rate(family, refs[first:], hyps[first:]):.1%}")
        pooled = error_rate(family, refs, hyps)
        goal = GOALS.get(family, 0.15)
        metric = "CER" if family in CHARACTER_LANGUAGES else "WER"
        verdict = "ok" if pooled <= goal else ("report" if family == "hi" else "MISSED")
        print(
            f"{family:8s} {metric:6s} {pooled:6.1%} {goal:5.0%}  {', '.join(v.key for v in speakers)} "
            f"[{verdict}] worst {worst[0]:.0%} {worst[1]}",
            flush=True,
        )
        print(f"{'':8s} per voice: {', '.join(per_voice)}", flush=True)
        if family in READ_LANGUAGES:
            print(f"{'':8s} by reading: {reading_error_rate(family, refs, hyps):.1%}", flush=True)
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    run_bank()
