"""Voice cloning: the clone job end to end, and speaking with the cloned voice.

Target speakers must really differ from the base voice (Piper joe), so they are made by
espeak-ng (a formant synthesizer: a different "speaker" to any speaker encoder; installed
by `make test-deps`). Similarities are Resemblyzer cosines against a held-out clip the clone
never saw (different text, not part of any sample). Margins were measured with room to spare:
base joe vs the target ~0.45-0.55, clone ~0.75-0.8.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.audio import DecodedAudio, decode_audio
from app.core.config import Settings
from app.core.db import session_scope
from app.core.errors import InvalidInput
from app.engines.voices import VoiceContext
from app.voices.models import Voice
from tests.plugins.pitch import f0_ratio, median_f0
from tests.plugins.services import AppHarness, make_settings
from tests.plugins.waiting import wait_until

V = "/api/v1/voice"
RATE = 22_050
TARGET_VOICE = "en-us+f3"  # an espeak-ng female variant: F0 ~190 Hz, formants ~20% above joe's
OTHER_VOICE = "en+m3"

SAMPLE_A = (
    "Every morning I walk to the corner shop to buy bread and a newspaper. "
    "The owner always asks about my family, and we talk about the weather for a while."
)
SAMPLE_B = (
    "Then I head home, make a pot of coffee, and read the news before starting work. "
    "On Fridays my sister calls, and we plan what to cook for the weekend."
)
HELD_OUT = (
    "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background. "
    "It is easy to tell the depth of a well. These days a chicken leg is a rare dish."
)
SPEAK = (
    "Rice is often served in round bowls. The juice of lemons makes fine punch. "
    "Four hours of steady work faced us."
)
# What a clone made from English speech reads in French (the bank's French, the person's timbre).
FRENCH = "Chaque matin, nous prenons le train pour aller voir la mer avec nos amis."


# --------------------------------------------------------------------------- material


def _espeak_wav(voice: str, text: str) -> bytes:
    if shutil.which("espeak-ng") is None:
        message = "espeak-ng is not installed (make test-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "speech.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(path), text], check=True)
        return path.read_bytes()


def _decode(data: bytes) -> DecodedAudio:
    return decode_audio(data, target_rate=RATE, max_seconds=600, max_sample_rate=192_000)


def _embed(x: np.ndarray, rate: int = RATE) -> np.ndarray:
    from app.engines import registry

    return registry.get_speaker_encoder().embed(np.asarray(x, dtype=np.float32), rate)


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    from app.engines.speaker import cosine

    return cosine(a, b)


def _transcribe(x: np.ndarray, language: str, rate: int = RATE) -> list[str]:
    from app.audio import resample
    from app.engines import registry

    text = registry.get_stt("base").transcribe(resample(x, rate, 16_000), language=language).text
    return "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()


def _joe() -> Any:
    from app.engines import registry

    return registry.get_tts("joe")


def _steady_joe() -> Any:
    """Joe with Piper's sampling noise off: the same text gives the same audio every time, for
    checks that compare renderings (a take's rhythm and intonation otherwise vary; see below)."""
    from app.engines.tts.piper import PiperEngine

    joe = _joe()
    return PiperEngine(joe.model_path, joe.config_path, noise_scale=0.0, noise_w_scale=0.0)


def _test_settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "data")


@pytest.fixture(scope="module")
def target() -> dict[str, Any]:
    """The target speaker: two samples and a held-out clip (its embedding)."""
    a, b, held = (_espeak_wav(TARGET_VOICE, t) for t in (SAMPLE_A, SAMPLE_B, HELD_OUT))
    clip = np.asarray(_decode(held).samples, dtype=np.float32)
    return {"a": a, "b": b, "held": _embed(clip)}


