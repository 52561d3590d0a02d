"""What reads a query: the encoder (with its weight sources and conversions), the features it
yields, the trained head and its checkpoint format, and the one torch thread every forward runs on.

May import: router.errors, router.paths. Nothing above it.
"""
