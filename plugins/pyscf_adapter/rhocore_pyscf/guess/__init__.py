"""SCF initial guesses from a fitted or predicted total density."""
