"""Alerts: what a message says (``base``), how it looks (``render``), how it travels (``slack``,
``email``, ``webhook``, ``log``, ``memory``), who hears about what (``routing``), and the
guards around sending (``safety``, ``retry``, ``signing``). Pure: no Flask, SQLAlchemy or app
imports; the outbox and dispatcher live in ``app/``."""