@pytest.fixture(scope="module")
def clones(target: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same speaker cloned from one sample and from two, straight through the pipeline."""
    from app.cloning.pipeline import build_voice

    settings = _test_settings(tmp_path_factory.mktemp("clones"))
    seen: list[int] = []
    single = build_voice([_decode(target["a"])], settings, seen.append)
    multi = build_voice([_decode(target["a"]), _decode(target["b"])], settings, lambda p: None)
    return {"single": single, "multi": multi, "progress": seen}


def _speaker(result: Any) -> Any:
    """The cloned voice as requests hear it: its stored artifact, made a Synthesizer."""
    from app.engines.voices import VoiceContext, parse_artifact

    artifact = parse_artifact(result.artifact)
    return artifact.synthesizer(VoiceContext("clone", Settings(), lambda key: b""))


def _spoken_similarity(held: np.ndarray, result: Any = None, takes: int = 3) -> float:
    """Mean similarity to the speaker's held-out clip of SPEAK spoken `takes` times by joe (no
    result) or the clone: Piper samples noise, so one synthesis moves the figure by ~0.02 and a
    single take would decide a close call."""
    voice = _joe() if result is None else _speaker(result)
    sims = [
        _cos(_embed(np.concatenate(list(voice.stream(SPEAK))), voice.sample_rate), held) for _ in range(takes)
    ]
    return float(np.mean(sims))


def _profile(result: Any) -> Any:
    from app.engines.timbre.profile import TimbreProfile

    return TimbreProfile.from_dict(result.artifact["profile"])


# --------------------------------------------------------------------------- pure helpers


def test_held_out_part_is_the_end_and_at_least_two_seconds() -> None:
    from app.cloning.pipeline import split_held_out

    rng = np.random.default_rng(1)
    for seconds in (3.0, 6.0, 20.0, 100.0):
        x = rng.uniform(-0.5, 0.5, int(seconds * RATE)).astype(np.float32)
        calib, held = split_held_out(x, RATE)
        assert len(calib) + len(held) == len(x)
        assert np.array_equal(np.concatenate([calib, held]), x)
        want = min(max(0.3 * seconds, 2.0), 0.5 * seconds)
        assert held.size / RATE == pytest.approx(want, abs=0.45)


def test_the_held_out_share_of_speech_is_a_third_at_least_two_seconds_at_most_half() -> None:
    from app.cloning.pipeline import held_out_share

    assert held_out_share(20.0) == pytest.approx(0.3)
    assert held_out_share(5.0) == pytest.approx(0.4)  # 2 s of 5
    assert held_out_share(3.0) == pytest.approx(0.5)
    assert held_out_share(0.0) == 0.0  # no speech: nothing to hold out, no division by zero


def test_samples_of_different_speakers_are_named() -> None:
    from app.cloning.pipeline import check_same_speaker

    rng = np.random.default_rng(2)
    base = rng.normal(size=256)
    same = [base + 0.1 * rng.normal(size=256) for _ in range(2)]
    other = rng.normal(size=256)
    assert check_same_speaker(same) > 0.9
    with pytest.raises(InvalidInput, match="Samples 2 and 3 are from different speakers"):
        check_same_speaker([*same, other])


def test_joe_is_chosen_over_the_bank_s_blend_only_when_clearly_nearer_the_person() -> None:
    """Raw similarity before the transfer is a weak guide: joe's reading varies by ~0.01 from take
    to take, and a real speaker whose joe reading won by that much was cloned far better on the
    blend. joe stays a candidate: nearer by a clear margin, or with no bank installed, he is chosen."""
    from app.cloning.pipeline import _Base, choose_base

    joe = _Base("joe", RATE, lambda text: [], piper_key="joe")
    blend = _Base(
        "am_liam 0.55 + bm_george 0.45",
        24_000,
        lambda text: [],
        blend=(("am_liam", 0.55), ("bm_george", 0.45)),
    )
    assert choose_base([joe, blend], {"joe": 0.620, blend.label: 0.605}) is blend
    assert choose_base([joe, blend], {"joe": 0.560, blend.label: 0.605}) is blend
    assert choose_base([joe, blend], {"joe": 0.700, blend.label: 0.600}) is joe
    assert choose_base([joe], {"joe": 0.500}) is joe


def test_the_model_moves_the_pitch_of_a_wideband_clone_rendered_by_hifigan() -> None:
    """The bank's blend moves its pitch inside Kokoro where the mel mapping does its work; a
    narrowband upload or WORLD rendering alone goes the WORLD way (pitch, then the search)."""
    from app.cloning.pipeline import pitch_by_model

    assert pitch_by_model(16_000, "hifigan")  # LibriSpeech: 16 kHz, wideband
    assert pitch_by_model(48_000, "hifigan")
    assert not pitch_by_model(8_000, "hifigan")  # a phone call: no mix above 4 kHz
    assert not pitch_by_model(48_000, "world")  # rendered by WORLD alone


@pytest.mark.slow
def test_each_judge_keeps_its_own_embeddings_of_the_bank(tmp_path: Path) -> None:
    """The blend is chosen by comparing the person with the bank in one encoder's space: the bank
    as one encoder heard it is never handed to another in the same process (each keeps its own
    embeddings, in memory as in the file beside the voice packs)."""
    from app.cloning.bases import BANK_TEXT, bank_embeddings
    from app.engines import registry
    from app.engines.tts.kokoro import SAMPLE_RATE, KokoroSynthesizer, get_kokoro_engine

    settings = _test_settings(tmp_path)
    key = "af_heart"
    voice = KokoroSynthesizer(key, get_kokoro_engine(settings), ((key, 1.0),))
    reading = np.concatenate(list(voice.stream(BANK_TEXT)))
    for judge in (registry.get_speaker_encoder(), registry.get_second_judge()):
        stored = bank_embeddings(settings, judge, [key])[key]
        assert _cos(stored, judge.embed(reading, SAMPLE_RATE)) > 0.99, type(judge).__name__


# --------------------------------------------------------------------------- the pipeline


@pytest.mark.slow
def test_a_sample_without_speech_is_named(speech_samples: tuple[np.ndarray, int], tmp_path: Path) -> None:
    from app.cloning.pipeline import build_voice

    x, rate = speech_samples
    speech = DecodedAudio(x, rate, len(x) / rate, "wav", rate)
    hum = 0.01 * np.sin(2 * np.pi * 50 * np.arange(5 * rate) / rate).astype(np.float32)
    silent = DecodedAudio(hum, rate, 5.0, "wav", rate)
    with pytest.raises(InvalidInput, match="^Sample 2 has no speech"):
        build_voice([speech, silent], _test_settings(tmp_path), lambda p: None)


@pytest.mark.slow
def test_profile_estimation_recovers_a_known_timbre() -> None:
    """A 'synthetic speaker' (joe with a known warp and pitch): the statistics find both.

    Compared on the same utterance, both through WORLD. The F0 centre is only approximate:
    resynthesis changes which frames the tracker calls voiced, and joe's F0 spreads over more
    than an octave; LPC formants of one ~12 s utterance are good to a few percent (the tuning,
    not this estimate, decides the warp). The utterance is Piper's noise-free one: over random
    takes the +5 semitones read as 2.6-5.6 and the warp as 1.10-1.14 (measured), the steady
    take reads 4.3 and 1.15.
    """
    from app.cloning.analysis import alpha_from_formants, voice_stats
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.timbre.transformer import convert

    known = TimbreProfile(f0_shift_semitones=5.0, formant_alpha=1.15)
    x = _steady_joe().synthesize(HELD_OUT + " " + SAMPLE_A)
    source = voice_stats([convert(x, RATE, TimbreProfile())], RATE)
    target = voice_stats([convert(x, RATE, known)], RATE)
    assert alpha_from_formants(source, target) == pytest.approx(1.15, abs=0.07)
    semitones = 12 * math.log2(target.f0_hz / source.f0_hz)
    assert 3.0 < semitones < 6.5


@pytest.mark.slow
def test_progress_moves_through_every_stage(clones: dict[str, Any]) -> None:
    seen = clones["progress"]
    assert seen == sorted(seen), seen
    for stage in (12, 22, 30, 42, 50, 85, 92):
        assert stage in seen, (stage, seen)
    timings = clones["single"].artifact["timings"]
    assert set(timings) >= {"prepare", "embed", "base_voice", "statistics", "tune", "score"}


@pytest.mark.slow
def test_clone_is_closer_to_the_speaker_than_the_base_voice(
    clones: dict[str, Any], target: dict[str, Any]
) -> None:
    result = clones["single"]
    quality = result.artifact["quality"]
    assert quality["similarity"] == result.quality_similarity
    assert quality["similarity"] > quality["base_similarity"]  # the transfer moved the base closer
    assert quality["second_judge_similarity"] > quality["second_judge_base_similarity"]
    joe = _spoken_similarity(target["held"])
    clone = _spoken_similarity(target["held"], result)
    assert clone > joe + 0.15, (joe, clone)
    assert clone > 0.65


@pytest.mark.slow
def test_a_clone_from_two_samples_keeps_both(clones: dict[str, Any], target: dict[str, Any]) -> None:
    """Both samples are kept, checked as one speaker, and the two-sample clone is far nearer the
    speaker than joe. (Whether the second sample brings the clone nearer is judged on a real
    person below: on this espeak voice one sample and two scored within 0.03-0.06 of each other
    either way, the same on every run alone and otherwise inside the CI run.)"""
    multi = clones["multi"]
    assert len(multi.artifact["samples"]) == 2
    assert multi.artifact["quality"]["samples_min_similarity"] > 0.75
    assert _spoken_similarity(target["held"], multi, takes=1) > _spoken_similarity(target["held"]) + 0.15


@pytest.mark.slow
def test_a_second_sample_brings_a_real_clone_nearer_under_both_judges(tmp_path: Path) -> None:
    """His upload in two recordings (cut at the pause nearest its middle) against the first
    alone, both judged on the part of his recording neither heard. The first half holds too few
    words to pair a reading with, so that clone learns from the calibration text; with the
    second, from his own words. Measured +0.046 (Resemblyzer) and +0.093 (d-vector)."""
    from app.cloning.pipeline import build_voice, quietest_near
    from app.engines import registry

    upload, held = _person("M_1040-133433-0000.flac")
    middle = quietest_near(upload, RATE, len(upload) // 2, len(upload) // 2 + int(0.4 * RATE))
    halves = [upload[:middle], upload[middle:]]
    settings = _test_settings(tmp_path)
    judges = (registry.get_speaker_encoder(), registry.get_second_judge())
    refs = [judge.embed(held, RATE) for judge in judges]
    scores = {}
    for n in (1, 2):
        samples = [_recording(h) for h in halves[:n]]
        result = build_voice(samples, settings, lambda p: None)
        voice = _speaker(result)
        audio = np.concatenate(list(voice.stream(SPEAK)))
        rate = voice.sample_rate
        scores[n] = [_cos(j.embed(audio, rate), ref) for j, ref in zip(judges, refs, strict=True)]
        assert result.artifact["tuning"]["reading"] == ("calibration text" if n == 1 else "transcript")
    assert all(two > one + 0.01 for one, two in zip(scores[1], scores[2], strict=True)), scores


@pytest.mark.slow
def test_speed_and_pitch_still_work_with_a_cloned_voice(clones: dict[str, Any]) -> None:
    """Duration within 10% of the asked speed; F0 within 5% of the asked shift.

    Piper samples noise (each take has its own durations and intonation), which once hid a
    4-semitone shift in CI, so the engine here runs with Piper's noise off: takes differ only by
    what was asked and their F0 tracks compare frame by frame (tests/plugins/pitch.py says why
    not two medians).
    """
    voice = _speaker(clones["single"])  # a bank clone: Kokoro is deterministic
    rate = voice.sample_rate
    text = "The colt reared and threw the tall rider. Read verse out loud for pleasure."

    def say(**kw: float) -> np.ndarray:
        return np.concatenate(list(voice.stream(text, **kw)))

    plain = say()
    fast = say(speed=1.5)
    assert len(fast) / len(plain) == pytest.approx(1 / 1.5, rel=0.1)

    higher = say(pitch=4.0)
    assert len(higher) == pytest.approx(len(plain), rel=0.01)
    assert f0_ratio(higher[: len(plain)], plain[: len(higher)], rate) == pytest.approx(
        2 ** (4 / 12), rel=0.05
    )
    # The clone's own pitch is the speaker's (~190 Hz), not joe's (~100-130 Hz).
    engine = _steady_joe()
    assert median_f0(plain, rate) > 1.2 * median_f0(engine.synthesize(text), RATE)


def _click_ratio(y: np.ndarray, joins: list[int]) -> float:
    """Largest sample step within 2 ms of a join, over the 99.9th percentile step of the whole signal."""
    d = np.abs(np.diff(y.astype(np.float64)))
    ref = float(np.percentile(d, 99.9)) + 1e-9
    w = int(0.002 * RATE)
    return max(float(d[max(0, j - w) : j + w].max()) / ref for j in joins if 0 < j < len(d))


def _join_click_score(y: np.ndarray, joins: list[int]) -> float:
    """Median over joins of (largest sample step within 2 ms of the join) / (99th percentile step
    in the 20 ms around it). A click at the joins raises it at every join; speech that happens to
    be loud at one join does not move a median (a max over ~40 joins against a global percentile
    did: it failed CI at 1.63 with no click in the audio)."""
    d = np.abs(np.diff(y.astype(np.float64)))
    w, wide = int(0.002 * RATE), int(0.020 * RATE)
    floor = 1e-3 * float(d.max())  # silence: do not divide by nothing
    ratios = []
    for j in joins:
        if wide <= j < len(d) - wide:
            around = np.concatenate([d[j - wide : j - w], d[j + w : j + wide]])
            ratios.append(float(d[j - w : j + w].max()) / max(float(np.percentile(around, 99)), floor))
    return float(np.median(ratios))


@pytest.mark.slow
def test_chunked_conversion_has_no_clicks_at_joins(clones: dict[str, Any]) -> None:
    from app.engines.timbre.transformer import TimbreTransformer

    engine = _joe()
    profile = _profile(clones["single"])
    text = "The small pup gnawed a hole in the sock. Two blue fish swam in the tank. Her purse was full."
    chunks = list(engine.stream(text, profile=profile))
    assert len(chunks) >= 3
    joins = list(np.cumsum([len(c) for c in chunks])[:-1])
    assert _click_ratio(np.concatenate(chunks), joins) < 1.5
    # Arbitrary chunking in the middle of words (a live stream), not only at sentence ends.
    raw = engine.synthesize(text)
    transformer = TimbreTransformer(profile, RATE)
    pieces = [transformer.process(raw[i : i + 3001]) for i in range(0, len(raw), 3001)]
    pieces.append(transformer.flush())
    out = np.concatenate(pieces)
    assert len(out) == len(raw)
    joins = list(range(3001, len(raw), 3001))
    assert _join_click_score(out, joins) < 1.2  # measured 0.53-0.84 over voices and takes
    # The score does see clicks: the same audio with a -20 dB pulse at every join scores far higher.
    clicked = out.copy()
    for j in joins:
        clicked[j : j + 40] += 0.2 * float(np.abs(out).max())
    assert _join_click_score(clicked, joins) > 1.2


# --------------------------------------------------------------------------- through HTTP


def _start_clone(harness: AppHarness, headers: dict[str, str], name: str, wav: bytes) -> str:
    """POST one sample to the native family's voice-profiles; the new voice's id (its clone job runs)."""
    r = harness.client.post(
        f"{V}/voice-profiles",
        headers=headers,
        data={"name": name},
        files={"file": ("sample.wav", wav, "audio/wav")},
    )
    assert r.status_code == 200, r.text
    return str(r.json()["voice_id"])


def _poll(harness: AppHarness, url: str, headers: dict[str, str]) -> dict[str, Any]:
    return wait_until(
        lambda: harness.client.get(url, headers=headers).json(),
        lambda body: str(body["status"]).lower() in ("completed", "failed"),
        interval=0.25,
    )


def _generate(harness: AppHarness, headers: dict[str, str], voice_id: str, text: str) -> np.ndarray:
    """A native TTS job with the voice, waited for; its audio decoded."""
    job = harness.client.post(
        f"{V}/voices/{voice_id}/generate", headers=headers, json={"input_text": text, "audio_format": "wav"}
    )
    assert job.status_code == 202, job.text
    status = _poll(harness, f"{V}/tts-jobs/{job.json()['job_id']}/status", headers)
    assert status["status"] == "completed", status
    return _decode(harness.client.get(status["output_url"]).content).samples


def _credits(harness: AppHarness, headers: dict[str, str]) -> int:
    return int(harness.client.get("/api/v1/credits", headers=headers).json()["credits"])


@pytest.mark.slow
def test_clone_through_http_speaks_like_the_speaker(embedded: AppHarness, target: dict[str, Any]) -> None:
    from app.storage import get_store

    account = embedded.make_user(credits=5000)
    h = account.headers
    voice = _poll(embedded, f"{V}/voices/{_start_clone(embedded, h, 'Target', target['a'])}/status", h)
    assert voice["status"] == "COMPLETED", voice
    similarity = voice["quality"]["similarity"]
    assert similarity is not None and 0.0 < similarity <= 1.0

    store = get_store(embedded.settings)
    with session_scope(embedded.settings) as session:
        row = session.query(Voice).filter(Voice.voice_id == voice["voice_id"]).one()
        assert row.artifact_key is not None
        artifact = json.loads(store.get(row.artifact_key))
        assert row.embedding is not None and len(row.embedding) == 256
        clean_key = f"voices/{row.uuid}/clean/0.flac"
    # A female speaker starts from the voice bank's female voices, not from joe.
    assert artifact["engine"] == "kokoro-clone", artifact["tuning"]["base_voices"]
    assert all(part["voice"][1] == "f" for part in artifact["voices"]), artifact["voices"]
    assert artifact["quality"]["similarity"] == pytest.approx(similarity)
    assert artifact["quality"]["similarity"] > artifact["quality"]["base_similarity"]
    assert 0.0 < artifact["quality"]["second_judge_similarity"] <= 1.0
    assert _decode(store.get(clean_key)).duration > 3.0

    spoken = _generate(embedded, h, voice["voice_id"], SPEAK)
    joe = _joe().synthesize(SPEAK)
    assert _cos(_embed(spoken), _embed(joe)) < 0.85  # not joe any more
    assert _cos(_embed(spoken), target["held"]) > _cos(_embed(joe), target["held"]) + 0.15

    # Cloned from English, it reads Spanish in the same timbre (the bank's Spanish phonemes).
    spanish = "El perro corre por el parque cada mañana antes del desayuno."
    heard = _generate(embedded, h, voice["voice_id"], spanish)
    assert _cos(_embed(heard), _embed(spoken)) > 0.75  # the same voice
    words = _transcribe(heard, "es")
    assert {"perro", "parque", "mañana"} <= set(words), words


@pytest.mark.slow
def test_samples_of_two_people_fail_with_a_reason_and_cost_nothing(
    embedded: AppHarness, target: dict[str, Any], speech_wav_bytes: bytes
) -> None:
    account = embedded.make_user(credits=5000)
    c, h = embedded.client, account.headers
    r = c.post(
        f"{V}/voice-profiles/multi-sample",
        headers=h,
        data={"name": "Two people"},
        files=[
            ("voice_files", ("a.wav", target["a"], "audio/wav")),
            ("voice_files", ("b.wav", speech_wav_bytes, "audio/wav")),
        ],
    )
    assert r.status_code == 200, r.text
    voice = _poll(embedded, f"{V}/voices/{r.json()['voice_id']}/status", h)
    assert voice["status"] == "FAILED"
    assert voice["error_message"].startswith("Samples 1 and 2 are from different speakers"), voice
    assert _credits(embedded, h) == 5000


def test_deleting_a_voice_while_it_clones_stops_the_job_and_charges_nothing(
    embedded: AppHarness, target: dict[str, Any]
) -> None:
    """The owner deletes the voice mid-clone: the clone job ends failed with the reason, the
    credits it held come back, and the worker stops instead of finishing the clone and writing
    its artifact and cleaned samples for a voice that no longer exists."""
    from app.jobs.models import Job
    from app.jobs.queue import get_queue
    from tests.plugins.services import blob_files

    account = embedded.make_user(credits=5000)
    c, h = embedded.client, account.headers
    voice_id = _start_clone(embedded, h, "Changed my mind", target["a"])

    def job() -> Job:
        with session_scope(embedded.settings) as session:
            row = session.query(Job).filter(Job.owner_id == account.user_id).one()
            session.expunge(row)
            return row

    wait_until(job, lambda j: j.status == "processing" and j.progress >= 12, interval=0.1)
    assert c.delete(f"{V}/voices/{voice_id}", headers=h).status_code == 204
    stopped = job()
    assert stopped.status == "failed"
    assert stopped.error == "The voice was deleted before cloning finished"
    assert _credits(embedded, h) == 5000
    queue = get_queue(embedded.settings)
    wait_until(queue.depth, lambda running: running == 0, interval=0.25)  # the worker let go
    assert job().status == "failed" and _credits(embedded, h) == 5000
    assert blob_files(embedded.settings) == []  # the upload went with the voice; nothing came after


# --------------------------------------------------------------------------- real people

LIBRISPEECH = Path(__file__).parent / "librispeech"


def _person(name: str) -> tuple[np.ndarray, np.ndarray]:
    """(upload, held-out) of one LibriSpeech utterance: the pipeline's own split at a pause."""
    from app.cloning.pipeline import split_held_out

    audio = _decode((LIBRISPEECH / name).read_bytes())
    return split_held_out(np.asarray(audio.samples, dtype=np.float32), RATE)


