"""Judges: reference matching, LLM verdict parsing (over real loopback HTTP), majority vote."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from router.errors import InputError
from router.routing.pool import Slot
from router.training.judges import (
    JUDGES,
    LLMJudge,
    Verdict,
    canonical_answer,
    extract_choice,
    extract_number,
    grade_reference,
    judge_messages,
    majority_vote,
    make_judge,
    normalize_answer,
    parse_verdict,
    reference_kind,
)
from router.upstream.backends import Backend
from tests.upstream_stub import UpstreamStub


@pytest.mark.parametrize("answer,reference,expected", [
    ("Paris.", "Paris", 1.0),
    ("  the   PARIS ", "Paris", 1.0),
    ("**Paris**", "paris", 1.0),
    ("The capital of France is Paris.", "Paris", 1.0),  # short answer containing the reference
    ("Rome", "Paris", 0.0),
    ("Parisian cafés are nice", "Paris", 0.0),  # whole words only
    ("", "Paris", 0.0),
    ("The answer is: Mount Everest", "Mount Everest", 1.0),
    (" ".join(["word"] * 30) + " Paris", "Paris", 0.0),  # containment only counts in short answers
])
def test_reference_text_match(answer, reference, expected):
    assert grade_reference(answer, reference).score == expected


@pytest.mark.parametrize("answer,reference,expected", [
    ("The answer is (B).", "B", 1.0),
    ("B) 12 apples", "b", 1.0),
    ("(C)", "C", 1.0),
    ("I think it is C.", "C", 1.0),
    ("Answer: D", "(D)", 1.0),
    ("The answer is (B).", "C", 0.0),
    ("Paris", "A", 0.0),  # no letter at all: wrong, not unknown
    ("**A.** because", "A", 1.0),
])
def test_reference_multiple_choice(answer, reference, expected):
    assert reference_kind(reference) == "choice"
    assert grade_reference(answer, reference).score == expected


@pytest.mark.parametrize("answer,reference,expected", [
    ("The answer is 42.", "42", 1.0),
    ("2 + 2 = 4", "4", 1.0),  # last number when there is no marker
    ("It costs $1,000.", "1000", 1.0),
    ("3/4", "0.75", 1.0),
    ("answer: 7 apples, not 8", "7", 1.0),  # first number after the marker
    ("-3.50", "-3.5", 1.0),
    ("A spider has eight legs.", "8", 1.0),  # small numbers as words, when there are no digits
    ("Two and three are different numbers.", "5", 0.0),
    ("41", "42", 0.0),
    ("no idea", "42", 0.0),
])
def test_reference_numeric(answer, reference, expected):
    assert reference_kind(reference) == "number"
    assert grade_reference(answer, reference).score == expected


def test_reference_missing_is_unknown():
    assert grade_reference("Paris", None).score is None
    assert grade_reference("Paris", "  ").score is None


def test_extractors():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert extract_choice("Option B is right") == "B"
    assert extract_choice("nothing here") is None
    assert extract_number("about 12.5 km") == 12.5
    assert extract_number("none") is None


@pytest.mark.parametrize("text,expected", [
    ('{"correct": true}', 1.0),
    ('{"correct": false, "reason": "wrong city"}', 0.0),
    ('```json\n{"correct": "yes"}\n```', 1.0),
    ('Sure! Here is my verdict: {"score": 0.5} Hope that helps.', 0.5),
    ('{"verdict": "incorrect"}', 0.0),
    ('{"correct": 1}', 1.0),
    ('{"reason": "no verdict"} {"correct": false}', 0.0),  # later object carries the verdict
])
def test_parse_verdict(text, expected):
    assert parse_verdict(text) == expected


@pytest.mark.parametrize("text", [
    "", "yes", "The answer is correct.", "{correct: true}", '{"correct": "maybe"}', '{"score": 1.5}',
    '{"score": -0.1}', "[true]", '{"reason": "x"}', "{", None,
])
def test_parse_verdict_unparseable_is_unknown(text):
    assert parse_verdict(text) is None


def test_judge_messages_carry_question_answer_and_reference():
    msgs = judge_messages("What is 2+2?", "4", "4")
    assert msgs[0]["role"] == "system" and "JSON" in msgs[0]["content"]
    assert "What is 2+2?" in msgs[1]["content"] and "Reference answer" in msgs[1]["content"]
    assert "Reference answer" not in judge_messages("q", "a", None)[1]["content"]


def test_majority_vote():
    votes = majority_vote({"a": "Paris", "b": "paris.", "c": "Rome"})
    assert votes == {"a": 1.0, "b": 1.0, "c": 0.0}
    votes = majority_vote({"a": "B", "b": "The answer is (B)", "c": "C. Rome"})
    assert votes == {"a": 1.0, "b": 1.0, "c": 0.0}
    assert majority_vote({"a": "1", "b": "2"}) == {"a": None, "b": None}  # tie: unknown
    assert majority_vote({"a": "Paris"}) == {"a": None}  # nobody to agree with
    assert majority_vote({"a": "42", "b": "42.0", "c": ""})["c"] is None  # empty answer: no opinion
    assert canonical_answer("42") == canonical_answer("42.0")


def test_registry_is_a_dict_and_unknown_names_fail_clearly():
    assert set(JUDGES) == {"reference", "llm", "vote"}
    assert make_judge("vote").needs_all_answers
    assert not make_judge("reference").needs_all_answers
    with pytest.raises(InputError, match="unknown judge 'exact'.*reference, llm, vote"):
        make_judge("exact")
    with pytest.raises(InputError, match="--judge-slot"):
        make_judge("llm")


def _judge_slot(base_url: str, model: str) -> Slot:
    return Slot(name="judge", model=model, api_base=base_url, local=True,
                cost_per_m_input_tokens=1.0, cost_per_m_output_tokens=2.0)


def _grade_with(stub: UpstreamStub, model: str) -> Verdict:
    async def go():
        async with httpx.AsyncClient() as client:
            judge = LLMJudge(backend=Backend(client, retries=0, backoff=0), slot=_judge_slot(stub.base_url, model))
            return await judge.grade("What is the capital of France?", "Paris", "Paris")
    return asyncio.run(go())


def test_llm_judge_over_loopback():
    with UpstreamStub() as stub:
        stub.behave("good-judge", answer='{"correct": true}')
        stub.behave("chatty-judge", answer="Looks right to me!")
        stub.behave("broken-judge", fail_status=500, fail_times=-1)
        ok = _grade_with(stub, "good-judge")
        assert ok.score == 1.0 and ok.cost_usd > 0
        sent = stub.calls("good-judge")[0]["body"]
        assert sent["temperature"] == 0.0 and "Candidate answer:\nParis" in sent["messages"][-1]["content"]
        chatty = _grade_with(stub, "chatty-judge")
        assert chatty.score is None and "unparseable" in chatty.note  # unknown, never wrong
        broken = _grade_with(stub, "broken-judge")
        assert broken.score is None and "failed" in broken.note
