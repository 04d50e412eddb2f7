"""Success plays: the play library (data) and matching events and stages to plays (events-and-plays issue)."""
