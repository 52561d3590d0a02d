"""The playground's upstream calls in the server's audit log (`"api": "playground"`), like the proxy's.

Send writes its decision record (the same line the Audit tab downloads) once the answer is in;
Auto review's judge call writes a line of its own (`kind: "review"`, `review_of` the answer's
request id), so that every call that spends is on record.
"""

from __future__ import annotations

from typing import Any


def audit_answer(audit, record: dict[str, Any]) -> None:
    if audit is not None:
        audit.write(record)


def audit_review(audit, router, request_id: str | None, rv) -> None:
    if audit is None or rv is None:
        return
    from router.audit.record import DecisionRecord
    from router.ui.review import judge_slot

    slot = judge_slot(router.pool)
    called = rv.verdict != "not reviewed" or rv.usage is not None
    rec = DecisionRecord.build(None, api="playground", policy=router.pool.policy, selected=slot if called else None,
                               usage=rv.usage, status="ok" if rv.verdict != "not reviewed" else "error",
                               error=rv.reason if rv.verdict == "not reviewed" else None,
                               kind="review", review_of=request_id, review=rv.to_dict())
    audit.write(rec.to_line())
