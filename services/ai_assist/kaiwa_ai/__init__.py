"""ai_assist: rewrites an agent's draft (AI-01, AI-03) and suggests a tone (AI-02)."""
