from .rewrite import LENGTHS, MAX_TEXT, TONES, RewriteRequest, rewrite_messages, validate_rewrite

__all__ = ["LENGTHS", "MAX_TEXT", "TONES", "RewriteRequest", "rewrite_messages", "validate_rewrite"]
