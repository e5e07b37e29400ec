"""Which language a text is in, from its scripts and function words (no model).

    any kana (ひらがな, カタカナ) and kana + kanji ≥ Latin letters   → ja
    Hangul, Cyrillic, Greek, Arabic, Hebrew, Thai, Devanagari       → that language (unsupported)
    kanji without kana                                              → zh (unsupported)
    Latin letters: English function words against those of French, German, Spanish,
    Italian, Portuguese and Dutch, and their accented letters        → en, or that language

Protected tokens (URLs, e-mail addresses, ids, names) are left out before counting.
Too little to tell (no letters at all) gives None: the caller asks for `language`.
"""

from __future__ import annotations

import re

_SCRIPTS = {
    "ko": re.compile(r"[\uac00-\ud7af\u1100-\u11ff]"),
    "ru": re.compile(r"[\u0400-\u04ff]"),
    "el": re.compile(r"[\u0370-\u03ff]"),
    "ar": re.compile(r"[\u0600-\u06ff]"),
    "he": re.compile(r"[\u0590-\u05ff]"),
    "th": re.compile(r"[\u0e00-\u0e7f]"),
    "hi": re.compile(r"[\u0900-\u097f]"),
}
_KANA = re.compile(r"[\u3041-\u309f\u30a0-\u30ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_LATIN = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ]")
_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ']+")
_FUNCTION_WORDS = {
    "en": "the and you your to is are we our it this that for of in on with please thanks thank can will be have not "
    "i my me a an if at as by from or so do does be was were order any has had would could should let know",
    "fr": "le la les des une est et vous votre nous pour dans avec pas merci bonjour sur ce cette qui que du au",
    "de": "der die das und ist nicht sie ihr ihre wir unser mit für ein eine bitte danke auf zu den dem des ich",
    "es": "el la los las y es usted su nosotros para con por favor gracias una un que del al está hola pero",
    "it": "il lo la gli le e è lei suo noi per con grazie una un che del della sono ciao non",
    "pt": "o a os as e é você seu nós para com obrigado uma um que do da não olá",
    "nl": "de het een en is niet u uw wij ons voor met bedankt alstublieft dank op van ik",
}
_WORDS = {lang: set(words.split()) for lang, words in _FUNCTION_WORDS.items()}


def detect(text: str) -> str | None:
    kana, han, latin = len(_KANA.findall(text)), len(_HAN.findall(text)), len(_LATIN.findall(text))
    others = {lang: len(regex.findall(text)) for lang, regex in _SCRIPTS.items()}
    top_other = max(others, key=others.get)
    if kana and kana + han >= max(latin, others[top_other]) / 2:
        return "ja"
    if others[top_other] > max(latin, kana + han):
        return top_other
    if han > latin:
        return "zh"
    if not latin:
        return None
    return _latin_language(text)


def _latin_language(text: str) -> str:
    words = [w.lower() for w in _WORD.findall(text)]
    scores = {lang: sum(1 for w in words if w in vocabulary) for lang, vocabulary in _WORDS.items()}
    best = max(scores, key=scores.get)
    if best != "en" and scores[best] >= 2 and scores[best] > scores["en"]:
        return best
    return "en"
