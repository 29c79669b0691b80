"""switchyard: one local OpenAI-compatible endpoint over many LLM backends."""

__version__ = "0.1.0"
