"""The one answering path: a prompt (`prompts`), the model's answer and its confidence signals (`answer`,
`evidence`, `parsing`), and `pipeline`, which routes the question, answers it and applies the map."""
