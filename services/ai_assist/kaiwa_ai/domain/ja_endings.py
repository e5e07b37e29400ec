"""Japanese sentence endings: plain form ⇄ です/ます, from the analyser's morphemes.

A sentence is split as  core + final particles (よ, ね, か, ...) + closing marks; only the
predicate at the end of the core is conjugated. Each rule looks at the last morphemes:

    plain → polite                         polite → plain
    送る → 送ります                         送ります → 送る
    送った → 送りました                     送りました → 送った
    送らない → 送りません                   送りません → 送らない
    送らなかった → 送りませんでした         送りませんでした → 送らなかった
    送ろう → 送りましょう                   送りましょう → 送ろう
    高い → 高いです, ない → ありません       高いです → 高い
    大丈夫だ → 大丈夫です, だった → でした   大丈夫です → 大丈夫だ, でした → だった
    だろう → でしょう                       でしょう → だろう
    送れ / 送ってくれ → 送ってください      (requests: see japanese.py)

A predicate it does not know is left as it is: the rewrite never guesses a conjugation.
"""

from __future__ import annotations

from .ja_morph import Morph, analyse, mizen_nai, renyou, ta_form, te_form, volitional

FINAL_PARTICLES = {"よ", "ね", "よね", "な", "わ", "ぞ", "ぜ", "さ", "か", "かな", "の"}


def _is(m: Morph, pos: str, ctype: str = "", base: str = "") -> bool:
    return m.pos == pos and (not ctype or m.ctype == ctype) and (not base or m.base == base)


def split_particles(morphs: list[Morph]) -> tuple[list[Morph], list[Morph]]:
    """(predicate part, trailing final particles)."""
    end = len(morphs)
    while end > 1 and morphs[end - 1].pos == "助詞" and morphs[end - 1].surface in FINAL_PARTICLES:
        end -= 1
    return morphs[:end], morphs[end:]


def is_polite(morphs: list[Morph]) -> bool:
    return any(m.pos == "助動詞" and m.ctype in ("特殊・マス", "特殊・デス") for m in morphs[-4:]) or any(
        m.base in ("くださる", "ござる", "いただく", "いただける") for m in morphs[-2:]
    )


def _verb_stem(m: Morph) -> str | None:
    if m.base in ("てる", "でる"):  # 送ってる: the colloquial ている
        return m.base[0] + "い"
    return renyou(m.base, m.ctype)


def polite_tail(ms: list[Morph]) -> tuple[int, str] | None:
    """(index of the first morpheme replaced, its replacement) for plain → polite."""
    n = len(ms)
    if not n or is_polite(ms):
        return None
    last, prev = ms[-1], ms[-2] if n > 1 else None
    if _is(last, "助動詞", "特殊・タ") and prev is not None:
        return _polite_past(ms, prev)
    if _is(last, "助動詞", "特殊・ナイ") and prev is not None:
        if prev.pos == "動詞":
            stem = _verb_stem(prev)
            return (n - 2, stem + "ません") if stem else None
        if prev.pos == "形容詞":
            return (n - 1, "ありません")
    if last.pos == "形容詞" and last.cform == "基本形":
        return (n - 1, "ありません") if last.base == "ない" and last.pos1 == "自立" else (n, "です")
    if last.pos == "助動詞" and last.ctype in ("特殊・タイ", "形容詞・イ段") and last.cform == "基本形":
        return (n, "です")
    if _is(last, "助動詞", "特殊・ダ") and last.cform == "基本形":
        return (n - 1, "です")
    if _is(last, "助動詞", "不変化型") and last.base in ("う", "よう") and prev is not None:
        if prev.pos == "動詞":
            stem = _verb_stem(prev)
            return (n - 2, stem + "ましょう") if stem else None
        if _is(prev, "助動詞", "特殊・ダ"):
            return (n - 2, "でしょう")
    if last.pos == "動詞":
        return _polite_verb(ms, last, prev)
    return None


