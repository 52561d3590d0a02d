"""Request bodies of the HTTP API (they also make the OpenAPI schema that clients and fuzzers read).

OpenAI and Anthropic requests allow extra fields, which are passed to the upstream untouched;
our own additions are `tolerance` (0..1) and `models` (slot names the router may pick from).
Validation is strict (JSON types as the schema says: `"tolerance": true` or `"0.5"` is a 400, not
1.0 or 0.5), so that what the OpenAPI document promises is what the API accepts.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

TOLERANCE_DOC = "Router: accept models within this much P(correct) of the best (0 = best model, 1 = cheapest)."
MODELS_DOC = "Router: slot names the router may choose from (default: every enabled slot)."
def _integral(v: Any) -> Any:
    # JSON has one number type: 16.0 is the integer 16 (JSON Schema agrees); 16.5 and "16" stay errors.
    return int(v) if isinstance(v, float) and v.is_integer() else v


# The bounds sit inside the alias so that the OpenAPI document shows them (on `X | None` a Field's
# bounds would be enforced but not documented).
PositiveInt = Annotated[int, Field(ge=1), BeforeValidator(_integral)]
NonNegativeInt = Annotated[int, Field(ge=0), BeforeValidator(_integral)]

MODEL_DOC = "A policy name (route) or a slot name (pin: no routing). Default: the default policy."


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    # the roles OpenAI's and Anthropic's APIs accept; any other would be dropped from what is routed
    role: Literal["system", "developer", "user", "assistant", "tool", "function"] = Field(
        description="system, developer, user, assistant, tool or function")
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = Field(default=None, description=MODEL_DOC)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)
    max_tokens: PositiveInt | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    stream_options: dict[str, Any] | None = None


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    question: str | None = Field(default=None, description="The query text (or send messages).")
    prompt: str | None = Field(default=None, description="Same as question (name other routers' clients send).")
    query: str | None = Field(default=None, description="Same as question (name other routers' clients send).")
    messages: list[ChatMessage] | None = Field(default=None, description="A chat conversation (OpenAI or Anthropic).")
    policy: str | None = Field(default=None, description="Pool to route with (default: the default policy).")
    model: str | None = Field(default=None, description="Same as policy (for OpenAI-style clients).")
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = Field(default=None, description=MODEL_DOC)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: PositiveInt
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: NonNegativeInt | None = None
    stream: bool = False
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)


class CountTokensRequest(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    model: str | None = Field(default=None, description=MODEL_DOC)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None


class ResponsesRequest(BaseModel):
    """OpenAI Responses API request; fields not listed here are read from the extras (see responses_translate)."""
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, description=MODEL_DOC + " OpenAI model names (gpt-*, o*) route.")
    input: str | Annotated[list[dict[str, Any]], Field(min_length=1)] = Field(
        description="A string, or input items (messages, function calls and their outputs).")
    instructions: str | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: str | dict[str, Any] | None = None
    stream: bool = False
    previous_response_id: str | None = Field(default=None, description="Refused: this proxy keeps no state.")
    max_output_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)
