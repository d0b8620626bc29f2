"""The fixed inputs of the benchmark: 20 short questions in mixed domains, and a long-output prompt.

The questions are written for the bench (never taken from the evaluation data in
`../shared/data`), five per domain, short on purpose: time to first token and
pipeline overhead should measure the product, not a long prompt.
"""

from __future__ import annotations

__all__ = ["DECODE_PROMPT", "QUESTIONS", "decode_messages"]

# (domain, question): five per domain, in a fixed interleaved order.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("math", "What is 17 times 23?"),
    ("factual", "What is the capital of Canada?"),
    ("science", "What gas do plants absorb from the air for photosynthesis?"),
    ("reasoning", "If all bloops are razzies and all razzies are lazzies, are all bloops lazzies?"),
    ("math", "What is 144 divided by 12?"),
    ("factual", "Who wrote the novel Pride and Prejudice?"),
    ("science", "What is the chemical symbol for sodium?"),
    ("reasoning", "Tom is taller than Ann, and Ann is taller than Joe. Who is the shortest?"),
    ("math", "What is the square root of 81?"),
    ("factual", "Which ocean lies between Africa and Australia?"),
    ("science", "At what temperature in Celsius does water boil at sea level?"),
    ("reasoning", "A clock shows 3:00. What angle in degrees do its hands make?"),
    ("math", "What is 15% of 200?"),
    ("factual", "What is the currency of Japan?"),
    ("science", "How many planets are in the Solar System?"),
    ("reasoning", "If today is Monday, what day is it in 10 days?"),
    ("math", "What is 2 to the power of 10?"),
    ("factual", "In which country is the city of Marrakesh?"),
    ("science", "What part of the cell holds its DNA?"),
    ("reasoning", "I have 3 apples and eat one, then buy 4 more. How many apples do I have?"),
)

# A request that makes a small instruct model write at length, so decoding runs for the
# whole token budget (the bench still counts the tokens actually produced).
DECODE_PROMPT = (
    "Write a long, detailed essay about the history of astronomy, from the Babylonians and the Greeks "
    "to Copernicus, Galileo, Kepler, Newton and modern space telescopes. Use many paragraphs and do not "
    "stop early."
)


def decode_messages() -> list[dict]:
    """The chat messages every decode measurement sends (the same for every engine)."""
    return [{"role": "user", "content": DECODE_PROMPT}]
