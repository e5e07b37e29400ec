"""The conversation model: pure rules, no I/O, no protobuf."""