def _recording(x: np.ndarray) -> DecodedAudio:
    """A part of a LibriSpeech recording (16 kHz, decoded at RATE) as the clone job takes a sample."""
    return DecodedAudio(x, RATE, len(x) / RATE, "flac", 16_000)


def test_the_held_out_part_holds_a_third_of_the_speech_however_long_the_pauses() -> None:
    """The job scores a clone on the end of the upload: ~30% of its speech, not of its length.
    Her reading followed by 3 s of room tone (a pause of another LibriSpeech recording, 30 dB
    down) keeps a third of her words in the held-out part, where a third of the length was
    mostly the pause. A short upload (his four words, 2.2 s of speech) holds nothing out: the
    voice learns from all of it."""
    from app.audio import speech_seconds
    from app.cloning.pipeline import SCORED_MIN_SPEECH_SECONDS, held_out_parts, prepare_samples

    upload, _ = _person("F_1069-133699-0000.flac")
    his, _ = _person("M_1034-121119-0000.flac")
    pause = his[int(3.4 * RATE) :]
    assert speech_seconds(pause, RATE) < 0.1
    level = np.sqrt(np.mean(np.square(upload)) / np.mean(np.square(pause))) / 10 ** (30 / 20)
    x = np.concatenate([upload, np.resize(pause, 3 * RATE) * np.float32(level)])
    (sample,) = prepare_samples([_recording(x)], RATE)
    assert len(sample.audio) > len(upload) + 2 * RATE  # the room tone is not trimmed as silence
    ((calib, held),) = held_out_parts([sample], RATE)
    assert np.array_equal(np.concatenate([calib, held]), sample.audio)
    assert 0.25 < speech_seconds(held, RATE) / sample.speech_seconds < 0.4
    assert len(_transcribe(held, "en")) >= 6  # words, not the pause

    # Two samples: each gives the end of its own speech.
    halves = [_recording(h) for h in np.array_split(upload, 2)]
    both = prepare_samples(halves, RATE)
    for part, (calib, held) in zip(both, held_out_parts(both, RATE), strict=True):
        assert np.array_equal(np.concatenate([calib, held]), part.audio)
        assert 0.2 < speech_seconds(held, RATE) / part.speech_seconds < 0.45

    (short,) = prepare_samples([_recording(his)], RATE)
    assert 1.0 < short.speech_seconds < SCORED_MIN_SPEECH_SECONDS
    ((calib, held),) = held_out_parts([short], RATE)
    assert held.size == 0 and np.array_equal(calib, short.audio)


