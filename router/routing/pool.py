"""Pool configs: the YAML schema, its validation, and path resolution.

A pool is read-only once loaded. Every problem in a file is collected and reported
together, each one located as `models[2].cost_per_m_input_tokens`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.errors import ConfigError, UnknownModelError
from router.paths import CONFIG_DIR, PROJECT_ROOT  # noqa: F401 (PROJECT_ROOT re-exported)
from router.routing import budgets as budget_rules
from router.routing import sensitivity
from router.routing.costs import price_usd

DEFAULT_CONFIG = CONFIG_DIR / "default.yaml"
OPENROUTER_BASE = "https://openrouter.ai/api/v1"
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# What API keys look like, so that a key pasted where its variable's name belongs is refused rather
# than echoed by error messages, /api/models and /health/ready, which all print the name.
KEY_PREFIXES = ("sk-", "sk_", "hf_", "ghp_", "gsk_", "xai-", "aiza", "r8_", "pk-", "key-")


def env_name_problem(value: str) -> str | None:
    """Why `value` is not a usable env var name, in words that never repeat the value."""
    if not ENV_NAME.fullmatch(value):
        return ("must be the NAME of an environment variable (letters, digits and _, not starting with a digit), "
                "not the key itself: put the key in the environment, e.g. OPENROUTER_API_KEY")
    # Env var names are words (HF_TOKEN, together_api_key_2024); keys are long and mixed-case.
    mixed = any(c.islower() for c in value) and any(c.isupper() for c in value)
    prefixed = value.lower().startswith(KEY_PREFIXES) and len(value) >= 20 and value != value.upper()
    looks_random = len(value) >= 24 and mixed and sum(c.isdigit() for c in value) >= 4
    if prefixed or looks_random:
        return ("looks like an API key, not the name of an environment variable: keys never go in the pool "
                "file; set the key in the environment and name that variable here")
    return None


class Slot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1)
    display_name: str | None = None
    model: str = Field(min_length=1)  # destination id sent upstream
    api_base: str = OPENROUTER_BASE
    api_key_env: str | None = None  # the NAME of the env var; keys never live in YAML
    cost_per_m_input_tokens: float = Field(ge=0, allow_inf_nan=False)  # .inf would make every cost Infinity
    cost_per_m_output_tokens: float = Field(ge=0, allow_inf_nan=False)
    trained_as: str | None = None  # checkpoint label column when it differs from `name`
    trained_as_reason: str | None = None
    local: bool = False
    enabled: bool = True
    extra_body: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str | None = None
    expected_output_tokens: float | None = Field(default=None, ge=0)  # overrides the checkpoint's mean
    reasoning_tokens: float | None = Field(default=None, ge=0)  # expected hidden reasoning tokens, billed as output
    # "responses": the upstream speaks OpenAI's Responses API, so /v1/responses passes requests through
    upstream_api: Literal["chat", "responses"] = "chat"
    # forward Anthropic-style cache_control markers; None = auto (OpenRouter's anthropic/ and google/ models)
    cache_control: bool | None = None

    @field_validator("api_base")
    @classmethod
    def _http_base(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, v: str | None) -> str | None:
        if v is not None and (problem := env_name_problem(v)):
            raise ValueError(problem)
        return v

    @property
    def label(self) -> str:
        return self.display_name or self.name

    @property
    def score_as(self) -> str:
        return self.trained_as or self.name

    def cost_usd(self, input_tokens: float, output_tokens: float) -> float:
        return price_usd(self, input_tokens, output_tokens)


class Pool(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    policy: str = Field(min_length=1)  # the `model` value clients send to get routed
    description: str = ""
    checkpoint: str
    default_tolerance: float = Field(default=0.2, ge=0, le=1)
    baseline: str | None = None  # slot that savings compare against; default: most expensive
    audit_query_text: Literal["store", "hash", "drop"] = "store"
    models: list[Slot] = Field(min_length=1)
    sensitive: list[sensitivity.SensitiveRule] = Field(default_factory=list)
    budgets: list[budget_rules.BudgetRule] = Field(default_factory=list)
    output_length_data: str | None = None  # labeled data with output_tokens: per-query output length (output_length.py)
    source_path: str | None = None
    checkpoint_path: str | None = None

    @property
    def names(self) -> list[str]:
        return [m.name for m in self.models]

    def slot(self, name: str) -> Slot:
        for m in self.models:
            if m.name == name:
                return m
        raise UnknownModelError(
            f"unknown model {name!r} in pool {self.policy!r}; known slots: {', '.join(self.names)}")

    def most_expensive(self, local_only: bool = False, enabled_only: bool = False) -> Slot | None:
        """Highest input + output price per million tokens; ties go to the later slot (pools list
        models by capability). The default baseline and the auto-review judge. None when no slot
        passes the filters (`local_only`; `enabled_only`, ignored when every slot is switched off)."""
        models = [m for m in self.models if m.enabled] if enabled_only and any(m.enabled for m in self.models) \
            else self.models
        ranked = sorted(((i, m) for i, m in enumerate(models) if m.local or not local_only),
                        key=lambda im: (im[1].cost_per_m_input_tokens + im[1].cost_per_m_output_tokens, im[0]))
        return ranked[-1][1] if ranked else None

    @property
    def most_expensive_slot(self) -> Slot:
        return self.most_expensive()

    @property
    def baseline_slot(self) -> Slot:
        return self.slot(self.baseline) if self.baseline else self.most_expensive_slot


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _slot_hint(raw: dict, loc: tuple) -> str:
    if len(loc) >= 2 and loc[0] == "models" and isinstance(loc[1], int):
        try:
            name = raw["models"][loc[1]].get("name")
            if name:
                return f" (slot {name!r})"
        except (KeyError, IndexError, AttributeError, TypeError):
            pass
    return ""


def resolve_path(value: str, config_path: Path | None) -> Path:
    """Relative paths resolve against the YAML's folder, then the project root."""
    p = Path(value).expanduser()
    if p.is_absolute():
        return p
    if config_path is not None and (config_path.parent / p).exists():
        return (config_path.parent / p).resolve()
    return (PROJECT_ROOT / p).resolve()


