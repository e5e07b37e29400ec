"""Routing's pure model: no I/O, no protobuf."""
