"""Success plays: the default play library (data) and matching events and stages to plays. Filled by the events-and-plays issue."""
