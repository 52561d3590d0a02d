"""Sensitivity detectors (true and false positives for each built-in), rules, scanning and redaction,
and the pool YAML's refusal of bad rules and caps."""

from __future__ import annotations

import pytest
import yaml

from router.errors import ConfigError
from router.routing.pool import load_pool, parse_pool
from router.routing.sensitivity import (
    SensitiveRule,
    iban_ok,
    luhn_ok,
    my_number_ok,
    presidio_available,
    redact,
    redact_all,
    redact_text,
    scan,
)

from .proxy_env import CHECKPOINT

# detector -> (texts it must flag, texts it must not)
CASES = {
    "email": (["write to bob.smith+x@example.co.uk today", "A@B.IO", "メールはyamada@example.jpです",
               "josé.garcía@correo.es", "user@bücher.de", "山田さん：yamada＠example.jp", "bob [at] example [dot] com",
               "bob(at)example.com", "email: иван@mail.ru", "x" * 3000 + " late@example.org",
               "メールは山田@例え.jpです", "почта@пример.рф", "連絡はinfo@例え.みんなまで", "ลับ@ตัวอย่าง.ไทย",
               "raj@उदाहरण.भारत", "김철수@회사.한국 입니다"],
              ["user@localhost", "foo@bar", "an @ sign", "price 5@3", "We met (at) the cafe.", "a@b.c0m",
               "写真@東京", "田中さん@東京タワーで"]),
    "phone": (["+1 415 555 2671", "call (415) 555-2671", "+447911123456", "03-1234-5678 (Tokyo)",
               "電話は03-1234-5678です", "携帯：090-1234-5678まで", "+81 3-1234-5678", "+33 1 23 45 67 89",
               "０３－１２３４－５６７８", "+44 (0)20 7946 0958"],
              ["on 2026-12-01", "version 1.2.3", "call 555-1234", "pi is 3.14159", "1 2 3 4 5 6 7 8 9 10",
               "ISBN 978-4-06-519981-7", "id abc0312345678"]),
    "credit_card": (["card 4111 1111 1111 1111 exp 12/29", "5555-5555-5555-4444", "378282246310005"],
                    ["card 4111 1111 1111 1112", "order 1234567890123", "ts 1764576000000"]),
    "iban": (["IBAN GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"],
             ["IBAN GB82 WEST 1234 5698 7654 33", "GB00 not an iban", "ISBN 9780262033848"]),
    "us_ssn": (["ssn 123-45-6789", "123 45 6789"],
               ["000-12-3456", "666-12-3456", "123-00-4567", "123-45-0000", "901-23-4567", "123-45-67890",
                "123-45 6789"]),
    "my_number": (["マイナンバー 123456789018", "1234 5678 9018", "9876-5432-1093"],
                  ["123456789012", "1234 5678 9010", "id 1234567890180", "12345678901-8"]),
    "api_key": (["key sk-proj-abcdefghijklmnopqrstuvwxyz123456", "AKIAIOSFODNN7EXAMPLE",
                 "ghp_" + "a1B2" * 9, "sk-ant-api03-" + "x" * 40, "AIza" + "B" * 35, "hf_" + "q" * 34,
                 "xoxb-1234567890-abcdef", "sk_live_" + "9" * 24],
                ["sk-short", "skeleton-key-abcdefghijklmnopqrstuvwxyz", "AKIA-lowercase", "ghp_short",
                 "hf_tiny"]),
    "private_key": (["-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
                     "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n", "-----BEGIN PRIVATE KEY-----\nMII"],
                    ["-----BEGIN PUBLIC KEY-----\nMIIBIjANBg\n-----END PUBLIC KEY-----", "my private key is safe"]),
    "ip_address": (["host 192.168.1.10.", "2001:db8::1", "ping 10.0.0.255 now", "fe80::1ff:fe23:4567:890a"],
                   ["256.1.1.1", "1.2.3", "v10.0.0.1.5", "std::vector a::b", "at 12:30"]),
}


@pytest.mark.parametrize("detector", sorted(CASES))
def test_each_builtin_detector_flags_its_data_and_not_lookalikes(detector):
    rule = SensitiveRule(name="r", detectors=[detector], action="block")
    hits, misses = CASES[detector]
    for text in hits:
        assert [d for d, _ in rule.find(text)] == [detector], f"{detector} missed {text!r}"
    for text in misses:
        assert rule.find(text) == [], f"{detector} flagged {text!r}"


