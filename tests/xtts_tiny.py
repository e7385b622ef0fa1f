"""A tiny XTTS with random weights, written in the real XTTS-v2 directory layout.

The real weights cannot be fetched here (and are not ours to ship), so the XTTS path is
tested on a model of the same architecture with a 2-layer, 64-wide GPT and random weights:
`config.json` (an XttsConfig), `model.pth` ({"model": state_dict}, as coqui's checkpoints)
and `vocab.json` (a `tokenizers` BPE file with XTTS's special and language tokens and one
token per character). The HiFi-GAN decoder and the speaker encoder keep their fixed XTTS
sizes (coqui does not make them configurable), so the checkpoint is ~90 MB and synthesis
cost is dominated by the decoder, as with the real model. Random weights speak noise.
"""

from __future__ import annotations

import json
from pathlib import Path

SPECIAL_TOKENS = ["[STOP]", "[UNK]", "[SPACE]", "[START]"]
LANGUAGE_TOKENS = [
    "[en]",
    "[es]",
    "[fr]",
    "[de]",
    "[it]",
    "[pt]",
    "[pl]",
    "[tr]",
    "[ru]",
    "[nl]",
    "[cs]",
    "[ar]",
    "[zh-cn]",
    "[hu]",
    "[ko]",
    "[ja]",
    "[hi]",
]
CHARACTERS = list("abcdefghijklmnopqrstuvwxyz0123456789'.,!?-:;\"()")


def write_vocab(path: Path) -> dict[str, int]:
    """A minimal XTTS tokenizer file: special tokens first ([STOP]=0), then one token per character."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokens = SPECIAL_TOKENS + LANGUAGE_TOKENS + CHARACTERS
    vocab = {t: i for i, t in enumerate(tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="[UNK]"))
    tokenizer.add_special_tokens(SPECIAL_TOKENS + LANGUAGE_TOKENS)
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(path))
    return vocab


def build_tiny_xtts(
    dest: Path, *, seed: int = 0, max_audio_tokens: int = 40, layers: int = 2, width: int = 64
) -> Path:
    """Write config.json, model.pth and vocab.json of a random-weight XTTS into `dest`; return `dest`.

    `max_audio_tokens` bounds each sentence (random weights rarely pick the stop token):
    up to (max_audio_tokens - 3) GPT codes of 1024 samples at 22.05 kHz, ~46 ms each.
    """
    from app.engines.tts.xtts import _coqui, _torch

    XttsConfig, Xtts = _coqui()
    from TTS.tts.configs.xtts_config import XttsArgs

    torch = _torch()
    dest.mkdir(parents=True, exist_ok=True)
    vocab = write_vocab(dest / "vocab.json")
    args = XttsArgs(
        gpt_layers=layers,
        gpt_n_model_channels=width,
        gpt_n_heads=4,
        gpt_number_text_tokens=len(vocab),
        gpt_start_text_token=vocab["[START]"],
        gpt_stop_text_token=vocab["[STOP]"],
        gpt_num_audio_tokens=130,
        gpt_start_audio_token=128,
        gpt_stop_audio_token=129,
        gpt_max_audio_tokens=max_audio_tokens,
        gpt_max_text_tokens=402,
        gpt_max_prompt_tokens=70,
        gpt_use_perceiver_resampler=True,  # as XTTS-v2
        decoder_input_dim=width,
    )
    config = XttsConfig(model_args=args, gpt_cond_len=6, gpt_cond_chunk_len=3)
    torch.manual_seed(seed)
    model = Xtts(config)
    torch.save({"model": model.state_dict()}, dest / "model.pth")
    (dest / "config.json").write_text(json.dumps(config.to_dict(), indent=2), encoding="utf-8")
    return dest
