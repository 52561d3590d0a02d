"""Request bodies of the HTTP API (they also make the OpenAPI schema that clients and fuzzers read).

OpenAI and Anthropic requests allow extra fields, which are passed to the upstream untouched;
our own additions are `tolerance` (0..1) and `models` (slot names the router may pick from).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

TOLERANCE_DOC = "Router: accept models within this much P(correct) of the best (0 = best model, 1 = cheapest)."
MODELS_DOC = "Router: slot names the router may choose from (default: every enabled slot)."
MODEL_DOC = "A policy name (route) or a slot name (pin: no routing). Default: the default policy."


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str = Field(description="system, developer, user, assistant or tool")
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, description=MODEL_DOC)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    stop: str | list[str] | None = None
    stream_options: dict[str, Any] | None = None


class RouteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str | None = Field(default=None, description="The query text (or send messages).")
    prompt: str | None = Field(default=None, description="Same as question (name other routers' clients send).")
    query: str | None = Field(default=None, description="Same as question (name other routers' clients send).")
    messages: list[ChatMessage] | None = Field(default=None, description="A chat conversation (OpenAI or Anthropic).")
    policy: str | None = Field(default=None, description="Pool to route with (default: the default policy).")
    model: str | None = Field(default=None, description="Same as policy (for OpenAI-style clients).")
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)


class AnthropicMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["user", "assistant"]
    content: str | list[dict[str, Any]]


class MessagesRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, description=MODEL_DOC)
    messages: list[AnthropicMessage] = Field(min_length=1)
    max_tokens: int = Field(ge=1)
    system: str | list[dict[str, Any]] | None = None
    stop_sequences: list[str] | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    top_k: int | None = Field(default=None, ge=0)
    stream: bool = False
    metadata: dict[str, Any] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: dict[str, Any] | None = None
    tolerance: float | None = Field(default=None, ge=0, le=1, description=TOLERANCE_DOC)
    models: list[str] | None = Field(default=None, description=MODELS_DOC)


class CountTokensRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, description=MODEL_DOC)
    messages: list[AnthropicMessage] = Field(min_length=1)
    system: str | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None


class ResponsesRequest(BaseModel):
    """OpenAI Responses API request; fields not listed here are read from the extras (see responses_translate)."""
    model_config = ConfigDict(extra="allow")

    model: str | None = Field(default=None, description=MODEL_DOC + " OpenAI model names (gpt-*, o*) route.")
    input: str | list[dict[str, Any]] = Field(description="A string, or input items (messages, function calls "
                                                          "and their outputs).")
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
