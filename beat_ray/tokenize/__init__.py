"""Tokenizer stage: 12-lead R-peak detection and beat tokens (see layout.py for the contract).

Records with a non-empty `Tokens.flags[i]` have no tokens and must be dropped downstream.
"""
from beat_ray.tokenize.corpus import load_or_tokenize, token_report, tokenize, tokenize_corpus, tokens_for
from beat_ray.tokenize.detect import detect_batch, detect_r_peaks
from beat_ray.tokenize.layout import MODEL_KEYS, TokenizerConfig, Tokens
from beat_ray.tokenize.score import BEAT_SYMBOLS, beat_samples, score_beats
from beat_ray.tokenize.windows import token_bounds

__all__ = [
           "BEAT_SYMBOLS",
           "MODEL_KEYS",
           "TokenizerConfig",
           "Tokens",
           "beat_samples",
           "detect_batch",
           "detect_r_peaks",
           "load_or_tokenize",
           "score_beats",
           "token_bounds",
           "tokenize",
           "tokenize_corpus",
           "token_report",
           "tokens_for",
]