def _polite_past(ms: list[Morph], prev: Morph) -> tuple[int, str] | None:
    n = len(ms)
    if prev.pos == "動詞":
        stem = _verb_stem(prev)
        return (n - 2, stem + "ました") if stem else None
    if _is(prev, "助動詞", "特殊・ナイ") and n > 2 and ms[-3].pos == "動詞":
        stem = _verb_stem(ms[-3])
        return (n - 3, stem + "ませんでした") if stem else None
    if prev.pos == "形容詞":
        return (n - 2, "ありませんでした") if prev.base == "ない" and prev.pos1 == "自立" else (n, "です")
    if _is(prev, "助動詞", "特殊・ダ"):
        return (n - 2, "でした")
    if _is(prev, "助動詞", "特殊・タイ"):
        return (n, "です")
    return None


def _polite_verb(ms: list[Morph], last: Morph, prev: Morph | None) -> tuple[int, str] | None:
    n = len(ms)
    if last.surface == "くれ" and prev is not None and prev.surface in ("て", "で"):
        return (n - 1, "ください")
    if last.cform.startswith("命令"):
        if last.base == "なさる" and prev is not None and prev.pos == "動詞":
            te = te_form(prev.base, prev.ctype)
            return (n - 2, te + "ください") if te else None
        te = te_form(last.base, last.ctype)
        return (n - 1, te + "ください") if te else None
    if last.cform == "基本形":
        stem = _verb_stem(last)
        return (n - 1, stem + "ます") if stem else None
    return None


def plain_tail(ms: list[Morph]) -> tuple[int, str] | None:
    """(index of the first morpheme replaced, its replacement) for polite → plain."""
    n = len(ms)
    if n < 2:
        return None
    last, prev = ms[-1], ms[-2]
    verb = ms[-3] if n > 2 and ms[-3].pos == "動詞" else None
    if _is(last, "助動詞", "特殊・マス") and last.cform == "基本形" and prev.pos == "動詞":
        return (n - 2, "ある" if prev.base == "ござる" else prev.base)
    if prev.base == "ます" and verb is not None:
        if _is(last, "助動詞", "特殊・タ"):
            form = ta_form(verb.base, verb.ctype)
        elif last.surface == "ん":
            form = mizen_nai(verb.base, verb.ctype)
        elif last.base == "う":
            form = volitional(verb.base, verb.ctype)
        else:
            form = None
        return (n - 3, form) if form else None
    if _is(last, "助動詞", "特殊・タ") and prev.surface == "でし" and n >= 5 and ms[-3].surface == "ん":
        if ms[-4].base == "ます" and ms[-5].pos == "動詞":
            form = mizen_nai(ms[-5].base, ms[-5].ctype)
            return (n - 5, form[:-1] + "かった") if form else None
    if _is(last, "助動詞", "特殊・デス") and last.cform == "基本形":
        if prev.pos == "形容詞" or (prev.pos == "助動詞" and prev.ctype in ("特殊・タイ", "特殊・ナイ", "特殊・タ")):
            return (n - 1, "")
        return (n - 1, "だ")
    if _is(last, "助動詞", "特殊・タ") and prev.surface == "でし":
        return (n - 2, "だった")
    if last.base == "う" and prev.surface == "でしょ":
        return (n - 2, "だろう")
    return None


def convert(core: str, polite: bool) -> str | None:
    """The core (a sentence without its closing marks) with its ending converted; None if
    the ending is already in that form or not one these rules know."""
    morphs = analyse(core)
    predicate, particles = split_particles(morphs)
    if any(p.surface == "な" for p in particles) and predicate and predicate[-1].pos == "動詞":
        return None  # 送るな (prohibition): not a plain statement
    found = polite_tail(predicate) if polite else plain_tail(predicate)
    if found is None:
        return None
    index, replacement = found
    start = predicate[index].start if index < len(predicate) else len(_text(predicate, core))
    head = core[:start]
    tail = "".join(p.surface for p in particles)
    if not polite and tail.startswith("か"):  # 送りますか → 送る (the caller makes it a question)
        tail = tail[1:]
        replacement = replacement[:-1] if replacement.endswith("だ") else replacement
    if polite and tail == "かな":  # 届いたかな → 届きましたか
        tail = "か"
    return head + replacement + tail


def _text(predicate: list[Morph], core: str) -> str:
    return core[: predicate[-1].start + len(predicate[-1].surface)] if predicate else ""
