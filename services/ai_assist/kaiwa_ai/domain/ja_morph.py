"""Japanese morphology: MeCab (fugashi) with IPADIC, both installed from PyPI, so the
analyser works offline with no download. Conjugation of a verb from its dictionary form
and conjugation type (IPADIC's 活用型):

    type            連用 (+ます)  未然 (+ない)  た-form      volitional
    五段・ラ行       送り          送ら          送った        送ろう
    五段・カ行イ音便  書き          書か          書いた        書こう
    五段・カ行促音便  行き          行か          行った        行こう
    五段・ガ行       泳ぎ          泳が          泳いだ        泳ごう
    五段・マ/バ/ナ行  読み          読ま          読んだ        読もう
    五段・ワ行       会い          会わ          会った        会おう
    五段・サ行       話し          話さ          話した        話そう
    五段・ラ行特殊    ください      くださら      くださった    くださろう
    一段             食べ          食べ          食べた        食べよう
    サ変・スル        し            し            した          しよう
    カ変             来 / き        来 / こ        来た / きた   来よう / こよう
"""

from __future__ import annotations

from functools import lru_cache
from typing import NamedTuple

import fugashi
import ipadic

_I = dict(zip("カガサタナバマラワ", "きぎしちにびみりい", strict=True))
_A = dict(zip("カガサタナバマラワ", "かがさたなばまらわ", strict=True))
_O = dict(zip("カガサタナバマラワ", "こごそとのぼもろお", strict=True))
_TA = dict(zip("カガサタナバマラワ", ["いた", "いだ", "した", "った", "んだ", "んだ", "んだ", "った", "った"], strict=True))


class Morph(NamedTuple):
    surface: str
    pos: str  # 品詞: 動詞, 助動詞, 名詞, ...
    pos1: str
    pos2: str
    ctype: str  # 活用型, e.g. 五段・ラ行 ("*" if none)
    cform: str  # 活用形, e.g. 連用形
    base: str  # 原形 (the surface when the dictionary has none)
    start: int  # offset in the analysed text (MeCab skips spaces)


@lru_cache(maxsize=1)
def _tagger() -> fugashi.GenericTagger:
    return fugashi.GenericTagger(ipadic.MECAB_ARGS)


def warm_up() -> None:
    """Load the dictionary now (at start-up) rather than on the first rewrite."""
    _tagger()("準備します。")


def analyse(text: str) -> list[Morph]:
    """The morphemes of `text` (MeCab's text output, split here: three times faster than
    building a node object per morpheme)."""
    morphs, offset = [], 0
    for line in _tagger().parse(text).split("\n"):
        surface, tab, csv = line.partition("\t")
        if not tab:
            continue  # EOS, or an empty line
        f = csv.split(",")
        if len(f) < 6:
            f += ["*"] * (6 - len(f))
        found = text.find(surface, offset)
        start = found if found >= 0 else offset
        offset = start + len(surface)
        base = f[6] if len(f) > 6 and f[6] != "*" else surface
        morphs.append(Morph(surface, f[0], f[1], f[2], f[4], f[5], base, start))
    return morphs


def _row(ctype: str) -> str | None:
    return ctype[3] if ctype.startswith("五段・") and len(ctype) > 3 else None


def renyou(base: str, ctype: str) -> str | None:
    """The stem that takes ます: 送る → 送り."""
    if ctype == "五段・ラ行特殊":
        return base[:-1] + "い"
    row = _row(ctype)
    if row:
        return base[:-1] + _I[row] if row in _I else None
    if ctype.startswith("一段"):
        return base[:-1]
    if ctype.startswith("サ変"):
        return base[:-2] + ("じ" if base.endswith("ずる") else "し")
    if ctype.startswith("カ変"):
        return base[:-2] + ("来" if base.endswith("来る") else "き")
    return None


def mizen_nai(base: str, ctype: str) -> str | None:
    """The plain negative: 送る → 送らない (ある → ない)."""
    if base == "ある":
        return "ない"
    row = _row(ctype)
    if ctype == "五段・ラ行特殊":
        return base[:-1] + "らない"
    if row:
        return base[:-1] + _A[row] + "ない" if row in _A else None
    if ctype.startswith("一段"):
        return base[:-1] + "ない"
    if ctype.startswith("サ変"):
        return base[:-2] + "しない"
    if ctype.startswith("カ変"):
        return base[:-2] + ("来ない" if base.endswith("来る") else "こない")
    return None


def ta_form(base: str, ctype: str) -> str | None:
    """The plain past: 送る → 送った, 読む → 読んだ, 行く → 行った."""
    row = _row(ctype)
    if ctype == "五段・ラ行特殊":
        return base[:-1] + "った"
    if row:
        if ctype == "五段・カ行促音便":
            return base[:-1] + "った"
        return base[:-1] + _TA[row] if row in _TA else None
    stem = renyou(base, ctype)
    return stem + "た" if stem is not None else None


def te_form(base: str, ctype: str) -> str | None:
    past = ta_form(base, ctype)
    return past[:-1] + ("で" if past.endswith("だ") else "て") if past else None


def volitional(base: str, ctype: str) -> str | None:
    """送る → 送ろう, 食べる → 食べよう."""
    if ctype == "五段・ラ行特殊":
        return base[:-1] + "ろう"
    row = _row(ctype)
    if row:
        return base[:-1] + _O[row] + "う" if row in _O else None
    if ctype.startswith("一段"):
        return base[:-1] + "よう"
    if ctype.startswith("サ変"):
        return base[:-2] + "しよう"
    if ctype.startswith("カ変"):
        return base[:-2] + ("来よう" if base.endswith("来る") else "こよう")
    return None
