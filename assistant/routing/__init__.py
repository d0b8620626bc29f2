"""Which domain a question belongs to: the sentence encoder (`encoder`), the router (`router`) and its fit
(`fit`, `calibrate`'s and the CLI's `fit-router`)."""
