"""Japanese tone rules of the embedded rewriter; the word lists are in data/ja.toml.

formal     です/ます endings, サ変 verbs humbled (確認します → 確認いたします),
           honorific vocabulary (あります → ございます, わかりました → 承知いたしました),
           requests as 〜いただきますようお願いいたします, cushion words (恐れ入りますが、)
polite     です/ます endings, softened requests (〜てください → 〜ていただけますか),
           cushion words (お手数ですが、 / 恐れ入りますが、)
casual     plain endings (送ります → 送る, でした → だった), humble and honorific words
           brought down (いたします → する, ございます → ある), cushions dropped
assertive  です/ます endings made firm: hedges and cushions dropped (届くと思います →
           届きます), requests as 〜てください, でしょうか → ですか, no ね/よ
humorous   です/ます kept, a brighter thanks, and a playful closing line (rewriter.py)
"""

from __future__ import annotations

import re
from functools import lru_cache

from .ja_endings import convert
from .ja_morph import analyse
from .text import Edit, Sentence, apply, compile_rules, load

_CUSHIONED = re.compile(r"恐れ入りますが|お手数ですが|お手数をおかけしますが|恐縮ですが|申し訳(ございません|ありません)が")
_REQUEST = re.compile(r"ください|いただけますか|いただけますでしょうか|いただきますよう")
_ACTION = re.compile(r"ご[一-龥]{2}|送って|入力|添付|お送り|お知らせ|お待ち")
_HEDGE = re.compile(r"と(思います|思っております|考えております|存じます)$")
_MASU_DESU = re.compile(
    r"(ます|ません|ました|ませんでした|ましょう|です|でした|でしょう|ください|くださいませ|ございます)[かねよ]*$"
)
MAX_CUSHIONS = 2


@lru_cache(maxsize=1)
def _rules() -> dict:
    data = load("ja")
    tones = {
        name: (compile_rules(spec.get("before", [])), compile_rules(spec.get("after", []))) for name, spec in data["tone"].items()
    }
    lengths = {name: compile_rules(spec["replace"]) for name, spec in data["length"].items()}
    courteous = compile_rules(data["length"]["longer"]["courteous"])
    return {"data": data, "tones": tones, "courteous": courteous, **lengths}


def ends_polite(core: str) -> bool:
    """Whether a sentence ends in です/ます (or ください, ございます): a measure for tests."""
    return bool(_MASU_DESU.search(core.rstrip("」』）)")))


def tone_sentence(sentence: Sentence, tone: str, edit: Edit) -> None:
    spec = _rules()["data"]["tone"].get(tone)
    if spec is None:
        return
    before, after = _rules()["tones"][tone]
    core = apply(before, sentence.core, edit, f"ja.{tone}", f"{tone} wording")
    if spec.get("firm"):
        core = _firm(core, edit)
    if "polite_endings" in spec:
        core = _ending(sentence, core, spec["polite_endings"], edit)
    if spec.get("humble_suru"):
        core = _humble_suru(core, edit)
    core = apply(after, core, edit, f"ja.{tone}", f"{tone} wording")
    if spec.get("cushion") and edit.cushions < MAX_CUSHIONS and _REQUEST.search(core) and not _CUSHIONED.search(core):
        cushion = spec["cushion_action"] if _ACTION.search(core) and edit.cushions == 0 else spec["cushion"]
        edit.note("ja.cushion", "cushion word before a request", core, cushion + core)
        core = cushion + core
        edit.cushions += 1
    if tone in ("formal", "assertive") or core.endswith("か"):
        sentence.closing = sentence.closing.replace("！", "。").replace("!", "。")
    if tone == "assertive" and core.endswith("ください"):
        sentence.closing = sentence.closing.replace("？", "。").replace("?", "。")
    sentence.core = core


def _ending(sentence: Sentence, core: str, polite: bool, edit: Edit) -> str:
    new = convert(core, polite)
    if new is None or new == core:
        return core
    if polite:
        edit.note("ja.desu_masu", "plain form → です/ます", core, new)
    else:
        edit.note("ja.plain_form", "です/ます → plain form", core, new)
        if re.search(r"か[よね]?$", core) and not re.search(r"か[よね]?$", new) and "？" not in sentence.closing:
            sentence.closing = "？" + sentence.closing.lstrip("。.")
    return new


def _firm(core: str, edit: Edit) -> str:
    """届くと思います → 届きます: the hedge dropped, the predicate made polite."""
    match = _HEDGE.search(core)
    if not match or core[: match.start()].endswith("か"):
        return core
    bare = core[: match.start()]
    new = convert(bare, True) or bare
    if new == bare and not new.endswith(("ます", "です", "ません")):
        return core
    edit.note("ja.firm", "hedge dropped (と思います)", core, new)
    return new


def _humble_suru(core: str, edit: Edit) -> str:
    """確認します → 確認いたします: サ変 nouns with します, found by the analyser."""
    morphs = analyse(core)
    out, last = [], 0
    for i in range(1, len(morphs) - 1):
        m, prev, nxt = morphs[i], morphs[i - 1], morphs[i + 1]
        if m.surface == "し" and m.ctype == "サ変・スル" and prev.pos1 == "サ変接続" and nxt.base == "ます":
            out.append(core[last : m.start] + "いたし")
            last = m.start + 1
    if not out:
        return core
    new = "".join(out) + core[last:]
    edit.note("ja.humble", "します → いたします", core, new)
    return new


def length_sentence(sentence: Sentence, length: str, tone: str, edit: Edit) -> None:
    what = "filler or wordy phrase cut" if length == "shorter" else "courteous wording"
    core = apply(_rules()[length], sentence.core, edit, f"ja.{length}", what)
    if length == "longer" and tone not in ("casual", "assertive"):
        core = apply(_rules()["courteous"], core, edit, "ja.longer", what)
    sentence.core = core


def length_data() -> dict:
    return _rules()["data"]["length"]


def tone_data(tone: str) -> dict:
    return _rules()["data"]["tone"].get(tone, {})
