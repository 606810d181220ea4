"""Rendering results: terminal tables, number formats, Markdown and HTML pages."""
