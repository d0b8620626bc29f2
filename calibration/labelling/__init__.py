"""Labelled data: questions from their sources or written (`items`, `datagen/`), the model's graded answers
(`collect`, `grading`), committed records without benchmark text (`redact`) and the text rebuilt by id
(`question_text`)."""
