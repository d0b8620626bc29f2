"""Prompt templates as data: one TOML file per prompt id, read by `assistant.answering.prompts` as package data."""
