"""ai_assist: rewrites an agent's draft through an LLM provider (AI-01)."""
