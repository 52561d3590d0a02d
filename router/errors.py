"""The router's exception tree. Each edge (UI, HTTP, CLI) translates these once.

    RouterError
    ├── ConfigError          a pool YAML or option is invalid (names file, slot and field)
    ├── CheckpointError      a checkpoint directory is missing, malformed or mismatched
    ├── GovernanceError      a sensitivity rule or a budget refused the request (403 / 429 / 503)
    ├── InputError           a query, tolerance or data file the caller gave is unusable
    │   └── UnknownModelError  a slot or policy name that the pool does not have
    └── UpstreamError        an upstream model endpoint failed or is not configured
        └── MissingKeyError  the env var holding a slot's API key is unset
"""

from __future__ import annotations


class RouterError(Exception):
    """Base of every error the router raises on purpose.

    `router` and `headers` are filled in by the proxy when an error answers a request (the decision
    the error body shows, X-Router-* headers); class attributes so every subclass has them unset.
    """

    router: dict | None = None
    headers: dict[str, str] | None = None
    audited: bool = False  # the proxy already wrote this request's audit line


class ConfigError(RouterError):
    def __init__(self, path: str, problems: list[str]):
        self.path = str(path)
        self.problems = list(problems)
        lines = "\n".join(f"  {self.path}: {p}" for p in self.problems)
        super().__init__(f"invalid pool config {self.path}:\n{lines}")


class CheckpointError(RouterError):
    pass


class GovernanceError(RouterError):
    """Refused by policy, not by a fault: `status` 403 (sensitive data may not go there), 429 (budget
    cap; `retry_after` seconds to the period's end) or 503 (no local slot to answer a local-only request)."""

    def __init__(self, message: str, status: int, code: str, retry_after: int | None = None,
                 governance: dict | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.retry_after = retry_after
        self.governance = governance or {}
        # SDKs retry 429s on their own; a cap that resets in hours is not worth retrying now.
        self.headers = {"Retry-After": str(retry_after), "x-should-retry": "false"} if retry_after is not None else {}


class InputError(RouterError):
    pass


class UnknownModelError(InputError):
    pass


class UpstreamError(RouterError):
    def __init__(self, message: str, status: int | None = None, attempts: list | None = None):
        super().__init__(message)
        self.status = status
        self.attempts = attempts or []


class MissingKeyError(UpstreamError):
    def __init__(self, slot: str, env_var: str):
        super().__init__(
            f"slot {slot!r} needs an API key: set the environment variable {env_var} "
            f"(or switch the slot to a local endpoint)",
            status=None,
        )
        self.slot = slot
        self.env_var = env_var