def test_an_email_or_a_phone_number_inside_japanese_text_is_masked_alone():
    """Japanese writes no spaces around an address: the old ASCII detector found none of these."""
    rules = [SensitiveRule(name="pii", detectors=["email"], action="redact")]
    assert redact_text(rules, "メールはyamada@example.jpです") == "メールは[REDACTED]です"
    assert redact_text(rules, "連絡先yamada.taro+work@mail.example.co.jpまで") == "連絡先[REDACTED]まで"
    # a kana/kanji local part has no visible start: the words that run into it are masked with it
    assert redact_text(rules, "メールは山田@例え.jpです") == "[REDACTED]です"
    assert redact_text(rules, "宛先：山田@例え.みんな、以上") == "宛先：[REDACTED]、以上"
    assert redact_text(rules, "почта: иван@пример.рф, спасибо") == "почта: [REDACTED], спасибо"
    many = " ".join(f"user{i}@example.com" for i in range(50))  # windows around each @ merge
    assert redact_text(rules, many) == " ".join(["[REDACTED]"] * 50)
    phones = [SensitiveRule(name="pii", detectors=["phone"], action="redact")]
    assert redact_text(phones, "電話は03-1234-5678です") == "電話は[REDACTED]です"


@pytest.mark.parametrize("text,hit", [
    ("これは社外秘です", True), ("【社外秘】資料", True), ("プロジェクトXの件", True), ("confidential資料", True),
    ("Internal Only!", True), ("unconfidentiality", False), ("internal onlyness", False), ("プロジェクトXY", False),
    ("極秘", False), ("เอกสารลับนี้ห้ามเผยแพร่", True), ("이 문서는 기밀입니다", True), ("ลับๆ ล่อๆ", True),
])
def test_keywords_are_whole_words_in_scripts_with_spaces_and_found_inside_japanese(text, hit):
    """社外秘 inside a Japanese sentence was never found: the bound was any letter, kana included."""
    rule = SensitiveRule(name="k", keywords=["社外秘", "confidential", "プロジェクトX", "internal only", "ลับ", "기밀"],
                         action="local_only")
    assert scan([rule], text).local_only is hit


def test_keyword_search_agrees_with_its_regex():
    """Keywords are found with str.find for speed; the regex of the same rule is the reference (and
    the fallback for a text whose lowering changes its length)."""
    import random

    from router.routing.sensitivity import Keywords

    k = Keywords.of(["internal", "internal only", "社外秘", "x-ray", "aa", "プロジェクトX", "ลับ", "기밀"])
    pieces = ["internal", " only", "社外秘", "X-RAY", "aa", "a", "_", " ", "は", "プロジェクトX", "y", "資料", "-", ".",
              "ลับ", "เอกสาร", "기밀", "입니다"]
    rnd = random.Random(0)
    for _ in range(2000):
        text = "".join(rnd.choice(pieces) for _ in range(rnd.randint(1, 12)))
        assert k.spans(text) == [m.span() for m in k.regex.finditer(text)], text
    assert k.spans("İ internal") == [(2, 10)]  # lowering "İ" adds a character: the regex answers


