"""The web console: one static page (HTML, vanilla JS, CSS) served at /console."""