def parse_pool(raw: Any, path: str | Path = "<config>") -> Pool:
    path = Path(path)
    if not isinstance(raw, dict):
        raise ConfigError(str(path), ["expected a mapping with keys policy, checkpoint, models"])
    problems: list[str] = []
    for key in ("source_path", "checkpoint_path"):
        if key in raw:
            problems.append(f"{key}: is set by the loader and may not appear in the file")
    try:
        pool = Pool.model_validate({k: v for k, v in raw.items() if k not in ("source_path", "checkpoint_path")})
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling; allowed keys are listed in README 'Pool configs')"
            problems.append(f"{_loc(loc)}{_slot_hint(raw, loc)}: {msg}")
        raise ConfigError(str(path), problems) from None
    seen: dict[str, int] = {}
    for i, m in enumerate(pool.models):
        if m.name in seen:
            problems.append(f"models[{i}].name: duplicate slot name {m.name!r} (also models[{seen[m.name]}])")
        seen.setdefault(m.name, i)
    if pool.baseline and pool.baseline not in seen:
        problems.append(f"baseline: {pool.baseline!r} is not a slot of this pool ({', '.join(seen)})")
    if pool.policy in seen:
        problems.append(f"policy: {pool.policy!r} collides with a slot name; pick a distinct policy name")
    problems += sensitivity.pool_problems(pool.sensitive, pool.models)
    problems += budget_rules.pool_problems(pool.budgets, pool.names)
    if problems:
        raise ConfigError(str(path), problems)
    ckpt = resolve_path(pool.checkpoint, path if path.exists() else None)
    update = {"source_path": str(path), "checkpoint_path": str(ckpt)}
    if pool.output_length_data:
        data = resolve_path(pool.output_length_data, path if path.exists() else None)
        if not data.exists():
            raise ConfigError(str(path), [f"output_length_data: {data} not found; point it at the training data "
                                          f"(long format with question, model, output_tokens) or remove the key"])
        update["output_length_data"] = str(data)
    return pool.model_copy(update=update)


def load_pool(path: str | Path | None = None) -> Pool:
    path = Path(path) if path else DEFAULT_CONFIG
    if not path.exists():
        raise ConfigError(str(path), ["file not found"])
    if path.is_dir():
        raise ConfigError(str(path), ["is a folder; expected a pool YAML file"])
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(str(path), [f"not valid YAML: {exc}"]) from None
    except UnicodeDecodeError:
        raise ConfigError(str(path), ["not UTF-8 text"]) from None
    return parse_pool(raw, path)


def check_scorable(pool: Pool, checkpoint_slots: list[str]) -> None:
    """Every slot must map onto a label column the checkpoint was trained on."""
    known = set(checkpoint_slots)
    problems = []
    for i, m in enumerate(pool.models):
        if m.score_as not in known:
            field = "trained_as" if m.trained_as else "name"
            problems.append(
                f"models[{i}].{field} (slot {m.name!r}): the checkpoint cannot score {m.score_as!r}; "
                f"set trained_as to one of: {', '.join(checkpoint_slots)}")
    if problems:
        raise ConfigError(pool.source_path or "<config>", problems)


def list_configs() -> list[Path]:
    return sorted(CONFIG_DIR.glob("*.yaml"))
