"""The language layer: an OpenAI-compatible LLM client, intent classification with a keyword
fallback, AI personas that converse (LLM or scripted), their tools, sales strategies, and memory.

Modules: normalize, fallback, llm, intents, personas, tools, converse, strategies, repository,
memory, api, services (`build_brain(settings)` for the composition root).
"""
