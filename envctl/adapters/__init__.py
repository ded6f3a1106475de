"""Edges of envctl: the only modules that talk to SSH, engines, registries and resolvers."""
