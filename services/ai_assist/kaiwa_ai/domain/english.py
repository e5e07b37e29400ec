"""English tone rules of the embedded rewriter; the word lists are in data/en.toml.

formal     contractions expanded, informal words replaced (hi → Hello, thanks →
           thank you, gonna → going to), "!" → ".", imperatives → "Please send ..."
polite     imperatives and "Please ..." → "Could you please ...?", "You need to ..." →
           "Could you please ...?", refusals cushioned ("I'm afraid we cannot ...")
casual     contractions, "Hello" → "Hi", "thank you" → "thanks", "Kind regards" → "Cheers"
assertive  hedges dropped ("I think", "just", "kind of"), "Could you ...?" → "Please ...",
           "!" → "."
humorous   a lighter thanks and apology, and a playful closing line (see rewriter.py)
"""

from __future__ import annotations

import re
from functools import lru_cache

from .text import Edit, Sentence, apply, capitalise, compile_rules, load

_FLAGS = re.IGNORECASE
_APOS = "['’]"
_EXPAND_SPECIAL = [
    (re.compile(r"\b(won)['’]t\b", _FLAGS), "will not"),
    (re.compile(r"\b(can)['’]t\b", _FLAGS), "cannot"),
    (re.compile(r"\b(let)['’]s\b", _FLAGS), "let us"),
    (re.compile(r"\b(it|that|there|here|what|who|where|how|he|she)['’]s been\b", _FLAGS), r"\1 has been"),
    (re.compile(r"\b(it|that|there|here|what|who|where|how|he|she)['’]s\b", _FLAGS), r"\1 is"),
    (re.compile(r"\b(\w+)n['’]t\b", _FLAGS), r"\1 not"),
    (re.compile(r"\b(\w+)['’]re\b", _FLAGS), r"\1 are"),
    (re.compile(r"\b(I)['’]m\b"), r"\1 am"),
    (re.compile(r"\b(\w+)['’]ll\b", _FLAGS), r"\1 will"),
    (re.compile(r"\b(\w+)['’]ve\b", _FLAGS), r"\1 have"),
    (re.compile(r"\b(\w+)['’]d (\w+ed)\b", _FLAGS), r"\1 had \2"),
    (re.compile(r"\b(\w+)['’]d\b", _FLAGS), r"\1 would"),
]
_PREFIXED = re.compile(r"^(I'm afraid |I'm sorry, but |Please )(?!I\b)([A-Z])(?=[a-z])")
_CONTRACTION = re.compile(rf"\b\w+{_APOS}(?:t|re|m|ll|ve|d|s)\b|\bcannot\b", _FLAGS)


@lru_cache(maxsize=1)
def _rules() -> dict:
    data = load("en")
    verbs = "|".join(data["imperative_verbs"].split())
    tones = {name: compile_rules(spec.get("replace", []), _FLAGS, verbs) for name, spec in data["tone"].items()}
    contract = [
        (re.compile(rf"\b{expanded}\b(?=\s+[\w\ue000-\uf8ff])", _FLAGS), short) for expanded, short in data["contractions"]
    ]
    return {
        "data": data,
        "tones": tones,
        "contract": contract,
        "imperative": re.compile(rf"^(please\s+)?({verbs})\b", _FLAGS),
        "shorter": compile_rules(data["length"]["shorter"]["replace"], _FLAGS),
        "longer": compile_rules(data["length"]["longer"]["replace"], _FLAGS),
        "courteous": compile_rules(data["length"]["longer"]["courteous"], _FLAGS),
    }


def count_contractions(text: str) -> int:
    """Contractions in a text ("don't", "we're", ...; not possessives): a measure for tests."""
    return sum(1 for m in _CONTRACTION.finditer(text) if not m.group(0).lower().endswith(("'s", "’s")) or _is_pronoun_s(m))


def _is_pronoun_s(match: re.Match) -> bool:
    return match.group(0)[:-2].lower() in ("it", "that", "there", "here", "what", "who", "where", "how", "he", "she", "let")


def tone_sentence(sentence: Sentence, tone: str, edit: Edit) -> None:
    rules = _rules()
    spec = rules["data"]["tone"].get(tone, {})
    core = sentence.core
    if spec.get("expand"):
        core = apply(_EXPAND_SPECIAL, core, edit, "en.contraction", "contraction written out")
    if spec.get("contract"):
        core = apply(rules["contract"], core, edit, "en.contraction", "contraction", keep_case=True)
    core = apply(rules["tones"].get(tone, []), core, edit, f"en.{tone}", f"{tone} wording", keep_case=True)
    if tone in ("formal", "assertive"):
        sentence.closing = _calm(sentence.closing, edit)
    if spec.get("imperative"):
        core = _request(sentence, core, spec["imperative"], edit)
    core = _PREFIXED.sub(lambda m: m.group(1) + m.group(2).lower(), core)
    sentence.core = capitalise(core)
    sentence.closing = _question_mark(sentence.core, sentence.closing)


def _question_mark(core: str, closing: str) -> str:
    """A request asked as a question ends in "?", one made a "Please ..." in "."."""
    if re.match(r"(could|can|would|will) you\b", core, _FLAGS):
        return re.sub(r"^[.!]+", "?", closing)
    if core.lower().startswith("please "):
        return re.sub(r"^\?+", ".", closing)
    return closing


def _calm(closing: str, edit: Edit) -> str:
    calmer = closing.replace("!", ".")
    calmer = re.sub(r"\.{2,}", ".", calmer)
    edit.note("en.punctuation", "exclamation mark calmed", closing, calmer)
    return calmer


def _request(sentence: Sentence, core: str, form: str, edit: Edit) -> str:
    """Imperative ⇄ request: "Send us the receipt." → "Please send ..." / "Could you please send ...?"."""
    match = _rules()["imperative"].match(core)
    if not match or not sentence.closing.strip(" ").startswith((".", "!", "")) or "?" in sentence.closing:
        return core
    verb_onwards = core[match.start(2) :]
    if form == "please" and not match.group(1):
        new = "Please " + verb_onwards[0].lower() + verb_onwards[1:]
    elif form == "could you please" and match.group(2).lower() == "let":
        new = "Please " + verb_onwards[0].lower() + verb_onwards[1:]
    elif form == "could you please":
        new = "Could you please " + verb_onwards[0].lower() + verb_onwards[1:]
        sentence.closing = re.sub(r"^[.!]*", "?", sentence.closing, count=1)
    else:
        return core
    edit.note(f"en.{'request' if form != 'please' else 'please'}", "imperative made a request", core, new)
    return new


def length_sentence(sentence: Sentence, length: str, tone: str, edit: Edit) -> None:
    what = "filler or wordy phrase cut" if length == "shorter" else "courteous wording"
    core = apply(_rules()[length], sentence.core, edit, f"en.{length}", what, keep_case=True)
    if length == "longer" and tone not in ("casual", "assertive"):
        core = apply(_rules()["courteous"], core, edit, "en.longer", what, keep_case=True)
    sentence.core = capitalise(core)


def length_data() -> dict:
    return _rules()["data"]["length"]


def tone_data(tone: str) -> dict:
    return _rules()["data"]["tone"].get(tone, {})