def test_both_judges_tell_people_apart_on_real_speech() -> None:
    from app.engines import registry

    (a_up, a_held), (b_up, b_held) = _person("F_1069-133699-0000.flac"), _person("M_1040-133433-0000.flac")
    for judge in (registry.get_speaker_encoder(), registry.get_second_judge()):
        same = [_cos(judge.embed(a_up, RATE), judge.embed(a_held, RATE))]
        same.append(_cos(judge.embed(b_up, RATE), judge.embed(b_held, RATE)))
        other = _cos(judge.embed(a_up, RATE), judge.embed(b_held, RATE))
        assert min(same) > other + 0.25, (type(judge).__name__, same, other)


def test_both_judges_hear_a_person_the_same_at_any_level() -> None:
    """A clip's gain is not its speaker: a person's upload at -12 dB and +6 dB against their
    held-out clip scores what it scores at its own level (before both judges heard every clip at
    one loudness, the same clone scored 0.65 or 0.78 by its output gain alone)."""
    from app.engines import registry

    upload, held = _person("M_1040-133433-0000.flac")
    for judge in (registry.get_speaker_encoder(), registry.get_second_judge()):
        ref = judge.embed(held, RATE)
        scores = [_cos(judge.embed(upload * gain, RATE), ref) for gain in (0.25, 1.0, 2.0)]
        assert max(scores) - min(scores) < 0.01, (type(judge).__name__, scores)


