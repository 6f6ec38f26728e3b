"""Mobile pages (/m/): blueprints, with their Jinja templates in templates/ and assets in static/ (served locally, never from a CDN)."""
