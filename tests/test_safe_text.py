"""check_value: one C-encoder pass accepts a clean body; anything it rejects is walked so that the
error still names the first bad field (a lone surrogate in a value or a key, a non-finite number)."""

from __future__ import annotations

import json

import pytest

from router.errors import InputError
from router.safe_text import _sendable, check_value

CLEAN = {"messages": [{"role": "user", "content": [{"type": "text", "text": "日本語 and emoji 🎉"}]}],
         "tools": [{"function": {"name": "grep", "parameters": {"max": 1e300, "n": 3, "ok": True, "x": None}}}],
         "pairs": (1, 2.5, "three")}


@pytest.mark.parametrize("body,field", [
    ({"messages": [{"role": "user", "content": "cut \ud83d here"}]}, "body.messages[0].content"),
    ({"metadata": {"note\udc00": "x"}}, "body.metadata (a key)"),
    ({"tools": [{"function": {"parameters": {"limit": float("nan")}}}]}, "body.tools[0].function.parameters.limit"),
    ({"temperature": float("inf")}, "body.temperature"),
    ({"stop": ["ok", "-\udfff-"]}, "body.stop[1]"),
])
def test_the_first_bad_field_is_named(body, field):
    assert not _sendable(body)
    with pytest.raises(InputError) as ei:
        check_value(body)
    assert str(ei.value).startswith(field + ":")


def test_a_clean_body_passes_in_one_pass_and_is_returned_as_is():
    assert _sendable(CLEAN) and check_value(CLEAN) is CLEAN


def test_values_json_cannot_encode_are_walked_like_before():
    odd = {"ids": {1, 2}, "text": "fine"}  # a set: the encoder refuses it, the walk ignores it
    assert not _sendable(odd) and check_value(odd) is odd
    with pytest.raises(InputError, match=r"body.more\[0\]: contains a lone UTF-16 surrogate"):
        check_value({"ids": {1}, "more": ["\ud800"]})


@pytest.mark.parametrize("body,field", [
    ({"messages": [{"role": "user", "content": "a\ud800"}]}, "request.messages[0].content"),
    ({"temperature": float("nan")}, "request.temperature"),
])
def test_the_upstream_body_is_encoded_once_and_a_bad_one_names_its_field(body, field):
    from router.upstream.backends import encode_body

    assert encode_body(CLEAN) == json.dumps(CLEAN, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    with pytest.raises(InputError) as ei:
        encode_body(body)
    assert str(ei.value).startswith(field + ":")
