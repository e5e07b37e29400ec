"""AI-03 on every result: what makes a backend's rewrite unusable, in words (None: usable)."""

from __future__ import annotations

from .language import detect
from .protect import Protected, find_protected, mask, missing_tokens

MAX_GROWTH = 3  # a rewrite more than 3x the draft (plus 400) is not a rewrite


def refusal(draft: str, language: str, protected: list[Protected], output: str) -> str | None:
    if not output.strip():
        return "the model returned an empty rewrite"
    if len(output) > MAX_GROWTH * len(draft) + 400:
        return f"the model's rewrite is {len(output)} characters for a {len(draft)}-character draft"
    missing = missing_tokens(protected, output)
    if missing:
        shown = ", ".join(repr(t[:40]) for t in missing[:5])
        return f"the model changed or dropped protected text ({shown}): names, numbers and ids must stay as written"
    masked, _ = mask(output, find_protected(output, "en"))
    found = detect(masked)
    if found is not None and found != language:
        return f"the model answered in {found!r}, not in the draft's language {language!r}"
    return None
