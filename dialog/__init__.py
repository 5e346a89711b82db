"""The brain: prompt, OpenAI streaming client, rule-based offline brain, guardrails, slots, scheduling."""