@pytest.mark.slow
def test_a_real_person_is_cloned_closer_than_joe_under_both_judges(tmp_path: Path) -> None:
    """A woman's 9 s upload: the clone starts from the bank's female voices, and on the part of
    her recording it never saw it is nearer her than joe by both judges (tuned on the first only)."""
    from app.cloning.pipeline import build_voice
    from app.engines import registry

    upload, held = _person("F_1069-133699-0000.flac")
    result = build_voice(
        [_recording(upload)],
        _test_settings(tmp_path),
        lambda p: None,
    )
    assert result.artifact["engine"] == "kokoro-clone"
    parts: list[dict[str, Any]] = result.artifact["voices"]  # type: ignore[assignment]
    assert all(part["voice"][1] == "f" for part in parts)
    voice, joe = _speaker(result), _joe()
    spoken = {name: np.concatenate(list(v.stream(SPEAK))) for name, v in (("clone", voice), ("joe", joe))}
    rates = {"clone": voice.sample_rate, "joe": RATE}
    for judge, margin in ((registry.get_speaker_encoder(), 0.15), (registry.get_second_judge(), 0.2)):
        ref = judge.embed(held, RATE)
        sims = {name: _cos(judge.embed(spoken[name], rates[name]), ref) for name in spoken}
        assert sims["clone"] > sims["joe"] + margin, (type(judge).__name__, sims)
    french = np.concatenate(list(voice.stream(FRENCH, language="fr")))
    for language, text, audio in (("en", SPEAK, spoken["clone"]), ("fr", FRENCH, french)):
        heard = _transcribe(audio, language, voice.sample_rate)
        said = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text.lower()).split()
        assert len(set(said) - set(heard)) <= 2, (language, heard)  # intelligible: two words missed at most


