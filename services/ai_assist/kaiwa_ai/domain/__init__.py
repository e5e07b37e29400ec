from .guard import refusal
from .model import EMBEDDED_MODEL, LANGUAGES, LENGTHS, MAX_TEXT, TONES, Change, RewriteRequest, RewriteResult, Rewritten
from .prompt import messages, new_fence, unfenced
from .protect import Protected, find_protected, missing_tokens
from .request import validate_rewrite
from .rewriter import rewrite
from .tone import Scored, ToneSuggestion, suggest

__all__ = [
    "refusal",
    "EMBEDDED_MODEL",
    "LANGUAGES",
    "LENGTHS",
    "MAX_TEXT",
    "TONES",
    "Change",
    "RewriteRequest",
    "RewriteResult",
    "Rewritten",
    "messages",
    "new_fence",
    "unfenced",
    "Protected",
    "find_protected",
    "missing_tokens",
    "validate_rewrite",
    "rewrite",
    "Scored",
    "ToneSuggestion",
    "suggest",
]