def test_the_fast_searches_find_what_the_plain_regexes_find():
    """Digit runs without the regex's optional lead; email, IPv6, IBAN and API keys searched only
    where they can start: the same spans as the plain regexes."""
    import random

    from router.routing.sensitivity import DETECTORS, DIGIT_RUN, digit_runs

    rnd = random.Random(0)
    runs = ["1", "23", "+", "(", ")", " ", "-", ".", "/", "a", "+(", "((", "\uff0d"]
    for _ in range(3000):
        text = "".join(rnd.choice(runs) for _ in range(rnd.randint(1, 30)))
        assert digit_runs(text) == [m.span() for m in DIGIT_RUN.finditer(text)], text
    pieces = {
        "ipv6": ["2001", ":", "db8", "::", "1", "fe80", "g", " ", "abcd", "12345", "x" * 60, "\n", ":::", "a" * 45],
        "iban": ["GB82", " WEST", " 1234", " 5698", " 7654", " 32", "DE89370400440532013000", "x", " ", "12", "AB",
                 "CD34", "日本", "\n", "Z"],
        "api_key": ["sk-", "proj-", "ant-", "abcdefghijklmnopqrstuvwxyz", "0123456789", "AKIA", "IOSFODNN7EXAMPLE",
                    "ghp_", "a1B2" * 9, "eyJ", "eyJhbGciOiJIUzI1NiJ9", ".", "-", "_", " ", "hf_", "q" * 34, "xoxb-",
                    "sk_live_", "AIza", "B" * 35, "glpat-", "github_pat_", "é", " " + "y" * 400],  # long texts too
        "email": ["bob", "@", "example", ".", "com", " ", "x" * 20, "は", "＠", "[at]", "(dot)", "jp", "-",
                  "山田", "рф", "пример", "みんな", "ไทย", "ตัวอย่าง", "\u093e", "भारत", "中国語"],
    }
    for name, parts in pieces.items():
        det = DETECTORS[name]
        for _ in range(2000):
            text = "".join(rnd.choice(parts) for _ in range(rnd.randint(1, 30)))
            plain = [m.span() for m in det.regex.finditer(text)]  # the regex tried at every position
            windowed = []
            for a, b in det.windows(text, digit_runs(text)):
                windowed += [m.span() for m in det.regex.finditer(text, a, b)
                             if not windowed or m.start() >= windowed[-1][1]]
            assert windowed == plain, (name, text)


def test_check_digit_functions():
    assert luhn_ok("4111111111111111") and not luhn_ok("4111111111111112")
    assert iban_ok("GB82 WEST 1234 5698 7654 32") and not iban_ok("GB82 WEST 1234 5698 7654 33")
    assert my_number_ok("123456789018") and not my_number_ok("123456789011")
    # every wrong check digit of a valid body is refused
    assert [c for c in range(10) if my_number_ok("12345678901" + str(c))] == [8]


def test_patterns_and_keywords_are_whole_word_and_case_blind():
    rule = SensitiveRule(name="own", patterns=[r"(?i)project\s+falcon"], keywords=["confidential"], action="local_only")
    assert [d for d, _ in rule.find("About Project  FALCON, CONFIDENTIAL!")] == ["pattern[0]", "keyword"]
    assert rule.find("nonconfidential falconry project") == []