def test_the_mel_mix_moves_how_the_bands_vary_together_to_the_persons() -> None:
    """One real person's speech mapped toward another's: the band mapping alone matches each
    band's mean and spread; the mix also brings the covariance of the first cepstral coefficients
    (how the bands move together: the spectral shape frame by frame) nearer the other person's."""
    from scipy.fft import dct

    from app.engines.timbre import vocoder

    (a, _), (b, _) = _person("F_1069-133699-0000.flac"), _person("M_1040-133433-0000.flac")
    mapping = vocoder.learn_mapping(a, b, RATE)
    bands_only = vocoder.MelMapping(mapping.scale, mapping.offset)
    assert len(mapping.mix) == vocoder.MIX_COEFFS**2 and len(mapping.centre) == vocoder.MIX_COEFFS
    k = vocoder.MIX_COEFFS

    def covariance(frames: np.ndarray) -> np.ndarray:
        return np.cov(dct(frames, axis=0, norm="ortho")[:k])

    source, wanted = vocoder.speech_frames(a, RATE), covariance(vocoder.speech_frames(b, RATE))
    error = {
        name: float(
            np.linalg.norm(covariance(m.apply(source.astype(np.float32))) - wanted) / np.linalg.norm(wanted)
        )
        for name, m in (("bands", bands_only), ("mix", mapping))
    }
    assert error["mix"] < 0.7 * error["bands"], error  # measured 0.29 -> 0.17 (half way)
    # Each band keeps the person's mean: the mix turns around it.
    means = {
        name: m.apply(source.astype(np.float32)).mean(axis=1)
        for name, m in (("bands", bands_only), ("mix", mapping))
    }
    assert np.abs(means["mix"] - means["bands"]).max() < 0.05
    # A narrowband target (8 kHz telephone speech has nothing above 4 kHz) gets the bands only.
    assert vocoder.learn_mapping(a, b, RATE, band_limit_hz=4000.0).mix == ()
    # Half a second of speech is too little to estimate a covariance from: the bands only.
    short = vocoder.learn_mapping(a[: RATE // 2], b, RATE)
    assert short.mix == () and len(short.scale) == vocoder.N_MELS


def test_a_pause_of_room_tone_does_not_change_what_the_mapping_learns() -> None:
    """His upload is four words and then 2.5 s of the room (~20 dB under his voice, within the
    loudness range the mapping counts as speech). The mapping learnt from it is the one learnt
    from his words alone: the VAD keeps the room's frames out of the statistics. Counted by
    loudness alone, 63% of the frames were the room's, and the mapping moved the clone's bands
    by 0.86 (natural-log units, ~7 dB) on average toward it."""
    from app.audio import speech_seconds
    from app.engines.timbre import vocoder

    clone, _ = _person("F_1069-133699-0000.flac")  # another person's speech stands for the clone
    his, _ = _person("M_1034-121119-0000.flac")
    words = his[: int(3.4 * RATE)]
    assert speech_seconds(his[len(words) :], RATE) < 0.1 and len(his) > len(words) + 2 * RATE
    with_room, without = vocoder.learn_mapping(clone, his, RATE), vocoder.learn_mapping(clone, words, RATE)
    assert np.abs(np.subtract(with_room.offset, without.offset)).mean() < 0.05
    assert np.abs(np.subtract(with_room.scale, without.scale)).max() < 0.05
    assert with_room.mix and np.abs(np.subtract(with_room.mix, without.mix)).max() < 0.05


def test_the_residual_codebook_brings_each_frame_nearer_the_persons() -> None:
    """Parallel speech by construction: a person's upload through WORLD with formants raised is
    the "clone" reading what they said. The band mapping and the mix move its statistics; the
    residual codebook, learnt on the first part, also moves each frame of the rest (speech it
    never saw, the same words in time) nearer the person's own frame."""
    from dataclasses import replace

    from scipy.fft import dct

    from app.engines.timbre import vocoder, world
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.timbre.transformer import apply_profile

    person, _ = _person("F_1069-133699-0000.flac")
    warp = TimbreProfile(formant_alpha=1.12, breathiness=0.3)
    clone = world.synthesize(apply_profile(world.analyze(person.astype(np.float64), RATE), warp))
    cut = int(0.6 * len(person))
    learn, check = slice(0, cut), slice(cut, len(person))
    mapping = vocoder.learn_mapping(clone[learn], person[learn], RATE)
    seconds = cut / RATE
    same_time = (np.array([0.0, seconds]), np.array([0.0, seconds]))  # WORLD keeps the timing
    full = vocoder.with_residual(mapping, clone[learn], RATE, person[learn], RATE, same_time)
    entries = len(full.residual) // vocoder.RESIDUAL_COEFFS
    assert 8 <= entries <= vocoder.RESIDUAL_ENTRIES and len(full.residual_keys) == len(full.residual)
    assert replace(full, residual_keys=(), residual=()) == mapping

    k = vocoder.RESIDUAL_COEFFS
    wanted = vocoder.log_mel(person[check], RATE).astype(np.float64)
    loud = np.log(np.exp(wanted).sum(axis=0))
    frames = loud > loud.max() - vocoder.SPEECH_RANGE
    source = vocoder.log_mel(clone[check], RATE)

    def error(m: vocoder.MelMapping) -> float:
        moved = m.apply(source).astype(np.float64)
        gap = dct(moved - wanted, axis=0, norm="ortho")[:k, frames]
        return float(np.sqrt(np.mean(np.square(gap))))

    errors = {"mapping": error(mapping), "residual": error(full)}
    assert errors["residual"] < 0.97 * errors["mapping"], errors  # measured 1.109 -> 1.038
    # Paired with the wrong moments (the person's speech a second later), it learns noise.
    late = (same_time[0], same_time[1] + 1.0)
    shifted = vocoder.with_residual(mapping, clone[learn], RATE, person[learn], RATE, late)
    assert error(shifted) > errors["residual"], (error(shifted), errors)
    # Too little parallel speech to pair: the mapping as it was.
    half = (np.array([0.0, 0.5]), np.array([0.0, 0.5]))
    assert (
        vocoder.with_residual(mapping, clone[: RATE // 2], RATE, person[: RATE // 2], RATE, half) == mapping
    )


def test_the_voice_learns_its_mapping_from_the_whole_upload_and_the_score_without_the_held_out_part() -> None:
    """The clone job scores a clone on the part of the upload the tuning never heard, then keeps
    a voice whose mel mapping and residual codebook learnt from all of the upload (a short upload
    otherwise lost a third of its speech to the score). The scored mapping does not change
    whatever the held-out part holds; the stored one follows the person there too."""
    from scipy.fft import dct

    from app.cloning import pipeline
    from app.engines.timbre import vocoder, world
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.timbre.transformer import apply_profile

    upload, _ = _person("F_1069-133699-0000.flac")
    calib, held = pipeline.split_held_out(upload, RATE)
    # Parallel speech by construction (as in the residual test): she is her own base voice, and
    # the profile (formants raised) makes the clone; it reads what she said, in her timing.
    profile = TimbreProfile(formant_alpha=1.12, breathiness=0.3)
    base_reading = world.analyze(upload.astype(np.float64), RATE)
    clone = world.synthesize(apply_profile(base_reading, profile)).astype(np.float32)
    seconds = len(upload) / RATE
    timing = (np.array([0.0, seconds]), np.array([0.0, seconds]))
    seen = np.concatenate([calib, np.zeros_like(held)])
    mappings = pipeline._with_mel_mapping(profile, clone, RATE, 16_000, seen, upload, timing)
    assert mappings.scored.mel_residual and mappings.stored.mel_residual
    # WORLD resynthesised this reading: its corrections are averaged over more frames than
    # Kokoro's own reading's (sharper ones changed its sounds).
    assert mappings.stored.mel_residual_smoothing == vocoder.RESIDUAL_SMOOTH_FRAMES_WORLD
    assert mappings.stored != mappings.scored

    # Another person in the held-out part: the score's mapping is the same, the voice's is not.
    other, _ = _person("M_1040-133433-0000.flac")
    swapped = np.concatenate([calib, np.resize(other, len(held))])
    changed = pipeline._with_mel_mapping(profile, clone, RATE, 16_000, seen, swapped, timing)
    assert changed.scored == mappings.scored
    assert changed.stored != mappings.stored

    # On the held-out part, the stored voice's frames are nearer hers than the scored one's.
    k = vocoder.RESIDUAL_COEFFS
    wanted = vocoder.log_mel(held, RATE).astype(np.float64)
    loud = np.log(np.exp(wanted).sum(axis=0))
    frames = loud > loud.max() - vocoder.SPEECH_RANGE
    clone_held = vocoder.log_mel(clone[len(calib) :], RATE)

    def error(p: TimbreProfile) -> float:
        mapping = p.mel_mapping
        assert mapping is not None
        moved = mapping.apply(clone_held).astype(np.float64)
        n = min(moved.shape[1], wanted.shape[1])
        gap = dct(moved[:, :n] - wanted[:, :n], axis=0, norm="ortho")[:k, frames[:n]]
        return float(np.sqrt(np.mean(np.square(gap))))

    errors = {"stored": error(mappings.stored), "scored": error(mappings.scored)}
    assert errors["stored"] < 0.97 * errors["scored"], errors  # measured 0.99 -> 0.78


def test_a_reading_is_paired_with_the_person_by_what_was_said() -> None:
    """joe reads what a man said; `content_timing` pairs the two recordings through Whisper's
    encoder. Each word of joe's reading, carried over to the man's recording, lands on the same
    word as he said it (word times from Whisper on each recording alone), across a 2 s pause of
    his that joe's reading does not have."""
    import difflib

    from app.audio import resample
    from app.cloning.pipeline import content_timing
    from app.engines import registry

    stt = registry.get_stt("base")
    person, _ = _person("M_1040-133433-0000.flac")
    heard = stt.transcribe(resample(person, RATE, 16_000))
    reading = np.concatenate(list(_joe().stream(heard.text)))
    rate = _joe().sample_rate
    person_frames = stt.content_frames(resample(person, RATE, 16_000))
    reading_s, person_s = content_timing(stt, reading, rate, person_frames)
    assert np.all(np.diff(reading_s) > 0) and np.all(np.diff(person_s) >= -1e-9)

    def words(audio: np.ndarray, at: int) -> list[Any]:
        return stt.transcribe(resample(audio, at, 16_000), word_timestamps=True).words

    def plain(w: Any) -> str:
        return "".join(ch for ch in w.word.lower() if ch.isalnum())

    said, read = words(person, RATE), words(reading, rate)
    matcher = difflib.SequenceMatcher(a=[plain(w) for w in read], b=[plain(w) for w in said], autojunk=False)
    landed = []
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            ours, theirs = read[block.a + k], said[block.b + k]
            at = float(np.interp((ours.start + ours.end) / 2, reading_s, person_s))
            landed.append(theirs.start - 0.1 <= at <= theirs.end + 0.1)
    assert len(landed) >= 15, landed
    assert np.mean(landed) >= 0.85, landed  # measured 0.96 (0.11 with the encoder's position left in)


def test_the_parallel_reading_is_the_person_s_words_at_most_nine_seconds(tmp_path: Path) -> None:
    """The clone job's parallel speech: a 20 s upload is cut at a pause before 9 s and
    transcribed; the base voice's reading of the transcript is paired with her speech from start
    to end. Speech in another language than the clone's gets no transcript (the base could not
    read it), so the clone is built without the residual."""
    from app.cloning import pipeline

    settings = _test_settings(tmp_path)
    person, _ = _person("F_1069-133699-0000.flac")
    long_calib = np.tile(person, 3)[: 20 * RATE]
    heard = pipeline.hear_upload(settings, long_calib, RATE, None)
    assert heard is not None and len(heard.text.split()) >= pipeline.READING_MIN_WORDS
    speech = heard.speech
    assert 8.5 * RATE <= len(speech) <= pipeline.PARALLEL_SECONDS * RATE
    assert np.array_equal(speech, long_calib[: len(speech)])
    joe = _joe()
    reading = np.concatenate(list(joe.stream(heard.text)))
    read_seconds = len(reading) / joe.sample_rate
    assert 0.5 * len(speech) / RATE < read_seconds < 2.0 * len(speech) / RATE
    timing = pipeline.reading_timing(settings, heard, reading, joe.sample_rate)
    assert timing is not None
    reading_s, speaker_s = timing  # the reading paired with her speech, start to end
    assert reading_s[-1] == pytest.approx(read_seconds, abs=0.05)
    assert speaker_s[-1] == pytest.approx(len(speech) / RATE, abs=0.05)
    assert pipeline.hear_upload(settings, long_calib, RATE, "fr") is None
    # Four words ("Chapter 99, the law."): too few to pair; the bases read the calibration text.
    few_words, _ = _person("M_1034-121119-0000.flac")
    assert pipeline.hear_upload(settings, few_words, RATE, None) is None


def test_the_upload_s_language_is_heard_on_the_encoding_that_pairs_it(tmp_path: Path) -> None:
    """The clone job learns the upload's language from the Whisper encoding it pairs frames with
    (transcription would encode a 30 s window again to detect it): English for a LibriSpeech
    reader, French and Spanish for the bank's voices; a clone of French speech made for French
    hears her French words to read."""
    from app.audio import resample
    from app.cloning import pipeline
    from app.engines import registry
    from app.engines.tts.kokoro import SAMPLE_RATE, KokoroSynthesizer, get_kokoro_engine

    settings = _test_settings(tmp_path)
    stt = registry.get_stt("base", settings)
    person, _ = _person("M_1040-133433-0000.flac")
    assert stt.content_frames_and_language(resample(person, RATE, 16_000))[1] == "en"
    engine = get_kokoro_engine(settings)
    spanish = "Cada mañana tomamos el tren para ir a ver el mar con nuestros amigos de la escuela."
    said = {}
    for voice, text, code in (("ff_siwis", FRENCH + " " + FRENCH, "fr"), ("ef_dora", spanish, "es")):
        audio = np.concatenate(list(KokoroSynthesizer(voice, engine, ((voice, 1.0),)).stream(text)))
        assert stt.content_frames_and_language(resample(audio, SAMPLE_RATE, 16_000))[1] == code, voice
        said[code] = resample(audio, SAMPLE_RATE, RATE)
    heard = pipeline.hear_upload(settings, said["fr"], RATE, "fr")
    assert heard is not None
    assert {"matin", "train", "mer"} <= set(heard.text.lower().replace(",", " ").split()), heard.text
    assert pipeline.hear_upload(settings, said["fr"], RATE, "en") is None  # not the clone's language


@pytest.mark.slow
def test_the_mel_band_mapping_brings_a_real_clone_nearer_under_both_judges(tmp_path: Path) -> None:
    """A woman's 10 s upload: her clone as it is stored (WORLD, then her mel band statistics and
    cepstral mix, and HiFi-GAN) against the same clone rendered by WORLD alone (the profile
    without the mapping, as clones made before it speak). On the part of her recording it never
    saw, both judges hear the mapped clone nearer her (measured 0.777 -> 0.822 / 0.646 -> 0.765
    with the judges at one loudness and the residual codebook; the bench's 19 speakers in
    docs/benchmarks.md)."""
    from dataclasses import replace

    from app.cloning.pipeline import build_voice
    from app.engines import registry
    from app.engines.voices import parse_artifact

    upload, held = _person("F_125-121124-0000.flac")
    result = build_voice(
        [_recording(upload)],
        _test_settings(tmp_path),
        lambda p: None,
    )
    mapped = parse_artifact(result.artifact)
    profile = _profile(result)
    assert len(profile.mel_scale) == 80 and len(profile.mel_offset) == 80 and len(profile.mel_mix) == 400
    world_only = replace(mapped, profile=profile.for_vocoder("world"))
    context = VoiceContext("clone", Settings(), lambda key: b"")
    voices = {"mapped": mapped.synthesizer(context), "world": world_only.synthesizer(context)}
    spoken = {name: np.concatenate(list(v.stream(SPEAK))) for name, v in voices.items()}
    rate = voices["mapped"].sample_rate
    for judge in (registry.get_speaker_encoder(), registry.get_second_judge()):
        ref = judge.embed(held, RATE)
        sims = {name: _cos(judge.embed(audio, rate), ref) for name, audio in spoken.items()}
        assert sims["mapped"] > sims["world"] + 0.03, (type(judge).__name__, sims)
    heard = _transcribe(spoken["mapped"], "en", rate)
    said = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in SPEAK.lower()).split()
    assert len(set(said) - set(heard)) <= 2, heard  # as intelligible as the other clones


@pytest.mark.slow
def test_a_clone_reading_another_language_leaves_its_residual_out() -> None:
    """The residual codebook holds corrections for the sounds of the language it was learnt in
    (the voice's own): a clone's English goes through it, its French through the band mapping
    and mix only (with it, French WER rose 7.5% -> 11.0%)."""

    from app.core.config import get_settings
    from app.engines.timbre.profile import TimbreProfile
    from app.engines.tts.kokoro import KokoroSynthesizer, get_kokoro_engine

    rng = np.random.default_rng(7)
    profile = TimbreProfile(
        mel_scale=(1.0,) * 80,
        mel_offset=(0.0,) * 80,
        mel_residual_keys=tuple(float(v) for v in rng.normal(0.0, 5.0, 8 * 20)),
        mel_residual=tuple(float(v) for v in rng.normal(0.0, 2.0, 8 * 20)),
    )
    engine = get_kokoro_engine(get_settings())

    def spoken(p: TimbreProfile, text: str, language: str) -> np.ndarray:
        voice = KokoroSynthesizer("clone", engine, (("af_heart", 1.0),), profile=p, multilingual=True)
        return np.concatenate(list(voice.stream(text, language=language)))

    without = profile.without_residual()
    assert without.mel_residual == () and without.mel_scale == profile.mel_scale
    assert not np.allclose(spoken(profile, SPEAK, "en"), spoken(without, SPEAK, "en"), atol=1e-3)
    assert np.allclose(spoken(profile, FRENCH, "fr"), spoken(without, FRENCH, "fr"), atol=1e-6)


@pytest.mark.slow
def test_a_real_clone_learns_from_the_person_s_own_words_under_both_judges(tmp_path: Path) -> None:
    """A man's 9 s upload: the clone job transcribes its start, the base voice reads
    those words, and the residual codebook learnt from the two readings side by side is stored
    with the voice. On the part of his recording it never saw, the judges hear the clone with it
    nearer him than the same clone without it, and it stays intelligible."""
    from dataclasses import replace

    from app.cloning.pipeline import build_voice
    from app.engines import registry
    from app.engines.timbre import vocoder
    from app.engines.voices import parse_artifact

    upload, held = _person("M_1040-133433-0000.flac")
    result = build_voice(
        [_recording(upload)],
        _test_settings(tmp_path),
        lambda p: None,
    )
    profile = _profile(result)
    assert result.artifact["tuning"]["reading"] == "transcript"  # tuned on his words read by the base
    # The mapping learnt from them moves the envelope, Kokoro his pitch: no WORLD, no search.
    assert result.artifact["tuning"]["chosen"] == "pitch by the model"
    assert profile.f0_by_model and not profile.moves_in_world
    assert profile.f0_target_mean_hz is not None and profile.f0_target_mean_hz != profile.f0_source_mean_hz
    assert 32 * 20 <= len(profile.mel_residual) == len(profile.mel_residual_keys)
    # Kokoro read his words itself: the corrections are the sharper ones (WORLD's take more frames).
    assert profile.mel_residual_smoothing == vocoder.RESIDUAL_SMOOTH_FRAMES
    # The clone the job scored had a codebook of its own, learnt without the held-out part.
    assert result.artifact["mel_mapping"]["scored_residual_entries"] >= 32
    stored = parse_artifact(result.artifact)
    without = replace(stored, profile=profile.without_residual())
    context = VoiceContext("clone", Settings(), lambda key: b"")
    voices = {"residual": stored.synthesizer(context), "without": without.synthesizer(context)}
    spoken = {name: np.concatenate(list(v.stream(SPEAK))) for name, v in voices.items()}
    rate = voices["residual"].sample_rate
    gains = []
    for judge in (registry.get_speaker_encoder(), registry.get_second_judge()):
        ref = judge.embed(held, RATE)
        sims = {name: _cos(judge.embed(audio, rate), ref) for name, audio in spoken.items()}
        gains.append(sims["residual"] - sims["without"])
    # Measured +0.009 / +0.030 on these three sentences: nearer on the two judges' mean, and
    # neither judge hears it further.
    assert np.mean(gains) > 0.01 and min(gains) > -0.01, gains
    heard = _transcribe(spoken["residual"], "en", rate)
    said = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in SPEAK.lower()).split()
    assert len(set(said) - set(heard)) <= 2, heard


@pytest.mark.slow
def test_a_short_upload_makes_a_voice_from_all_its_speech_and_reports_no_score(embedded: AppHarness) -> None:
    """Four words ("Chapter 99, the law": 2.2 s of speech in 5.9 s): too little to hold a part
    out and judge the clone on it. The voice is made from all of it and speaks nearer him than
    joe on his other recording; its quality similarity is null rather than a cosine against the
    pause at its end."""
    from app.audio import encode_audio
    from app.storage import get_store

    upload, held = _person("M_1034-121119-0000.flac")
    account = embedded.make_user(credits=5000)
    h = account.headers
    voice_id = _start_clone(embedded, h, "Four words", encode_audio(upload, RATE, "wav"))
    voice = _poll(embedded, f"{V}/voices/{voice_id}/status", h)
    assert voice["status"] == "COMPLETED", voice
    assert voice["quality"]["similarity"] is None
    with session_scope(embedded.settings) as session:
        row = session.query(Voice).filter(Voice.voice_id == voice_id).one()
        assert row.artifact_key is not None
        artifact = json.loads(get_store(embedded.settings).get(row.artifact_key))
    assert artifact["quality"]["held_out_seconds"] == 0
    assert (
        artifact["quality"]["similarity"] is None and artifact["quality"]["second_judge_similarity"] is None
    )
    spoken = _generate(embedded, h, voice_id, SPEAK)
    joe = _joe().synthesize(SPEAK)
    # Measured 0.654 against joe's 0.51.
    assert _cos(_embed(spoken), _embed(held)) > _cos(_embed(joe), _embed(held)) + 0.1


@pytest.mark.slow
def test_a_noisy_upload_is_cleaned_before_cloning(embedded: AppHarness) -> None:
    """Her recording with white noise at 5 dB SNR: the clone job runs DeepFilterNet3 on it (the
    upload is noisy, denoise not even asked), and the sample it keeps is the cleaned one."""
    from app.audio import encode_audio
    from app.audio.denoise import estimate_snr_db
    from app.storage import get_store

    upload, _ = _person("F_1069-133699-0000.flac")
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(upload.size).astype(np.float32)
    noise *= np.sqrt(np.mean(np.square(upload)) / np.mean(np.square(noise))) / 10 ** (5 / 20)
    noisy = np.clip(upload + noise, -1, 1)
    account = embedded.make_user(credits=5000)
    voice_id = _start_clone(embedded, account.headers, "Noisy", encode_audio(noisy, RATE, "wav"))
    voice = _poll(embedded, f"{V}/voices/{voice_id}/status", account.headers)
    assert voice["status"] == "COMPLETED", voice
    with session_scope(embedded.settings) as session:
        row = session.query(Voice).filter(Voice.voice_id == voice["voice_id"]).one()
        clean_key = f"voices/{row.uuid}/clean/0.flac"
    kept = _decode(get_store(embedded.settings).get(clean_key)).samples
    assert estimate_snr_db(kept, RATE) > estimate_snr_db(noisy, RATE) + 8
