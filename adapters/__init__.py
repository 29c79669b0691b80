"""Pure translators between OpenAI's chat format and each upstream protocol."""
