"""Prompt templates as data: one TOML file per prompt id, read by `assistant.prompts` as package data."""
