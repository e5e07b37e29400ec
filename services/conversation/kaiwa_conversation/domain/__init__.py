"""The conversation model: pure rules, no I/O, no protobuf. A refusal is a kaiwa_common
domain error (InvalidArgument, FailedPrecondition) saying why."""
