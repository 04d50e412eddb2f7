"""The daily scoring run: one module per step (measures, events, plays, alerts); ``run.py`` lists the steps."""
