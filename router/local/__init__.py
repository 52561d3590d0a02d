"""The bundled local chat model (SmolLM2-135M-Instruct) and the OpenAI-compatible server that
serves it (`python -m router serve-local`), the on-prem slot of the offline pools.

May import: router.errors, router.model.
"""
