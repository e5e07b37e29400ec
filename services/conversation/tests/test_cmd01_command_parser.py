"""CMD-01: the command parser (domain/commands.py), its texts and its dispatch table.

Properties (hypothesis): junk never crashes it and a line starting with "#" is always a
command or a usage, never a message; every valid command's canonical line parses back to
the same command; and examples from seed 003.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kaiwa_conversation.commands import HANDLERS
from kaiwa_conversation.domain.command_texts import USAGE, help_lines, say, usage_of
from kaiwa_conversation.domain.commands import MAX_ARG, VERBS, Command, Usage, is_escaped, parse, unescape

emails = st.from_regex(r"[a-zA-Z0-9._+-]{1,20}@[a-z0-9-]{1,12}(\.[a-z]{2,6}){1,2}", fullmatch=True)
words = st.text(min_size=1, max_size=60).map(str.strip).filter(bool)
notes = st.one_of(st.just(""), words)
departments = words.filter(lambda s: '"' not in s)
urls = st.from_regex(r"https?://[a-z0-9.-]{1,20}(/[A-Za-z0-9._~%/?=&-]{0,30})?", fullmatch=True)
tokens = st.from_regex(r"#?[A-Za-z0-9-]{1,20}", fullmatch=True)


def _commands():
    bare = st.sampled_from(
        ["y", "n", "#info", "#n", "#h", "#d", "#m", "#crm info", "#support info", "#support ticketinfo", "#support recentreq"]
    ).map(Command)
    return st.one_of(
        bare,
        st.sampled_from(["", "all", "misc", "support", "crm"]).map(lambda t: Command("#help", t)),
        st.builds(Command, st.sampled_from(["#t", "#i"]), emails, notes),
        st.builds(lambda d, n: Command("#t", d, n, department=True), departments, notes),
        st.builds(Command, st.sampled_from(["#b", "#an", "#support searchreq"]), words),
        st.builds(lambda u: Command("#p", u), urls),
        st.sampled_from(["", "30", "45", "60", "90", "cancel"]).map(lambda a: Command("#e", a)),
        st.from_regex(r"[0-3][0-3][0-4]", fullmatch=True).map(lambda d: Command("#support conasreq", d)),
        tokens.map(lambda t: Command("#support associate", t)),
        st.sampled_from(["open", "close"]).map(lambda s: Command("#support setreqstatus", s)),
    )


@given(st.text(max_size=300))
def test_cmd01_parser_never_crashes_on_junk_and_what_it_understands_round_trips(text):
    parsed = parse(text)
    assert parsed is None or isinstance(parsed, (Command, Usage))
    if isinstance(parsed, Command):
        assert parse(parsed.line()) == parsed
    if text.strip().startswith("#") and not is_escaped(text):
        assert parsed is not None, "a '#' line is never sent to the visitor"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200).map(lambda s: "#" + s))
def test_cmd01_every_hash_line_is_a_command_or_a_usage(text):
    if is_escaped(text):
        assert parse(text) is None and unescape(text) == text.lstrip()[1:]
    else:
        assert isinstance(parse(text), (Command, Usage))


@given(_commands())
def test_cmd01_every_valid_command_round_trips(command):
    assert parse(command.line()) == command
    assert parse("  " + command.line().upper() if command.verb in ("y", "n") else command.line() + " \n") == command


@pytest.mark.parametrize(
    "line, expected",
    [
        ("#t fiona.baumgartner@hotmail.com", Command("#t", "fiona.baumgartner@hotmail.com")),
        ("#t fiona@example.com  please take  this", Command("#t", "fiona@example.com", "please take  this")),
        ('#t "VIPサポート"', Command("#t", "VIPサポート", department=True)),
        ('#t "VIPサポート" 大口のお客様です', Command("#t", "VIPサポート", "大口のお客様です", department=True)),
        ("#i ben@example.com 助けてください", Command("#i", "ben@example.com", "助けてください")),
        ("#b 不正な利用", Command("#b", "不正な利用")),
        ("#an お客様が追加購入を検討しています", Command("#an", "お客様が追加購入を検討しています")),
        ("#p https://taskerpro.cleaning.zillium.com", Command("#p", "https://taskerpro.cleaning.zillium.com")),
        ("#E 45", Command("#e", "45")),
        ("#e Cancel", Command("#e", "cancel")),
        ("#help CRM", Command("#help", "crm")),
        ("#CRM Info", Command("#crm info")),
        ("#support conasreq 112", Command("#support conasreq", "112")),
        ("#support searchreq Taro Yamada", Command("#support searchreq", "Taro Yamada")),
        ("#support associate #6165", Command("#support associate", "#6165")),
        ("#support setreqstatus CLOSE", Command("#support setreqstatus", "close")),
        (" Y ", Command("y")),
        ("n", Command("n")),
    ],
)
def test_cmd01_seed_examples_parse(line, expected):
    assert parse(line) == expected


@pytest.mark.parametrize(
    "line, verb",
    [
        ("#t", "#t"),
        ("#t not-an-email note", "#t"),
        ('#t "VIP', "#t"),
        ('#t ""', "#t"),
        ('#t "VIP"note', "#t"),
        ('#i "VIP"', "#i"),
        ("#b", "#b"),
        ("#an   ", "#an"),
        ("#p ftp://example.com", "#p"),
        ("#p https://example.com two", "#p"),
        ("#e 20", "#e"),
        ("#e now", "#e"),
        ("#info extra", "#info"),
        ("#d sales", "#d"),
        ("#help everything", "#help"),
        ("#crm", "#crm info"),
        ("#crm show", "#crm info"),
        ("#support", "#support"),
        ("#support refund", "#support"),
        ("#support conasreq 1", "#support conasreq"),
        ("#support conasreq 512", "#support conasreq"),
        ("#support conasreq 115", "#support conasreq"),
        ("#support associate 1 2", "#support associate"),
        ("#support setreqstatus pending", "#support setreqstatus"),
        ("#support info now", "#support info"),
        ("#an " + "x" * (MAX_ARG + 1), "#an"),
        ("#xyz", None),
        ("#", None),
        ("# t a@b.co", None),
    ],
)
def test_cmd01_malformed_and_unknown_lines_are_usage(line, verb):
    assert parse(line) == Usage(verb, line.strip())


@pytest.mark.parametrize("line", ["hello", "", "   ", "yes", "no", "y please", "##1 priority", "see #t"])
def test_cmd01_other_lines_are_messages(line):
    assert parse(line) is None


def test_cmd01_every_verb_has_a_handler_and_a_usage_in_both_languages():
    assert set(HANDLERS) == set(VERBS)
    for verb in VERBS:
        assert verb in USAGE
        assert usage_of(verb, "ja").startswith("使い方: ") and usage_of(verb, "en").startswith("Usage: ")
    assert usage_of("#support", "en").startswith("Usage: #support info|ticketinfo")


def test_cmd01_help_lists_every_command_and_the_seed_texts_are_kept():
    everything = "\n".join(help_lines("all", "en"))
    for verb in VERBS:
        assert verb.split()[0] in everything
    assert help_lines("crm", "ja") == ["CRMのコマンド:", "#crm info - 訪問者のCRM情報"]
    assert say("blocked_ip", "ja") == "IPアドレスをブロックしました"
    assert say("note_added", "ja") == "メモが追加されました"
    assert say("no_crm_info", "ja") == "この訪問者のCRM情報はありません"
    assert say("countdown", "ja", seconds=30) == "サポートは30秒後に終了します"
    assert say("countdown_cancelled", "ja") == "サポート終了を中断しました"
    assert say("countdown", "en", seconds=45) == "Support will end in 45 seconds"
