"""The HTTP proxy: the FastAPI app, request and response schemas, error translation into each
API's shape, auth, the request pipeline (decide, call, audit), the stream relay every API shares,
micro-batching of encoder work, sticky sessions, and the OpenAI, Anthropic and Responses adapters.

May import everything below it: routing, model, upstream, audit. Never ui or commands.
"""