def test_scan_reads_every_message_system_tools_and_arguments_and_never_keeps_text():
    rules = [SensitiveRule(name="pii", detectors=["us_ssn", "email"], action="local_only"),
             SensitiveRule(name="mask", detectors=["credit_card"], action="redact")]
    messages = [
        {"role": "system", "content": "Customer a@b.com is on the line."},
        {"role": "user", "content": "Look up my order"},
        {"role": "assistant", "content": None,
         "tool_calls": [{"id": "c1", "type": "function",
                         "function": {"name": "lookup", "arguments": '{"card": "4111 1111 1111 1111"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "holder SSN 123-45-6789, SSN 234-56-7890"},
        {"role": "user", "content": [{"type": "text", "text": "thanks"}]},
    ]
    res = scan(rules, messages)
    got = {(m.message, m.rule, m.detector, m.spans) for m in res.matches}
    assert got == {(0, "pii", "email", 1), (2, "mask", "credit_card", 1), (3, "pii", "us_ssn", 2)}
    assert res.local_only and res.redacts and not res.blocked and res.action == "local_only"
    dumped = str(res.to_dict()) + res.reason()
    for secret in ("a@b.com", "4111", "123-45-6789", "234-56"):
        assert secret not in dumped
    red = redact(messages, res)
    assert "4111" not in red[2]["tool_calls"][0]["function"]["arguments"]
    assert red[3]["content"] == messages[3]["content"]  # local_only spans are not masked for the upstream
    assert messages[2]["tool_calls"][0]["function"]["arguments"].count("4111") == 1  # input untouched
    every = redact_all(messages, res)
    assert "123-45-6789" not in every[3]["content"] and "a@b.com" not in every[0]["content"]


def test_block_outranks_local_only_and_clean_text_matches_nothing():
    rules = [SensitiveRule(name="pii", detectors=["email"], action="local_only"),
             SensitiveRule(name="secrets", detectors=["private_key"], action="block")]
    res = scan(rules, "mail x@y.org -----BEGIN PRIVATE KEY-----\nabc")
    assert res.action == "block" and res.rules("block") == ["secrets"]
    assert scan(rules, "What is the capital of France?").matches == []


# ---- the pool YAML ---------------------------------------------------------------------------

def pool_dict(**extra):
    return {"policy": "p", "checkpoint": CHECKPOINT, "models": [
        {"name": "onprem", "model": "m1", "api_base": "http://127.0.0.1:1/v1", "cost_per_m_input_tokens": 0,
         "cost_per_m_output_tokens": 0, "local": True, "trained_as": "mistralai/mistral-7b-chat"},
        {"name": "cloud", "model": "m2", "cost_per_m_input_tokens": 1, "cost_per_m_output_tokens": 2,
         "trained_as": "gpt-4-1106-preview"}], **extra}


def problems(raw) -> str:
    with pytest.raises(ConfigError) as ei:
        parse_pool(raw, "pool.yaml")
    return str(ei.value)


def test_issue_example_block_loads():
    raw = pool_dict(**yaml.safe_load("""
sensitive:
  - name: pii
    detectors: [email, phone, credit_card, iban, us_ssn, my_number, api_key, private_key, ip_address]
    patterns: ['(?i)project\\s+falcon']
    keywords: [confidential]
    action: local_only
budgets:
  - scope: policy
    period: day
    usd: 5.00
    mode: hard
"""))
    pool = parse_pool(raw, "pool.yaml")
    assert pool.sensitive[0].action == "local_only" and pool.budgets[0].usd == 5.0


@pytest.mark.parametrize("extra, wanted", [
    ({"sensitive": [{"name": "x", "patterns": ["(unclosed"], "action": "block"}]},
     ["pool.yaml", "sensitive[0].patterns", "not a valid regex", "fix it"]),
    ({"sensitive": [{"name": "x", "detectors": ["passport"], "action": "block"}]},
     ["sensitive[0].detectors", "unknown detector", "passport", "us_ssn"]),
    ({"sensitive": [{"name": "x", "detectors": ["email"], "action": "shred"}]}, ["sensitive[0].action"]),
    ({"sensitive": [{"name": "x", "action": "block"}]}, ["matches nothing"]),
    ({"budgets": [{"scope": "policy", "period": "day", "usd": -1}]}, ["budgets[0].usd", ">= 0"]),
    ({"budgets": [{"scope": "policy", "period": "day", "usd": "five"}]}, ["budgets[0].usd", "must be a number",
                                                                         "usd: 5.00"]),
    ({"budgets": [{"scope": "policy", "period": "week", "usd": 1}]}, ["budgets[0].period"]),
    ({"budgets": [{"scope": "slot", "period": "day", "usd": 1}]}, ["needs name"]),
    ({"budgets": [{"scope": "slot", "name": "ghost", "period": "day", "usd": 1}]},
     ["budgets[0].name", "'ghost' is not a slot", "onprem, cloud"]),
])
def test_bad_rules_and_caps_are_refused_with_file_field_and_fix(extra, wanted):
    msg = problems(pool_dict(**extra))
    for w in wanted:
        assert w in msg, (w, msg)


def test_local_only_rule_without_a_local_slot_is_refused(tmp_path):
    raw = pool_dict(sensitive=[{"name": "pii", "detectors": ["email"], "action": "local_only"}])
    raw["models"][0]["local"] = False
    path = tmp_path / "nolocal.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as ei:
        load_pool(path)
    msg = str(ei.value)
    assert str(path) in msg and "sensitive[0].action" in msg and "local: true" in msg and "action: block" in msg


@pytest.mark.skipif(not presidio_available(), reason="presidio-analyzer not installed (requirements-presidio.txt)")
def test_presidio_rule_finds_a_person_name():  # pragma: no cover - optional extra
    rule = SensitiveRule(name="ner", presidio={"entities": ["PERSON"]}, action="redact")
    assert rule.find("My name is John Smith and I live in Boston")


@pytest.mark.skipif(presidio_available(), reason="presidio-analyzer is installed")
def test_presidio_rule_without_the_extra_is_refused_at_load():
    msg = problems(pool_dict(sensitive=[{"name": "ner", "presidio": {"entities": ["PERSON"]}, "action": "redact"}]))
    assert "sensitive[0].presidio" in msg and "requirements-presidio.txt" in msg
